"""The training loop: ONE custom loop for every tf.distribute strategy (default, mirrored,
multi_worker, tpu). Keras 3's model.fit does not run under MultiWorkerMirroredStrategy
(keras-team/keras#20585), so the loop is written out: strategy.run inside a tf.function.
train() reads top to bottom: setup, restore, data, loop, export.

model_dir after a run (run_dir.py names and reads every file):
  config.json             the run's TrainConfig (evaluation rebuilds the model from it)
  preprocessing.json, classes.txt   how the inputs were made (from stats.json) and the classes
  checkpoints/            the last --keep_checkpoints checkpoints (model, optimizer, step, best MAP@3)
  best/                   the checkpoint with the best eval MAP@3 so far
  train/, eval/           TensorBoard logs
  model.keras, export/    the best (else the final) weights as a Keras file and as a SavedModel
Restarted on the same model_dir (also after kill -9) it restores the latest checkpoint and goes on to
train_steps. The data order does not resume: the shuffle is re-seeded with the restored step.

Classifiers are trained on cross-entropy and the best checkpoint is the highest eval MAP@3. A model with
its own loss (the generator models/sketch_rnn.py) is trained on its `loss_sums`, the best checkpoint is the
lowest eval loss, and its `adapt_to_data` runs once before step 0 (written to data_stats.json). Which of the
two a model is, and its own TensorBoard pictures (a generator's samples per class, in place of the eval
drawings), are its hooks (models/contract.py), checked once when the model is built (TrainState.hooks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Iterator

import keras
import tensorflow as tf
from absl import logging

from quickdraw_tf import models
from quickdraw_tf.models import contract
from quickdraw_tf.training import distribute, input_pipeline, metrics, optimization, run_dir, train_outputs
from quickdraw_tf.training.train_config import TrainConfig

METRIC_KEYS = ("loss", "top1", "top3", "map3", "count")


class JitUnsupportedError(ValueError):
    """--jit_compile with a model that holds layers XLA cannot compile."""


@dataclasses.dataclass
class TrainState:
    """What a run holds. model, optimizer, step and best_score are what a checkpoint saves; the two
    checkpoint managers write into model_dir on the chief, into throw-away dirs on the other workers."""

    model: keras.Model
    optimizer: keras.optimizers.Optimizer
    step: tf.Variable
    best_score: tf.Variable  # eval MAP@3, or minus the eval loss for a model with its own loss (score)
    checkpoint: tf.train.Checkpoint
    last: tf.train.CheckpointManager  # the last keep_checkpoints checkpoints
    best: tf.train.CheckpointManager  # the one with the best eval score
    chief: bool  # the worker that writes model_dir: summaries, run files, exports
    hooks: contract.Hooks  # what the loop does with this model: its loss, metrics, pictures, export

    @classmethod
    def create(
        cls, config: TrainConfig, num_classes: int, strategy: tf.distribute.Strategy | None = None
    ) -> TrainState:
        """A new model and optimizer under the strategy's scope (train() then restores a checkpoint)."""
        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            model = run_dir.build_model(config, num_classes)
            optimizer = optimization.build_optimizer(config)
            # Create the slots now so that a restore fills them instead of deferring.
            optimizer.build(model.trainable_variables)
            step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
            best_score = tf.Variable(-math.inf, dtype=tf.float32, trainable=False, name="best_map3")
            checkpoint = tf.train.Checkpoint(
                model=model, optimizer=optimizer, step=step, best_map3=best_score
            )

        def manager(name: str, keep: int) -> tf.train.CheckpointManager:
            directory = distribute.write_dir(config.model_dir, name, strategy)
            return tf.train.CheckpointManager(checkpoint, directory, keep)

        last = manager(run_dir.CHECKPOINTS_DIR, config.keep_checkpoints)
        best = manager(run_dir.BEST_DIR, 1)
        chief, hooks = distribute.is_chief(strategy), models.hooks(config.model, model)
        return cls(model, optimizer, step, best_score, checkpoint, last, best, chief, hooks)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        own_loss = self.hooks.own_loss
        return tuple(own_loss.metric_keys) if own_loss is not None else METRIC_KEYS

    def score(self, values: dict[str, float]) -> float:
        """Higher is better: eval MAP@3, or minus the eval loss for a model with its own loss."""
        return values["map3"] if self.hooks.own_loss is None else -values["loss"]


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
    run_dir.check_writable(config.model_dir)
    previous_config = run_dir.read_config(config.model_dir, required=False)
    if previous_config is not None:
        previous, new = json.loads(previous_config.to_json()), json.loads(config.to_json())
        if (previous["model"], previous["hparams"]) != (new["model"], new["hparams"]):
            raise ValueError(
                f"--model_dir {config.model_dir} holds model {previous['model']} {previous['hparams']}, "
                f"not {new['model']} {new['hparams']}: use another --model_dir"
            )


def check_jit_support(model: keras.Model) -> None:
    """Raises JitUnsupportedError when a layer cannot be XLA-compiled (Keras marks its cuDNN LSTMs so
    when a GPU is visible)."""
    unsupported = [layer.name for layer in model._flatten_layers() if not layer.supports_jit]
    if unsupported:
        raise JitUnsupportedError(
            f"--jit_compile: XLA cannot compile layers {', '.join(unsupported)} of this model here "
            "(cuDNN LSTMs on GPU): drop --jit_compile"
        )


def loss_and_sums(state: TrainState, inputs, labels, training: bool) -> tuple[tf.Tensor, dict]:
    """(per-example loss [B], summed metrics with the summed loss as "loss"), for the train and the eval
    step alike: cross-entropy and top-k, or the model's own loss_sums."""
    own_loss = state.hooks.own_loss
    if own_loss is not None:
        per_example, sums = own_loss.loss_sums(inputs, labels, step=state.step, training=training)
    else:
        logits = state.model(inputs, training=training)
        per_example = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        sums = metrics.classification_sums(logits, labels)
    return per_example, {**sums, "loss": tf.reduce_sum(per_example)}


def train_step_fn(state: TrainState, config: TrainConfig):
    """One replica's step: (summed metrics, global gradient norm); jit_compile makes it one XLA program."""
    optimizer = state.optimizer

    def step_fn(inputs, labels):
        with tf.GradientTape() as tape:
            per_example, sums = loss_and_sums(state, inputs, labels, training=True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=config.input.batch_size)
            scaled_loss = optimizer.scale_loss(loss)
        variables = state.model.trainable_variables
        grads = tape.gradient(scaled_loss, variables)
        loss_scale = tf.cast(getattr(optimizer, "dynamic_scale", 1.0), tf.float32)
        grads, norm = optimization.clipped_gradients(grads, loss_scale, config.clip_norm)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return sums, norm

    # XLA compiles the step (forward, backward, clipping, update), not the loop and iterator around it.
    return tf.function(step_fn, jit_compile=True) if config.jit_compile else step_fn


def make_train_loop(strategy: tf.distribute.Strategy, state: TrainState, config: TrainConfig):
    step_fn = train_step_fn(state, config)

    @tf.function
    def train_loop(iterator, num_steps):
        """num_steps steps in one call: one Python round trip per chunk, not per step."""
        totals = _zeros(state.metric_keys)
        for _ in tf.range(num_steps):
            sums, norm = strategy.run(step_fn, args=next(iterator))
            sums = _sum_over_replicas(strategy, sums)
            sums["grad_norm"] = strategy.reduce(tf.distribute.ReduceOp.MEAN, norm, axis=None)
            totals = {key: totals[key] + sums[key] for key in totals}
            state.step.assign_add(1)
        return totals

    return train_loop


def make_eval_pass(strategy: tf.distribute.Strategy, state: TrainState):
    keys = state.metric_keys

    def step_fn(inputs, labels):
        # A replica left without drawings by the last partial batch gets an empty [0, 0, 3] batch, on
        # which CPU convolutions return the wrong shape: skip the model there.
        return tf.cond(
            tf.size(labels) > 0,
            lambda: loss_and_sums(state, inputs, labels, training=False)[1],
            lambda: {key: tf.constant(0.0) for key in keys},
        )

    @tf.function
    def eval_pass(dataset):
        totals = {key: tf.constant(0.0) for key in keys}
        for batch in dataset:
            sums = _sum_over_replicas(strategy, strategy.run(step_fn, args=batch))
            totals = {key: totals[key] + sums[key] for key in totals}
        return totals

    return eval_pass


def _sum_over_replicas(strategy, per_replica: dict) -> dict:
    return {
        key: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
        for key, value in per_replica.items()
    }


def _zeros(keys: tuple[str, ...]) -> dict:
    return {key: tf.constant(0.0) for key in (*keys, "grad_norm")}


def _means(totals: dict, num_steps: int) -> dict[str, float]:
    count = max(float(totals["count"]), 1.0)
    means = {key: float(value) / count for key, value in totals.items() if key not in ("count", "grad_norm")}
    if "grad_norm" in totals:
        means["grad_norm"] = float(totals["grad_norm"]) / max(num_steps, 1)
    return means


def distributed_dataset(strategy, config: TrainConfig, input_config, split: str, training: bool):
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


@contextlib.contextmanager
def dtype_policy(mixed_precision: str) -> Iterator[None]:
    """Keras' global dtype policy for the run (mixed_float16 / mixed_bfloat16), restored afterwards."""
    previous = keras.config.dtype_policy()
    if mixed_precision != "off":
        keras.config.set_dtype_policy(f"mixed_{mixed_precision}")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _format(values: dict[str, float], spec: str) -> str:
    return " ".join(f"{key} {value:{spec}}" for key, value in values.items())


def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None) -> dict[str, float]:
    """Trains to config.train_steps (resuming from model_dir) and returns the last eval metrics."""
    strategy = strategy or tf.distribute.get_strategy()
    validate(config, strategy.num_replicas_in_sync)
    with dtype_policy(config.mixed_precision):
        # ---- setup: model and optimizer, seeded, under the strategy; the run's files (chief)
        classes = input_pipeline.read_classes(config.data_dir)
        keras.utils.set_random_seed(config.seed)
        state = TrainState.create(config, len(classes), strategy)
        if state.chief:
            run_dir.write_run_files(config, classes)
        if config.jit_compile:
            check_jit_support(state.model)
        train_writer, eval_writer = train_outputs.summary_writers(config.model_dir, state.chief)

        # ---- restore the latest checkpoint (the chief's, on every worker), or initialize from the data
        latest = run_dir.latest_checkpoint(config.model_dir)
        if latest:
            state.checkpoint.restore(latest).assert_existing_objects_matched()
            logging.info("restored checkpoint at step %d from %s", int(state.step.numpy()), latest)
        step = int(state.step.numpy())
        if step == 0 and state.hooks.own_loss is not None:
            # The model's data-dependent constants from one pass over the training split (no augmentation).
            dataset = input_pipeline.make_dataset(config.data_dir, "train", config.input, training=False)
            stats = state.hooks.own_loss.adapt_to_data(dataset)
            logging.info("adapted to the training data: %s", stats)
            if state.chief:
                run_dir.write_data_stats(config.model_dir, stats)

        # ---- data: after the restore, since re-seeding with the step keeps a resumed run from replaying
        # the batches it already trained on
        input_config = dataclasses.replace(config.input, seed=config.seed + step)
        iterator = iter(distributed_dataset(strategy, config, input_config, "train", training=True))
        distributed_eval = distributed_dataset(strategy, config, config.input, "eval", training=False)
        train_loop, eval_pass = make_train_loop(strategy, state, config), make_eval_pass(strategy, state)
        summary_batch = None  # drawn at each eval: the model's own images, or eval drawings predicted
        own_images = state.hooks.summary_images
        if state.chief and config.num_summary_drawings:
            summary_batch = () if own_images else train_outputs.summary_batch(config)

        # ---- loop: chunks of steps up to the next log, eval or checkpoint boundary
        eval_metrics: dict[str, float] = {}
        totals, steps_since_log, train_seconds = _zeros(state.metric_keys), 0, 0.0
        while step < config.train_steps:
            intervals = (config.log_every, config.eval_every, config.checkpoint_every)
            boundary = min(config.train_steps, *((step // n + 1) * n for n in intervals))
            steps_since_log += boundary - step
            started = time.perf_counter()
            chunk = train_loop(iterator, tf.constant(boundary - step, tf.int32))
            step = int(state.step.numpy())  # also waits for the chunk to finish
            train_seconds += time.perf_counter() - started  # examples/s leaves out eval and checkpoints
            totals = {key: totals[key] + chunk[key] for key in totals}
            done = step >= config.train_steps
            if step % config.log_every == 0 or done:
                values = _means(totals, steps_since_log)
                values["learning_rate"] = float(state.optimizer.learning_rate.numpy())
                values["examples_per_second"] = float(totals["count"]) / max(train_seconds, 1e-9)
                train_outputs.write_scalars(train_writer, step, values)
                logging.info("step %d: %s", step, _format(values, ".4g"))
                totals, steps_since_log, train_seconds = _zeros(state.metric_keys), 0, 0.0
            if step % config.eval_every == 0 or done:
                eval_metrics = _means(eval_pass(distributed_eval), 0)
                logging.info("eval at step %d: %s", step, _format(eval_metrics, ".4f"))
                train_outputs.write_scalars(eval_writer, step, eval_metrics)
                if summary_batch is not None:
                    train_outputs.write_drawings(
                        eval_writer, state.model, summary_batch, classes, step, config.num_summary_drawings,
                        own_images,
                    )
                if state.score(eval_metrics) > float(state.best_score.numpy()):
                    state.best_score.assign(state.score(eval_metrics))
                    state.best.save(checkpoint_number=step)
            if step % config.checkpoint_every == 0 or done:
                state.last.save(checkpoint_number=step)

        # ---- export: the best weights (when an eval ran), else the final ones
        if not state.chief:
            distribute.remove_worker_dirs(config.model_dir)
        best = run_dir.best_checkpoint(config.model_dir)
        if best:
            tf.train.Checkpoint(model=state.model).restore(best).expect_partial()
            score = float(state.best_score.numpy())
            logging.info("exporting the best checkpoint %s (eval score %.4f)", best, score)
        train_outputs.save_model(state.model, classes, config.model_dir, state.chief, state.hooks.serves)
        logging.info("finished at step %d", int(state.step.numpy()))
        return eval_metrics
