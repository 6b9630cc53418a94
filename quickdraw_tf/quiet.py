"""TensorFlow without its start-up noise on a CPU machine, for the commands (python -m quickdraw_tf.X):
each calls import_tensorflow_quietly() before anything imports TensorFlow. Importing this module changes
nothing; the call changes the process (file descriptor 2 for a moment, TensorFlow's logging), which is
a program's business, not a library's.

On a machine without a GPU, TensorFlow prints lines that look like failures to a newcomer, before absl
logging is initialised and so whatever TF_CPP_MIN_LOG_LEVEL says:
  WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
  I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
  E0000 ... cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ... (303)
The first two come with `import tensorflow`, the last with the first use of a device.
import_tensorflow_quietly() imports TensorFlow and lists its devices with file descriptor 2 pointed at
/dev/null (Python exceptions still print: they are raised after it is restored), and sets
TF_CPP_MIN_LOG_LEVEL=2 unless it is set, so TensorFlow's C++ info and warning logs stay off too, and
sets TensorFlow's Python logger to WARNING: its INFO lines ("Assets written to", "Sharding callback
duration", "Writing fingerprint") are TensorFlow's bookkeeping, not the CLI's progress.

`--verbosity=1` (or -v 1, absl's flag; any value >= 1) on the command line keeps everything: the lines
above print, TensorFlow's INFO logs follow absl's verbosity, and TF_CPP_MIN_LOG_LEVEL is left as it is
(set TF_CPP_MIN_LOG_LEVEL=0 too for TensorFlow's C++ info logs).
The command line is read here, before absl parses it, because the noise comes at import time; a
verbosity given only in a --flagfile is not seen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from absl import logging as absl_logging


@contextlib.contextmanager
def stderr_closed() -> Iterator[None]:
    """Points file descriptor 2 at /dev/null: also silences C++ code, which Python's sys.stderr does not."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def verbosity(argv: Sequence[str]) -> int:
    """absl's --verbosity (also -v, --v) as given in argv; 0 (absl's default) when absent or unreadable."""
    value = None
    for index, arg in enumerate(argv):
        name, equals, text = arg.partition("=")
        if name in ("--verbosity", "-verbosity", "-v", "--v"):
            value = text if equals else (argv[index + 1] if index + 1 < len(argv) else None)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0  # absl reports the bad value itself when it parses the flags


def import_tensorflow_quietly(argv: Sequence[str] | None = None):
    """`import tensorflow` and its device setup, without the noise unless argv asks for --verbosity >= 1."""
    argv = sys.argv if argv is None else argv
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if verbosity(argv) >= 1:
        import tensorflow as tf

        return tf
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with stderr_closed():
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA's initialisation (cuInit) happens here, not at the first op
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
    absl_logging.get_absl_logger().addFilter(_DropLibraryInfo())
    return tf


class _DropLibraryInfo(logging.Filter):
    """Drops the INFO lines TensorFlow and Keras write through absl (checkpoint sharding times, SavedModel
    fingerprints, renamed signature inputs): our CLIs log their own progress through absl at INFO too."""

    _LIBRARIES = (f"{os.sep}tensorflow{os.sep}", f"{os.sep}keras{os.sep}")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not any(lib in record.pathname for lib in self._LIBRARIES)
