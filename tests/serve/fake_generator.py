"""A stand-in for serve.completion.Generator used ONLY by the unit and transport tests of /v1/complete's
mechanics (queue bound, deadline, a client hanging up). It has no model: each "step" sleeps, and it asks
should_stop between steps as the real sampler does. The real generator's answers are tested in
test_complete.py and test_hostile_completion.py with a Sketch-RNN trained in the session."""

from __future__ import annotations

import threading
import time

from quickdraw_tf.models.sketch_sampling import SamplingStopped
from quickdraw_tf.serve.completion import Completion


class FakeGenerator:
    classes = ["cat", "dog"]
    name = "fake_sketch"
    max_seq_len = 100

    def __init__(self, steps: int = 3, step_s: float = 0.01):
        self.steps = steps  # set it very high for a completion that only a stop ends
        self.step_s = step_s
        self.started = threading.Event()
        self.stopped = threading.Event()

    def complete(self, strokes, word: str, temperature: float, seed: int | None = None,
                 should_stop=None) -> Completion:
        self.started.set()
        for _ in range(self.steps):
            if should_stop is not None and should_stop():
                self.stopped.set()
                raise SamplingStopped("stopped")
            time.sleep(self.step_s)
        return Completion(strokes=[[[1.0, 2.0], [3.0, 4.0]]], tries=1)
