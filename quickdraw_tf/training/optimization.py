"""The optimizer of a training run: Adam on a warmup + decay schedule (loss-scaled under float16), and
gradient clipping by the GLOBAL norm across replicas."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from quickdraw_tf.training.train_config import TrainConfig


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup over warmup_steps, then constant, cosine decay to 0 at total_steps, or exponential
    decay towards min_rate (sketch-rnn's: min + (base - min) * decay_rate ** step)."""

    def __init__(
        self,
        base_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        decay: str = "constant",
        decay_rate: float = 0.9999,
        min_rate: float = 1e-5,
    ):
        self.base_rate = base_rate
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.decay = decay
        self.decay_rate = decay_rate
        self.min_rate = min_rate

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        rate = tf.constant(self.base_rate, tf.float32)
        if self.warmup_steps:
            rate *= tf.minimum(1.0, (step + 1.0) / self.warmup_steps)
        if self.decay == "cosine":
            decay_steps = max(self.total_steps - self.warmup_steps, 1)
            progress = tf.clip_by_value((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
            rate *= 0.5 * (1.0 + tf.cos(math.pi * progress))
        if self.decay == "exponential":
            rate = self.min_rate + (rate - self.min_rate) * tf.pow(self.decay_rate, step)
        return rate

    def get_config(self) -> dict:
        return dict(
            base_rate=self.base_rate,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            decay=self.decay,
            decay_rate=self.decay_rate,
            min_rate=self.min_rate,
        )


def build_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    schedule = LearningRate(
        config.learning_rate,
        config.train_steps,
        config.warmup_steps,
        config.lr_schedule,
        config.lr_decay_rate,
        config.min_learning_rate,
    )
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    if config.mixed_precision == "float16":  # bfloat16 has float32's range: no loss scaling needed
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def clipped_gradients(grads, loss_scale, clip_norm: float):
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
