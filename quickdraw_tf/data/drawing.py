"""The one drawing record every reader yields, and the error every bad record raises."""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence

import numpy as np

# A stroke in Quick, Draw!'s own JSON layout: [xs, ys] (simplified) or [xs, ys, ts] (raw).
Stroke = Sequence[Sequence[float]]

# Why a record can be rejected. The Beam job counts and stores rejections under these names.
REJECTION_REASONS = (
    "invalid_json",
    "invalid_csv",
    "not_an_object",
    "missing_field",
    "bad_field",
    "empty_drawing",
    "too_short",
    "mismatched_lengths",
    "bad_coordinate",
    "truncated_record",
    "bad_image",
    "too_large",
    "unreadable_tail",
    "duplicate_key",
    "unknown_class",
)


class InvalidRecord(ValueError):
    """A record that cannot become a drawing; `reason` is one of REJECTION_REASONS."""

    def __init__(self, reason: str, message: str):
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def word_problem(word: str) -> str | None:
    """Why `word` cannot name a class, or None. "" is allowed: a drawing with no word (Kaggle's test CSV).

    A word must be non-empty after stripping, have no leading or trailing whitespace and no control or
    line-separator character (newline, tab, NUL, U+2028, ...): classes.txt holds one word a line.
    """
    if word == "":
        return None
    if not word.strip():
        return f"word {word!r} is blank"
    if word != word.strip():
        return f"word {word!r} has leading or trailing whitespace"
    bad = next((char for char in word if unicodedata.category(char) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        return f"word {word!r} holds the control character {bad!r}"
    return None


@dataclasses.dataclass(frozen=True)
class Drawing:
    """One Quick, Draw! drawing, whatever file format it came from.

    `strokes` keeps the dataset's JSON layout (one [xs, ys] or [xs, ys, ts] list per stroke) so that
    nothing is lost between formats. `timestamp` is whole seconds since the Unix epoch (UTC), the
    resolution of the binary format. Bitmap records have no strokes; they carry `image` instead.
    """

    key_id: int
    word: str
    countrycode: str = ""
    recognized: bool = True
    timestamp: int = 0
    strokes: tuple = ()
    image: np.ndarray | None = dataclasses.field(default=None, compare=False)

    @property
    def is_raw(self) -> bool:
        """Raw drawings carry a third per-stroke array: the time of each point."""
        return any(len(stroke) >= 3 for stroke in self.strokes)
