"""Long-lived processes (the server, predict over many files, training) take what import and warm-up
made out of the reach of Python's cyclic garbage collector.

Importing TensorFlow and Keras and tracing a model leaves hundreds of thousands of objects alive for the
life of the process. A full collection walks every one of them, hundreds of milliseconds on a 2-core CPU,
and lands on whichever request or batch happens to allocate at that moment.
`gc.freeze()` moves every object alive now into a permanent generation the collector never walks, so
later collections only see what was made since; the garbage left by start-up is collected first.

Called by the command modules only (serve, predict, train): a library import changes nothing.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collects start-up garbage, then freezes every object still alive; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
