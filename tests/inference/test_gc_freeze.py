"""gc_freeze: start-up garbage is collected, then every object still alive is frozen out of the collector's
walks; importing the library freezes nothing (only the command modules call it)."""

from __future__ import annotations

import gc
import weakref

from quickdraw_tf.inference import gc_freeze


class _Cycle:
    def __init__(self):
        self.me = self


def test_start_up_garbage_is_collected_and_the_rest_frozen():
    assert gc.get_freeze_count() == 0  # the library's import froze nothing
    garbage, kept = _Cycle(), _Cycle()
    garbage_ref = weakref.ref(garbage)
    del garbage  # a reference cycle: only the collector frees it
    try:
        frozen = gc_freeze.freeze_startup_objects()
        assert frozen == gc.get_freeze_count() > 1000
        assert garbage_ref() is None  # collected, not frozen
        assert not _in_a_generation(kept)  # frozen: the collector no longer walks it
    finally:
        gc.unfreeze()
    assert _in_a_generation(kept)


def _in_a_generation(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())
