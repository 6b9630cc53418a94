r"""Trains a model on make_tfrecords output: `python -m quickdraw_tf.train --flagfile=configs/rnn.flags`.

  python -m beam_jobs.make_tfrecords --runner=DirectRunner      # writes data/tfrecords
  python -m quickdraw_tf.train --flagfile=configs/rnn.flags      # reads it, writes runs/rnn
  tensorboard --logdir runs

--data_dir defaults to data/tfrecords (make_tfrecords' default --output_dir) and --model_dir to
runs/<name of the last --flagfile>, or runs/<model name> without a flagfile.

Model hyper-parameters go through the repeatable --hparams=key=value flag (values are Python literals:
--hparams=num_conv=48,64,96 --hparams=batch_norm=true --hparams=conv_activation=relu); the model's
constructor defaults apply to the rest and an unknown key is an error that lists the known ones.
--batch_size is GLOBAL: tf.distribute splits it over the replicas.
"""

from __future__ import annotations

import sys

from absl import app, flags, logging

import quickdraw_tf.quiet  # noqa: F401  (before TensorFlow: see quiet.py)
from quickdraw_tf import cli, input_pipeline, layout, models, trainer

# Flag defaults are the config classes' defaults, so a library call and the CLI agree.
_TRAIN, _INPUT = trainer.TrainConfig(data_dir="", model_dir=""), input_pipeline.InputConfig()

_DATA_DIR = flags.DEFINE_string(
    "data_dir", layout.DEFAULT_DATA_DIR, "make_tfrecords output dir (classes.txt + TFRecords)."
)
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "Checkpoints, TensorBoard logs and exports (default: runs/<flagfile name>)."
)
_MODEL = flags.DEFINE_string("model", _TRAIN.model, f"Model name, one of: {', '.join(models.MODEL_NAMES)}.")
_HPARAMS = flags.DEFINE_multi_string("hparams", [], "Model hyper-parameter key=value; repeat the flag.")
_STRATEGY = flags.DEFINE_enum("strategy", "default", trainer.STRATEGIES, "tf.distribute strategy.")
_TPU = flags.DEFINE_string("tpu", "", "TPU name or grpc:// address for --strategy=tpu.")
_TRAIN_STEPS = flags.DEFINE_integer(
    "train_steps", _TRAIN.train_steps, "Total optimizer steps (a restart continues to it)."
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", _INPUT.batch_size, "GLOBAL batch size.")
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", _TRAIN.learning_rate, "Adam learning rate (peak after warmup)."
)
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", _TRAIN.lr_schedule, trainer.LR_SCHEDULES, "Decay after warmup."
)
_WARMUP_STEPS = flags.DEFINE_integer(
    "warmup_steps", _TRAIN.warmup_steps, "Linear learning-rate warmup steps."
)
_LR_DECAY_RATE = flags.DEFINE_float(
    "lr_decay_rate", _TRAIN.lr_decay_rate, "exponential schedule: rate per step (sketch-rnn: 0.9999)."
)
_MIN_LEARNING_RATE = flags.DEFINE_float(
    "min_learning_rate", _TRAIN.min_learning_rate, "exponential schedule: the rate it decays towards."
)
_CLIP_NORM = flags.DEFINE_float(
    "clip_norm", _TRAIN.clip_norm, "Clip the global gradient norm to this (0: no clipping)."
)
_EVAL_EVERY = flags.DEFINE_integer(
    "eval_every", _TRAIN.eval_every, "Evaluate on the eval split every N steps."
)
_CHECKPOINT_EVERY = flags.DEFINE_integer(
    "checkpoint_every", _TRAIN.checkpoint_every, "Checkpoint every N steps."
)
_LOG_EVERY = flags.DEFINE_integer("log_every", _TRAIN.log_every, "Write train summaries every N steps.")
_KEEP_CHECKPOINTS = flags.DEFINE_integer(
    "keep_checkpoints", _TRAIN.keep_checkpoints, "Keep the last N checkpoints (plus the best)."
)
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision",
    _TRAIN.mixed_precision,
    trainer.MIXED_PRECISION,
    "float16 (GPU, with loss scaling) or bfloat16 (TPU).",
)
_JIT_COMPILE = flags.DEFINE_bool(
    "jit_compile", _TRAIN.jit_compile, "XLA-compile the training step (needs --static_shapes)."
)
_SHUFFLE_BUFFER = flags.DEFINE_integer(
    "shuffle_buffer", _INPUT.shuffle_buffer, "Shuffle buffer, in drawings."
)
_BUCKET_BOUNDARIES = flags.DEFINE_list(
    "bucket_boundaries",
    [str(b) for b in _INPUT.bucket_boundaries],
    "Length bucket boundaries; empty: no bucketing.",
)
_STATIC_SHAPES = flags.DEFINE_bool(
    "static_shapes",
    _INPUT.static_shapes,
    "Pad to bucket boundaries, drop partial batches, truncate to the largest (TPU/XLA).",
)
_MAX_LENGTH = flags.DEFINE_integer("max_length", _INPUT.max_length, "Truncate longer drawings (0: never).")
_AUGMENT_SCALE = flags.DEFINE_float(
    "augment_scale", _INPUT.augment_scale, "Random x/y scale in [1-s, 1+s] (training only)."
)
_AUGMENT_DROP_PROB = flags.DEFINE_float(
    "augment_drop_prob", _INPUT.augment_drop_prob, "sketch-rnn point dropping probability."
)
_AUGMENT_ROTATION = flags.DEFINE_float(
    "augment_rotation", _INPUT.augment_rotation, "Random rotation in +-degrees (training only)."
)
_SEED = flags.DEFINE_integer("seed", _TRAIN.seed, "Initialization and shuffling seed.")


def config_from_flags(argv: list[str] | None = None) -> trainer.TrainConfig:
    """The TrainConfig the parsed flags describe; argv (default sys.argv) names the default model_dir."""
    input_config = input_pipeline.InputConfig(
        batch_size=_BATCH_SIZE.value,
        shuffle_buffer=_SHUFFLE_BUFFER.value,
        bucket_boundaries=tuple(int(b) for b in _BUCKET_BOUNDARIES.value),
        static_shapes=_STATIC_SHAPES.value,
        max_length=_MAX_LENGTH.value,
        augment_scale=_AUGMENT_SCALE.value,
        augment_drop_prob=_AUGMENT_DROP_PROB.value,
        augment_rotation=_AUGMENT_ROTATION.value,
    )
    return trainer.TrainConfig(
        data_dir=_DATA_DIR.value,
        model_dir=_MODEL_DIR.value or cli.default_model_dir(argv or sys.argv, _MODEL.value),
        model=_MODEL.value,
        hparams=models.parse_hparams(_HPARAMS.value),
        input=input_config,
        train_steps=_TRAIN_STEPS.value,
        learning_rate=_LEARNING_RATE.value,
        lr_schedule=_LR_SCHEDULE.value,
        warmup_steps=_WARMUP_STEPS.value,
        lr_decay_rate=_LR_DECAY_RATE.value,
        min_learning_rate=_MIN_LEARNING_RATE.value,
        clip_norm=_CLIP_NORM.value,
        eval_every=_EVAL_EVERY.value,
        checkpoint_every=_CHECKPOINT_EVERY.value,
        log_every=_LOG_EVERY.value,
        keep_checkpoints=_KEEP_CHECKPOINTS.value,
        mixed_precision=_MIXED_PRECISION.value,
        jit_compile=_JIT_COMPILE.value,
        seed=_SEED.value,
    )


def main(argv: list[str]) -> None:
    del argv
    try:
        config = config_from_flags()
        strategy = trainer.make_strategy(_STRATEGY.value, _TPU.value)
        trainer.validate(config, strategy.num_replicas_in_sync)
    except (ValueError, FileNotFoundError) as error:
        cli.fail(error)
    print(f"data_dir:    {config.data_dir}", flush=True)
    print(f"model_dir:   {config.model_dir}", flush=True)
    print(f"TensorBoard: tensorboard --logdir {config.model_dir}", flush=True)
    logging.info("training %s on %d replica(s)", config.model, strategy.num_replicas_in_sync)
    try:
        with input_pipeline.naming_bad_shards(config.data_dir):
            trainer.train(config, strategy)
    except layout.DataDirError as error:  # e.g. a shard corrupted after validate() checked its size
        cli.fail(error)
    except trainer.JitUnsupportedError as error:  # known only once the model is built
        cli.fail(error)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
