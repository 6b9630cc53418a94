"""What the benchmarks share: configs read from the flagfiles, and training speed from the real loop."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from quickdraw_tf.training import input_pipeline, train_config, trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNN_CPU_FLAGFILE = os.path.join(REPO, "configs", "rnn_cpu.flags")


def flagfile_config(flagfile: str, data_dir: str, model_dir: str, **overrides) -> trainer.TrainConfig:
    """The TrainConfig that `python -m quickdraw_tf.train --flagfile=F` trains, with `overrides`; read
    straight into the dataclass (absl's global flags are not touched)."""
    return train_config.config_from_flagfile(flagfile, data_dir=data_dir, model_dir=model_dir, **overrides)


def rnn_cpu_input() -> input_pipeline.InputConfig:
    """The input pipeline of configs/rnn_cpu.flags."""
    return flagfile_config(RNN_CPU_FLAGFILE, data_dir="", model_dir="").input


def logged_examples_per_second(model_dir: str) -> float:
    """Mean examples/s that a training run logged, its first log (which holds the tracing) left out."""
    log = event_accumulator.EventAccumulator(
        os.path.join(model_dir, "train"), size_guidance={event_accumulator.TENSORS: 0}
    )
    log.Reload()
    rates = [float(tf.make_ndarray(e.tensor_proto)) for e in log.Tensors("examples_per_second")]
    return float(np.mean(rates[1:]))


def short_run(steps: int) -> dict:
    """TrainConfig overrides of a timed run: `steps` steps logged in four chunks, no eval or checkpoint
    before the end, no summary drawings."""
    return dict(
        train_steps=steps,
        eval_every=steps,
        checkpoint_every=steps,
        log_every=max(1, steps // 4),
        num_summary_drawings=0,
    )


def training_examples_per_second(
    data_dir: str, input_config: input_pipeline.InputConfig, steps: int
) -> float:
    """Examples/s of the real training loop on configs/rnn_cpu.flags' model with this input, for
    `steps` steps logged in four chunks (the first, which holds the tf.function tracing, is dropped)."""
    with tempfile.TemporaryDirectory() as model_dir:
        config = flagfile_config(
            RNN_CPU_FLAGFILE,
            data_dir,
            model_dir,
            input=input_config,
            **short_run(steps),
        )
        trainer.train(config)
        return logged_examples_per_second(model_dir)


def padded_share(data_dir: str, input_config: input_pipeline.InputConfig, batches: int) -> float:
    """Share of the time steps in `batches` training batches that are padding."""
    dataset = input_pipeline.make_dataset(data_dir, "train", input_config, training=True)
    valid = total = 0
    for inputs, _ in dataset.take(batches):
        valid += int(tf.reduce_sum(inputs["length"]))
        total += int(tf.size(inputs["length"])) * int(tf.shape(inputs["ink"])[1])
    return 1.0 - valid / total
