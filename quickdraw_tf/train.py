r"""Trains a model on make_tfrecords output: `python -m quickdraw_tf.train --flagfile=configs/rnn.flags`.

  python -m quickdraw_tf.train --flagfile=configs/rnn_small.flags \
      --data_dir=data/tfrecords --model_dir=runs/demo

Model hyper-parameters go through the repeatable --hparams=key=value flag (values are Python literals:
--hparams=num_conv=48,64,96 --hparams=batch_norm=true --hparams=conv_activation=relu); the model's
constructor defaults apply to the rest and an unknown key is an error that lists the known ones.
--batch_size is GLOBAL: tf.distribute splits it over the replicas.
"""

from __future__ import annotations

from absl import app, flags, logging

from quickdraw_tf import cli, input_pipeline, models, trainer

_DATA_DIR = flags.DEFINE_string("data_dir", None, "make_tfrecords output dir (classes.txt + TFRecords).")
_MODEL_DIR = flags.DEFINE_string("model_dir", None, "Checkpoints, TensorBoard logs and exports go here.")
_MODEL = flags.DEFINE_string("model", "rnn", f"Model name, one of: {', '.join(models.MODEL_NAMES)}.")
_HPARAMS = flags.DEFINE_multi_string("hparams", [], "Model hyper-parameter key=value; repeat the flag.")
_STRATEGY = flags.DEFINE_enum("strategy", "default", trainer.STRATEGIES, "tf.distribute strategy.")
_TPU = flags.DEFINE_string("tpu", "", "TPU name or grpc:// address for --strategy=tpu.")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 1000, "Total optimizer steps (a restart continues to it).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "GLOBAL batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (peak after warmup).")
_LR_SCHEDULE = flags.DEFINE_enum("lr_schedule", "constant", trainer.LR_SCHEDULES, "Decay after warmup.")
_WARMUP_STEPS = flags.DEFINE_integer("warmup_steps", 0, "Linear learning-rate warmup steps.")
_CLIP_NORM = flags.DEFINE_float("clip_norm", 9.0, "Clip the global gradient norm to this (0: no clipping).")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 500, "Evaluate on the eval split every N steps.")
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", 500, "Checkpoint every N steps.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 100, "Write train summaries every N steps.")
_KEEP_CHECKPOINTS = flags.DEFINE_integer(
    "keep_checkpoints", 3, "Keep the last N checkpoints (plus the best)."
)
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "off", trainer.MIXED_PRECISION, "float16 (GPU, with loss scaling) or bfloat16 (TPU)."
)
_SHUFFLE_BUFFER = flags.DEFINE_integer("shuffle_buffer", 10_000, "Shuffle buffer, in drawings.")
_BUCKET_BOUNDARIES = flags.DEFINE_list(
    "bucket_boundaries",
    ["32", "48", "64", "96", "128", "192"],
    "Length bucket boundaries; empty: no bucketing.",
)
_STATIC_SHAPES = flags.DEFINE_bool(
    "static_shapes",
    False,
    "Pad to bucket boundaries, drop partial batches, truncate to the largest (TPU/XLA).",
)
_MAX_LENGTH = flags.DEFINE_integer("max_length", 0, "Truncate longer drawings (0: never).")
_AUGMENT_SCALE = flags.DEFINE_float("augment_scale", 0.0, "Random x/y scale in [1-s, 1+s] (training only).")
_AUGMENT_DROP_PROB = flags.DEFINE_float("augment_drop_prob", 0.0, "sketch-rnn point dropping probability.")
_AUGMENT_ROTATION = flags.DEFINE_float(
    "augment_rotation", 0.0, "Random rotation in +-degrees (training only)."
)
_SEED = flags.DEFINE_integer("seed", 0, "Initialization and shuffling seed.")

flags.mark_flags_as_required(["data_dir", "model_dir"])


def config_from_flags() -> trainer.TrainConfig:
    """The TrainConfig the parsed flags describe."""
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
        model_dir=_MODEL_DIR.value,
        model=_MODEL.value,
        hparams=models.parse_hparams(_HPARAMS.value),
        input=input_config,
        train_steps=_TRAIN_STEPS.value,
        learning_rate=_LEARNING_RATE.value,
        lr_schedule=_LR_SCHEDULE.value,
        warmup_steps=_WARMUP_STEPS.value,
        clip_norm=_CLIP_NORM.value,
        eval_every=_EVAL_EVERY.value,
        checkpoint_every=_CHECKPOINT_EVERY.value,
        log_every=_LOG_EVERY.value,
        keep_checkpoints=_KEEP_CHECKPOINTS.value,
        mixed_precision=_MIXED_PRECISION.value,
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
    logging.info("training %s on %d replica(s)", config.model, strategy.num_replicas_in_sync)
    trainer.train(config, strategy)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
