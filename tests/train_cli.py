"""The TrainConfig that `python -m quickdraw_tf.train ARGV` builds, for tests that compare against it."""

from absl import flags

from quickdraw_tf import train
from quickdraw_tf.training import train_config


def config_as_the_cli_builds_it(argv: list[str]) -> train_config.TrainConfig:
    """argv parsed into absl's global FLAGS as train.py's main() does, and the flags unparsed again after."""
    flags.FLAGS.unparse_flags()
    try:
        flags.FLAGS(argv)
        return train.config_from_flags(argv)
    finally:
        flags.FLAGS.unparse_flags()
