"""The "finish my drawing" generator: a person's canvas strokes continued by a Sketch-RNN.

The canvas strokes go through the training data's own path (Google's simplification, then the
normalized delta ink) into sketch_sampling.complete, the sampler `generate --complete` uses (decoder
primed with the drawing). The sampled strokes come back in the units of that ink; this module maps
them back through the two scalings (ink: /largest side of the simplified drawing; simplification:
x 255/largest side of the canvas drawing), so they land on the canvas where the drawing continues.

Bounded by the model: a drawing longer than the model's max_seq_len once simplified (longer than any
drawing it trained on) is refused, and a completion adds at most max_seq_len moves. A tiny or young
generator often ends a sample at once; the sampler then draws again, at most
sketch_sampling.COMPLETION_TRIES samples in all.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence

import numpy as np

from quickdraw_tf.data import ink
from quickdraw_tf.data.drawing import Stroke
from quickdraw_tf.inference.generator import load_generator
from quickdraw_tf.models import sketch_sampling

# How many moves a completion may add beyond the model's max_seq_len, as a share of it: a drawing
# already as long as the model's training drawings still gets this much more.
MIN_EXTRA_SHARE = 0.25


class UnknownWord(ValueError):
    """A word the generator was not trained on."""


@dataclasses.dataclass(frozen=True)
class Completion:
    """The new strokes [[xs], [ys]] in canvas coordinates (none when every try ended at once), and the
    number of samples drawn."""

    strokes: list[list[list[float]]]
    tries: int


@dataclasses.dataclass
class Generator:
    """A loaded Sketch-RNN and its classes; complete() is safe to call from several threads."""

    model: object
    classes: list[str]
    step: int
    name: str

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # the sampler's Python loop is not worth running twice at once

    @classmethod
    def load(cls, model_dir: str) -> Generator:
        model, classes, step = load_generator(model_dir)
        return cls(model=model, classes=list(classes), step=int(step), name=f"sketch_rnn@{step}")

    @property
    def max_seq_len(self) -> int:
        """The most moves of a drawing the model trained on (its data's longest, up to the config's cap)."""
        return int(self.model.data_max_seq_len.numpy())

    def complete(
        self,
        strokes: Sequence[Stroke],
        word: str,
        temperature: float,
        seed: int | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Completion:
        """The continuation of canvas `strokes` as new strokes in the canvas' coordinates. ValueError for a
        drawing it cannot continue; sketch_sampling.SamplingStopped once `should_stop()` says so."""
        if word not in self.classes:
            raise UnknownWord(f"the generator does not draw {word!r}; it draws: {', '.join(self.classes)}")
        xs = np.concatenate([np.asarray(s[0], np.float64) for s in strokes])
        ys = np.concatenate([np.asarray(s[1], np.float64) for s in strokes])
        extent = max(np.ptp(xs), np.ptp(ys))
        if extent == 0:
            raise ValueError("the drawing is a single point; draw a little more first")
        simplified = ink.simplify(strokes)
        prefix = ink.to_ink(simplified)
        max_len = self.max_seq_len
        if len(prefix) > max_len:
            raise ValueError(f"the drawing has {len(prefix)} points once simplified; the generator continues "
                             f"drawings of at most {max_len} (the longest it trained on)")
        max_steps = len(prefix) + max(max_len - len(prefix), int(max_len * MIN_EXTRA_SHARE))
        points = ink.stroke_points(simplified)[:, :2]
        side = max(float(np.ptp(points[:, 0])), float(np.ptp(points[:, 1]))) or 1.0  # to_ink's scale
        # ink unit u → simplified s = first point + u * side → canvas = min + s * extent / 255
        origin, to_canvas = points[0], extent / ink.SIMPLIFIED_MAX
        lower = np.array([xs.min(), ys.min()])
        with self._lock:
            sample = sketch_sampling.complete(
                self.model, self.classes.index(word), 1, temperature, prefix, seed,
                max_steps=max_steps, should_stop=should_stop,
            )[0]
        new_strokes = continuation(sample)
        return Completion(
            strokes=[
                [np.round(lower[axis] + (origin[axis] + stroke[:, axis] * side) * to_canvas, 2).tolist()
                 for axis in (0, 1)]
                for stroke in new_strokes
            ],
            tries=sample.tries,
        )


def continuation(sample: sketch_sampling.Sample) -> list[np.ndarray]:
    """The strokes of `sample` after its given prefix ([k, 2] points each, in ink units)."""
    strokes = ink.ink_strokes(sample.ink, len(sample.ink)) if len(sample.ink) else []
    # the prefix's last row ends its last stroke, so its strokes are exactly the first ones
    given = int((sample.ink[: sample.prefix_length, 2] > 0.5).sum())
    return strokes[given:] if sample.prefix_length < len(sample.ink) else []
