"""What input_bench.py and train_bench.py share: a training-speed measurement with the real loop."""

from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from quickdraw_tf import input_pipeline, trainer

# The model of configs/rnn_cpu.flags.
RNN_CPU_HPARAMS = {
    "num_conv": (48, 64, 96),
    "conv_len": (5, 5, 3),
    "num_layers": 2,
    "num_nodes": 64,
    "batch_norm": True,
    "conv_activation": "relu",
    "dropout": 0.3,
}
RNN_CPU_INPUT = input_pipeline.InputConfig(
    batch_size=32,
    shuffle_buffer=5000,
    bucket_boundaries=(24, 32, 40, 48, 64, 80, 96, 128),
    max_length=200,
    augment_scale=0.15,
    augment_drop_prob=0.1,
    augment_rotation=15.0,
)


def training_examples_per_second(
    data_dir: str, input_config: input_pipeline.InputConfig, steps: int, hparams: dict | None = None
) -> float:
    """Examples/s of the real training loop, tracing left out: the loop logs every steps // 4 steps
    and the first of the four chunks (which holds the tf.function tracing) is dropped."""
    with tempfile.TemporaryDirectory() as model_dir:
        config = trainer.TrainConfig(
            data_dir=data_dir,
            model_dir=model_dir,
            hparams=RNN_CPU_HPARAMS if hparams is None else hparams,
            input=input_config,
            train_steps=steps,
            eval_every=steps,
            checkpoint_every=steps,
            log_every=max(1, steps // 4),
            num_summary_drawings=0,
            learning_rate=3e-3,
        )
        trainer.train(config)
        accumulator = event_accumulator.EventAccumulator(
            os.path.join(model_dir, "train"), size_guidance={event_accumulator.TENSORS: 0}
        )
        accumulator.Reload()
        rates = [float(tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors("examples_per_second")]
    return float(np.mean(rates[1:]))


def padded_share(data_dir: str, input_config: input_pipeline.InputConfig, batches: int) -> float:
    """Share of the time steps in `batches` training batches that are padding."""
    dataset = input_pipeline.make_dataset(data_dir, "train", input_config, training=True)
    valid = total = 0
    for inputs, _ in dataset.take(batches):
        valid += int(tf.reduce_sum(inputs["length"]))
        total += int(tf.size(inputs["length"])) * int(tf.shape(inputs["ink"])[1])
    return 1.0 - valid / total


def replace(config: input_pipeline.InputConfig, **changes) -> input_pipeline.InputConfig:
    return dataclasses.replace(config, **changes)
