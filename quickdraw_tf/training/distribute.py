"""tf.distribute for training: the strategies by name, and which worker is the chief.

Under MultiWorkerMirroredStrategy every worker runs the same program; saving runs collectives, so every
worker saves, but only the chief into model_dir: the others into throw-away directories (TF's
convention), removed at the end of the run.
"""

from __future__ import annotations

import os

import tensorflow as tf

from quickdraw_tf.training import run_dir

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def make_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """default: one device; mirrored: all local GPUs (or CPU); multi_worker: the cluster in TF_CONFIG."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy '{name}'; known: {', '.join(STRATEGIES)}")


def _cluster(strategy: tf.distribute.Strategy) -> tuple[str | None, int, dict]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, 0, {}
    return resolver.task_type, resolver.task_id or 0, resolver.cluster_spec().as_dict()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The worker that writes summaries, the real checkpoints and the exports (TF's convention)."""
    task_type, task_id, spec = _cluster(strategy)
    if task_type in (None, "chief"):
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in spec


def write_dir(model_dir: str, name: str, strategy: tf.distribute.Strategy) -> str:
    """model_dir/name for the chief; a throw-away model_dir/workertemp/name_<task id> for the others."""
    if is_chief(strategy):
        return run_dir.path(model_dir, name)
    _, task_id, _ = _cluster(strategy)
    return run_dir.path(run_dir.path(model_dir, run_dir.WORKER_TEMP_DIR), f"{name}_{task_id}")


def remove_worker_dirs(model_dir: str) -> None:
    """The throw-away directories of write_dir (called on the workers that are not the chief)."""
    path = run_dir.path(model_dir, run_dir.WORKER_TEMP_DIR)
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)
