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

from quickdraw_tf import cli, quiet
from quickdraw_tf.data import layout

quiet.import_tensorflow_quietly()  # before anything imports TensorFlow: see quiet.py

# isort: split

from quickdraw_tf.inference import gc_freeze
from quickdraw_tf.training import config_flags, distribute, input_pipeline, trainer
from quickdraw_tf.training.train_config import TrainConfig

# Every TrainConfig / InputConfig field with a help text is a flag (quickdraw_tf/training/config_flags.py).
config_flags.define_flags(TrainConfig)
_STRATEGY = flags.DEFINE_enum("strategy", "default", distribute.STRATEGIES, "tf.distribute strategy.")
_TPU = flags.DEFINE_string("tpu", "", "TPU name or grpc:// address for --strategy=tpu.")
FLAGS = flags.FLAGS


def config_from_flags(argv: list[str] | None = None) -> TrainConfig:
    """The TrainConfig the parsed flags describe; argv (default sys.argv) names the default model_dir."""
    model_dir = FLAGS.model_dir or config_flags.default_model_dir(argv or sys.argv, FLAGS.model)
    return config_flags.config_from_flags(TrainConfig, FLAGS, model_dir=model_dir)


def main(argv: list[str]) -> None:
    del argv
    try:
        config = config_from_flags()
        strategy = distribute.make_strategy(_STRATEGY.value, _TPU.value)
        trainer.validate(config, strategy.num_replicas_in_sync)
    except (ValueError, FileNotFoundError) as error:
        cli.fail(error)
    print(f"data_dir:    {config.data_dir}", flush=True)
    print(f"model_dir:   {config.model_dir}", flush=True)
    print(f"TensorBoard: tensorboard --logdir {config.model_dir}", flush=True)
    logging.info("training %s on %d replica(s)", config.model, strategy.num_replicas_in_sync)
    gc_freeze.freeze_startup_objects()  # TensorFlow's and Keras' import-time objects: never walked again
    try:
        with input_pipeline.naming_bad_shards(config.data_dir):
            trainer.train(config, strategy)
    except layout.DataDirError as error:  # e.g. a shard corrupted after validate() checked its size
        cli.fail(error)
    except trainer.JitUnsupportedError as error:  # known only once the model is built
        cli.fail(error)


if __name__ == "__main__":
    app.run(main, flags_parser=cli.flags_parser(flags.FLAGS))
