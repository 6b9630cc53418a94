"""The training loop: ONE custom loop for every tf.distribute strategy (default, mirrored,
multi_worker, tpu). Keras 3's model.fit does not run under MultiWorkerMirroredStrategy
(keras-team/keras#20585), so the loop is written out: strategy.run inside a tf.function.

model_dir after a run:
  config.json             the run's TrainConfig (evaluate.py rebuilds the model from it)
  checkpoints/            the last --keep_checkpoints checkpoints (model, optimizer, step, best MAP@3)
  best/                   the checkpoint with the best eval MAP@3 so far
  train/, eval/           TensorBoard logs
  model.keras, export/    the best (else the final) weights as a Keras file and as a SavedModel
Restarted on the same model_dir (also after kill -9) it restores the latest checkpoint and goes on to
train_steps. The data order does not resume: the shuffle is re-seeded with the restored step.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from quickdraw_tf import export, input_pipeline, metrics, models, plots

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
LR_SCHEDULES = ("constant", "cosine")
MIXED_PRECISION = ("off", "float16", "bfloat16")
CONFIG_FILE = "config.json"
METRIC_KEYS = ("loss", "top1", "top3", "map3", "count")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs; train.py fills it from flags, tests build it directly."""

    data_dir: str
    model_dir: str
    model: str = "rnn"
    hparams: dict = dataclasses.field(default_factory=dict)
    input: input_pipeline.InputConfig = input_pipeline.InputConfig()
    train_steps: int = 1000
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    clip_norm: float = 9.0  # on the global gradient norm; 0 disables clipping
    eval_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 100
    keep_checkpoints: int = 3
    mixed_precision: str = "off"
    jit_compile: bool = False  # XLA-compile the training step; needs input.static_shapes
    num_summary_drawings: int = 8
    seed: int = 0

    def __post_init__(self):
        for name in ("train_steps", "eval_every", "checkpoint_every", "log_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}"
            )
        if self.learning_rate <= 0 or self.clip_norm < 0 or self.warmup_steps < 0:
            raise ValueError("learning_rate must be > 0, clip_norm and warmup_steps >= 0")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        values = json.loads(text)
        values["input"] = input_pipeline.InputConfig(
            **{**values["input"], "bucket_boundaries": tuple(values["input"]["bucket_boundaries"])}
        )
        return cls(**values)


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup over warmup_steps, then constant or cosine decay to 0 at total_steps."""

    def __init__(self, base_rate: float, total_steps: int, warmup_steps: int = 0, decay: str = "constant"):
        self.base_rate = base_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.decay = decay

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.base_rate, tf.float32)
        if self.warmup_steps:
            rate *= tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        if self.decay == "cosine":
            decay_steps = max(self.total_steps - self.warmup_steps, 1)
            progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
            rate *= 0.5 * (1.0 + tf.cos(math.pi * progress))
        return rate

    def get_config(self) -> dict:
        return dict(
            base_rate=self.base_rate,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            decay=self.decay,
        )


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


def _write_dir(model_dir: str, name: str, strategy: tf.distribute.Strategy) -> str:
    """Non-chief workers must save too (saving runs collectives) but into a throw-away dir."""
    if is_chief(strategy):
        return os.path.join(model_dir, name)
    _, task_id, _ = _cluster(strategy)
    return os.path.join(model_dir, "workertemp", f"{name}_{task_id}")


def validate(config: TrainConfig, num_replicas: int = 1) -> None:
    """Raises ValueError / FileNotFoundError with a one-line message before anything is built."""
    models.check_hparams(config.model, config.hparams)
    if config.input.batch_size % num_replicas:
        raise ValueError(
            f"batch_size {config.input.batch_size} must be a multiple of the {num_replicas} replicas"
        )
    if config.jit_compile and not config.input.static_shapes:
        raise ValueError("--jit_compile needs --static_shapes: XLA compiles the step once per input shape")
    input_pipeline.check_data_dir(config.data_dir)
    input_pipeline.read_classes(config.data_dir)
    input_pipeline.split_files(config.data_dir, "train")
    config_path = os.path.join(config.model_dir, CONFIG_FILE)
    if tf.io.gfile.exists(config_path):
        with tf.io.gfile.GFile(config_path) as f:
            previous = json.load(f)
        new = json.loads(config.to_json())
        if (previous["model"], previous["hparams"]) != (new["model"], new["hparams"]):
            raise ValueError(
                f"--model_dir {config.model_dir} holds model {previous['model']} {previous['hparams']}, "
                f"not {new['model']} {new['hparams']}: use another --model_dir"
            )


def build_model(config: TrainConfig, num_classes: int) -> keras.Model:
    return models.get_model(config.model, num_classes, **config.hparams)


def _build_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    schedule = LearningRate(config.learning_rate, config.train_steps, config.warmup_steps, config.lr_schedule)
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    if config.mixed_precision == "float16":  # bfloat16 has float32's range: no loss scaling needed
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


class _State:
    """What the checkpoint holds, created under the strategy's scope."""

    def __init__(self, config: TrainConfig, num_classes: int):
        self.model = build_model(config, num_classes)
        self.optimizer = _build_optimizer(config)
        # Create the slots now so that a restore fills them instead of deferring.
        self.optimizer.build(self.model.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.best_map3 = tf.Variable(-1.0, dtype=tf.float32, trainable=False, name="best_map3")
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step, best_map3=self.best_map3
        )


def _clipped_gradients(grads, loss_scale, clip_norm: float):
    """Clips by the norm of the GLOBAL gradient (summed over replicas) and returns it unscaled.

    Keras 3 optimizers sum the replicas' gradients themselves after their own clipping, which would
    clip each replica's share. So the global gradient is all-reduced here only to get its norm; the
    local gradients are multiplied by the same factor, and their sum, done by the optimizer, is the
    clipped global gradient. A non-finite norm makes the gradients non-finite, which the
    LossScaleOptimizer catches (the step is skipped and the loss scale lowered).
    """
    summed = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, grads)
    norm = tf.linalg.global_norm(summed) / loss_scale
    if not clip_norm:
        return grads, norm
    factor = clip_norm / tf.maximum(norm, clip_norm)
    return [g * tf.cast(factor, g.dtype) for g in grads], norm


def _train_step_fn(state: _State, config: TrainConfig):
    optimizer = state.optimizer

    def step_fn(inputs, labels):
        with tf.GradientTape() as tape:
            logits = state.model(inputs, training=True)
            per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.input.batch_size)
            scaled_loss = optimizer.scale_loss(loss)
        variables = state.model.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        loss_scale = tf.cast(getattr(optimizer, "dynamic_scale", 1.0), tf.float32)
        grads, norm = _clipped_gradients(grads, loss_scale, config.clip_norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        sums = metrics.classification_sums(logits, labels)
        sums["loss"] = tf.reduce_sum(per_example)
        return sums, norm

    if config.jit_compile:
        # The step (forward, backward, clipping, optimizer update) as one XLA program; the loop
        # around it and the iterator stay outside, since XLA cannot compile dataset ops.
        return tf.function(step_fn, jit_compile=True)
    return step_fn


class JitUnsupportedError(ValueError):
    """--jit_compile with a model that holds layers XLA cannot compile."""


def check_jit_support(model: keras.Model) -> None:
    """Raises JitUnsupportedError when a layer cannot be XLA-compiled (Keras marks its cuDNN LSTMs so
    when a GPU is visible)."""
    unsupported = [layer.name for layer in model._flatten_layers() if not layer.supports_jit]
    if unsupported:
        raise JitUnsupportedError(
            f"--jit_compile: XLA cannot compile layers {', '.join(unsupported)} of this model here "
            "(cuDNN LSTMs on GPU): drop --jit_compile"
        )


def _eval_step_fn(state: _State):
    def batch_sums(inputs, labels):
        logits = state.model(inputs, training=False)
        sums = metrics.classification_sums(logits, labels)
        per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        sums["loss"] = tf.reduce_sum(per_example)
        return sums

    def step_fn(inputs, labels):
        # A replica left without drawings by the last partial batch gets an empty [0, 0, 3] batch, on
        # which CPU convolutions return the wrong shape: skip the model there.
        return tf.cond(
            tf.size(labels) > 0,
            lambda: batch_sums(inputs, labels),
            lambda: {key: tf.constant(0.0) for key in METRIC_KEYS},
        )

    return step_fn


def _sum_over_replicas(strategy, per_replica: dict) -> dict:
    return {
        key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
        for key, value in per_replica.items()
    }


def _zeros() -> dict:
    return {key: tf.constant(0.0) for key in (*METRIC_KEYS, "grad_norm")}


def _make_train_loop(strategy, state: _State, config: TrainConfig):
    step_fn = _train_step_fn(state, config)

    @tf.function
    def train_loop(iterator, num_steps):
        """num_steps steps in one call: one Python round trip per chunk, not per step."""
        totals = _zeros()
        for _ in tf.range(num_steps):
            sums, norm = strategy.run(step_fn, args=next(iterator))
            sums = _sum_over_replicas(strategy, sums)
            sums["grad_norm"] = strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None)
            totals = {key: totals[key] + sums[key] for key in totals}
            state.step.assign_add(1)
        return totals

    return train_loop


def _make_eval_pass(strategy, state: _State):
    step_fn = _eval_step_fn(state)

    @tf.function
    def eval_pass(dataset):
        totals = {key: tf.constant(0.0) for key in METRIC_KEYS}
        for batch in dataset:
            sums = _sum_over_replicas(strategy, strategy.run(step_fn, args=batch))
            totals = {key: totals[key] + sums[key] for key in totals}
        return totals

    return eval_pass


def _means(totals: dict, num_steps: int) -> dict[str, float]:
    count = max(float(totals["count"]), 1.0)
    means = {key: float(totals[key]) / count for key in ("loss", "top1", "top3", "map3")}
    if "grad_norm" in totals:
        means["grad_norm"] = float(totals["grad_norm"]) / max(num_steps, 1)
    return means


def _distributed_dataset(strategy, config: TrainConfig, input_config, split: str, training: bool):
    """Each input pipeline (one per worker) reads its own shard and batches per replica.

    distribute_datasets_from_function rather than experimental_distribute_dataset: tf.data's
    automatic FILE sharding cannot see through bucket_by_sequence_length (group_by_window), and its
    DATA fallback makes every worker read and parse every record.
    """

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        per_replica = dataclasses.replace(
            input_config, batch_size=context.get_per_replica_batch_size(input_config.batch_size)
        )
        shard = (context.num_input_pipelines, context.input_pipeline_id)
        return input_pipeline.make_dataset(
            config.data_dir, split, per_replica, training=training, shard=shard
        )

    return strategy.distribute_datasets_from_function(dataset_fn)


def _write_scalars(writer, step: int, values: dict[str, float]) -> None:
    with writer.as_default(step=step):
        for key, value in values.items():
            tf.summary.scalar(key, value)
    writer.flush()


def _summary_batch(config: TrainConfig) -> tuple[dict, tf.Tensor]:
    """The first num_summary_drawings eval drawings: read once, drawn with the predictions at each eval."""
    eval_dataset = input_pipeline.make_dataset(config.data_dir, "eval", config.input, training=False)
    inputs, labels = next(iter(eval_dataset))
    count = config.num_summary_drawings
    return {key: value[:count] for key, value in inputs.items()}, labels[:count]


def _drawings_png(state: _State, batch: tuple[dict, tf.Tensor], classes: list[str]) -> bytes:
    """The summary drawings, titled with their true and predicted class."""
    inputs, labels = batch
    predicted = tf.argmax(state.model(inputs, training=False), axis=-1).numpy()
    titles = [
        f"true: {classes[t]} / pred: {classes[p]}" for t, p in zip(labels.numpy(), predicted, strict=True)
    ]
    if "ink" in inputs:
        return plots.drawings_png(inputs["ink"].numpy(), inputs["length"].numpy(), titles)
    return plots.bitmaps_png(inputs["image"].numpy(), titles)


def _restore(state: _State, checkpoint_dir: str) -> None:
    latest = tf.train.latest_checkpoint(checkpoint_dir)
    if latest:
        state.checkpoint.restore(latest).assert_existing_objects_matched()
        logging.info("restored checkpoint at step %d from %s", int(state.step.numpy()), latest)


def _save_final_model(state: _State, config: TrainConfig, classes: list[str], strategy) -> None:
    """model.keras and export/ with the best weights (when an eval ran), else the final ones."""
    best = tf.train.latest_checkpoint(os.path.join(config.model_dir, "best"))
    if best:
        tf.train.Checkpoint(model=state.model).restore(best).expect_partial()
        logging.info(
            "exporting the best checkpoint %s (eval MAP@3 %.4f)", best, float(state.best_map3.numpy())
        )
    chief = is_chief(strategy)
    out_dir = config.model_dir if chief else tempfile.mkdtemp()
    state.model.save(os.path.join(out_dir, "model.keras"))
    export.export_saved_model(state.model, classes, os.path.join(out_dir, "export"))
    if not chief:
        tf.io.gfile.rmtree(out_dir)


def _next_boundary(step: int, config: TrainConfig) -> int:
    intervals = (config.log_every, config.eval_every, config.checkpoint_every)
    return min(config.train_steps, *((step // n + 1) * n for n in intervals))


def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> dict[str, float]:
    """Trains to config.train_steps (resuming from model_dir) and returns the last eval metrics."""
    strategy = strategy or tf.distribute.get_strategy()
    validate(config, strategy.num_replicas_in_sync)
    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision != "off":
        keras.config.set_dtype_policy(f"mixed_{config.mixed_precision}")
    try:
        return _train(config, strategy)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _write_config(config: TrainConfig) -> None:
    """Atomically (rename), so that another worker's validate() never reads half a file."""
    tf.io.gfile.makedirs(config.model_dir)
    path = os.path.join(config.model_dir, CONFIG_FILE)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(config.to_json())
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def _summary_writers(config: TrainConfig, chief: bool):
    if not chief:
        return tf.summary.create_noop_writer(), tf.summary.create_noop_writer()
    return (
        tf.summary.create_file_writer(os.path.join(config.model_dir, "train")),
        tf.summary.create_file_writer(os.path.join(config.model_dir, "eval")),
    )


def _checkpoint_managers(state: _State, config: TrainConfig, strategy):
    """The last keep_checkpoints checkpoints, and (separately) the best one by eval MAP@3."""
    last = tf.train.CheckpointManager(
        state.checkpoint, _write_dir(config.model_dir, "checkpoints", strategy), config.keep_checkpoints
    )
    best = tf.train.CheckpointManager(state.checkpoint, _write_dir(config.model_dir, "best", strategy), 1)
    return last, best


def _train(config: TrainConfig, strategy: tf.distribute.Strategy) -> dict[str, float]:
    chief = is_chief(strategy)
    classes = input_pipeline.read_classes(config.data_dir)
    keras.utils.set_random_seed(config.seed)
    if chief:
        _write_config(config)
    with strategy.scope():
        state = _State(config, len(classes))
    if config.jit_compile:
        check_jit_support(state.model)
    _restore(state, os.path.join(config.model_dir, "checkpoints"))
    manager, best_manager = _checkpoint_managers(state, config, strategy)
    train_writer, eval_writer = _summary_writers(config, chief)

    step = int(state.step.numpy())
    # Re-seeding with the step keeps a resumed run from replaying the batches it already trained on.
    input_config = dataclasses.replace(config.input, seed=config.seed + step)
    iterator = iter(_distributed_dataset(strategy, config, input_config, "train", training=True))
    distributed_eval = _distributed_dataset(strategy, config, config.input, "eval", training=False)
    train_loop = _make_train_loop(strategy, state, config)
    eval_pass = _make_eval_pass(strategy, state)
    summary_batch = _summary_batch(config) if chief and config.num_summary_drawings else None

    eval_metrics: dict[str, float] = {}
    totals, steps_since_log, train_seconds = _zeros(), 0, 0.0
    while step < config.train_steps:
        boundary = _next_boundary(step, config)
        steps_since_log += boundary - step
        started = time.perf_counter()
        chunk = train_loop(iterator, tf.constant(boundary - step, tf.int32))
        step = int(state.step.numpy())  # also waits for the chunk to finish
        train_seconds += time.perf_counter() - started  # examples/s leaves out eval and checkpoints
        totals = {key: totals[key] + chunk[key] for key in totals}
        done = step >= config.train_steps
        if step % config.log_every == 0 or done:
            _log_train(train_writer, state, step, totals, steps_since_log, train_seconds)
            totals, steps_since_log, train_seconds = _zeros(), 0, 0.0
        if step % config.eval_every == 0 or done:
            eval_metrics = _evaluate(state, eval_pass, distributed_eval)
            _write_scalars(eval_writer, step, eval_metrics)
            if summary_batch is not None:
                _write_drawings(eval_writer, state, summary_batch, classes, step)
            if eval_metrics["map3"] > float(state.best_map3.numpy()):
                state.best_map3.assign(eval_metrics["map3"])
                best_manager.save(checkpoint_number=step)
        if step % config.checkpoint_every == 0 or done:
            manager.save(checkpoint_number=step)
    _remove_worker_dirs(config, strategy)
    _save_final_model(state, config, classes, strategy)
    logging.info("finished at step %d", int(state.step.numpy()))
    return eval_metrics


def _log_train(writer, state: _State, step: int, totals: dict, num_steps: int, seconds: float) -> None:
    values = _means(totals, num_steps)
    values["learning_rate"] = float(state.optimizer.learning_rate.numpy())
    values["examples_per_second"] = float(totals["count"]) / max(seconds, 1e-9)
    _write_scalars(writer, step, values)
    logging.info("step %d: %s", step, " ".join(f"{k} {v:.4g}" for k, v in values.items()))


def _write_drawings(
    writer, state: _State, batch: tuple[dict, tf.Tensor], classes: list[str], step: int
) -> None:
    """The summary drawings rendered with their true and predicted class, as an image summary."""
    png = _drawings_png(state, batch, classes)
    with writer.as_default(step=step):
        tf.summary.image("drawings", plots.png_summary_image(png))
    writer.flush()


def _evaluate(state: _State, eval_pass, distributed_eval) -> dict[str, float]:
    values = _means(eval_pass(distributed_eval), 0)
    logging.info(
        "eval at step %d: %s", int(state.step.numpy()), " ".join(f"{k} {v:.4f}" for k, v in values.items())
    )
    return values


def _remove_worker_dirs(config: TrainConfig, strategy) -> None:
    if not is_chief(strategy):
        path = os.path.join(config.model_dir, "workertemp")
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
