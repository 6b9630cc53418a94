"""The one structural check of a drawing, whatever format it came from (parse_record calls it, and so
can any code that builds a Drawing)."""

from __future__ import annotations

import itertools
import math

import numpy as np

from quickdraw_tf.data import limits
from quickdraw_tf.data.drawing import Drawing, InvalidRecord, word_problem
from quickdraw_tf.data.formats.records import BITMAP_SHAPE, MAX_KEY_ID, json_type, short

SIMPLIFIED_RANGE = (0, 255)
_INT, _INT_OR_FLOAT = {int}, {int, float}


def validate(drawing: Drawing, *, simplified_range: bool = True) -> Drawing:
    """Raises InvalidRecord if the drawing is structurally wrong; returns it unchanged otherwise.

    Strokes must all be [xs, ys] (simplified: integers, 0..255 unless simplified_range=False) or all
    [xs, ys, ts] (raw: finite numbers), with equal lengths, no empty stroke and at least 2 points in all.
    A bitmap drawing (image set) must hold a 28x28 uint8 image. parse_record already calls this.
    """
    _check_metadata(drawing)
    if drawing.image is not None:
        _check_image(drawing.image)
    if drawing.image is None or drawing.strokes:
        _check_strokes(drawing.strokes, simplified_range)
        limits.check_drawing(drawing.strokes)
    return drawing


def _check_metadata(drawing: Drawing) -> None:
    checks = (
        ("key_id", type(drawing.key_id) is int and 0 <= drawing.key_id <= MAX_KEY_ID, "in 0..2**63-1"),
        ("word", isinstance(drawing.word, str), "a string"),
        ("countrycode", isinstance(drawing.countrycode, str), "a string"),
        ("recognized", isinstance(drawing.recognized, bool), "a bool"),
        ("timestamp", type(drawing.timestamp) is int and drawing.timestamp >= 0, "a non-negative integer"),
    )
    for name, fine, expected in checks:
        if not fine:
            raise InvalidRecord(
                "bad_field", f"{name} {short.repr(getattr(drawing, name))} is not {expected}"
            )
    problem = word_problem(drawing.word)
    if problem:
        raise InvalidRecord("bad_field", problem)


def _check_image(image: object) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != BITMAP_SHAPE:
        found = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidRecord("bad_image", f"image is {found}, not uint8 (28, 28)")


def _check_strokes(strokes: object, simplified_range: bool) -> None:
    if _strokes_look_valid(strokes, simplified_range):
        return
    _check_strokes_one_by_one(strokes, simplified_range)


def _strokes_look_valid(strokes: object, simplified_range: bool) -> bool:
    """True only for drawings _check_strokes_one_by_one accepts: the common case, checked in a few passes
    over all values at once. False means "not sure": the one-by-one checks then find the problem."""
    if type(strokes) not in (list, tuple) or not strokes:
        return False
    first = strokes[0]
    if type(first) not in (list, tuple):
        return False
    arity = len(first)
    if arity not in (2, 3):
        return False
    total = 0
    for stroke in strokes:
        if type(stroke) not in (list, tuple) or len(stroke) != arity:
            return False
        n = len(stroke[0])
        if not n:
            return False
        for values in stroke:
            if type(values) not in (list, tuple) or len(values) != n:
                return False
        total += n
    if total < 2:
        return False
    values = list(itertools.chain.from_iterable(itertools.chain.from_iterable(strokes)))
    types = set(map(type, values))
    if arity == 2:  # simplified: integers, in 0..255 unless simplified_range is off
        low, high = SIMPLIFIED_RANGE
        return types <= _INT and (not simplified_range or low <= min(values) and max(values) <= high)
    if not types <= _INT_OR_FLOAT:
        return False
    try:
        return bool(np.isfinite(np.array(values, np.float64)).all())
    except OverflowError:  # an integer too large for a float
        return False


def _check_strokes_one_by_one(strokes: object, simplified_range: bool) -> None:
    if not isinstance(strokes, (list, tuple)):
        raise InvalidRecord("bad_field", f"strokes are a {type(strokes).__name__}, not a list")
    if not strokes:
        raise InvalidRecord("empty_drawing", "the drawing has no strokes")
    for index, stroke in enumerate(strokes):
        _check_stroke(index, stroke)
        if len(stroke) != len(strokes[0]):  # raw and simplified strokes in one drawing
            raise InvalidRecord(
                "mismatched_lengths",
                f"stroke {index} has {len(stroke)} arrays but stroke 0 has {len(strokes[0])}",
            )
        simplified = len(stroke) == 2
        for axis, values in zip("xyt", stroke, strict=False):
            _check_values(values, f"stroke {index}: {axis}", simplified, simplified and simplified_range)
    total = sum(len(stroke[0]) for stroke in strokes)
    if total < 2:
        raise InvalidRecord("too_short", f"{total} point in all, at least 2 needed")


def _check_stroke(index: int, stroke: object) -> None:
    shaped = isinstance(stroke, (list, tuple)) and len(stroke) in (2, 3)
    if not (shaped and all(isinstance(values, (list, tuple)) for values in stroke)):
        raise InvalidRecord("mismatched_lengths", f"stroke {index} is not a list of 2 or 3 arrays")
    if len({len(values) for values in stroke}) > 1:
        counts = [f"{len(values)} {axis} values" for axis, values in zip("xyt", stroke, strict=False)]
        raise InvalidRecord(
            "mismatched_lengths", f"stroke {index}: {', '.join(counts[:-1])} but {counts[-1]}"
        )
    if not stroke[0]:
        raise InvalidRecord("empty_drawing", f"stroke {index} has no points")


def _check_values(values: list, where: str, integers: bool, in_range: bool) -> None:
    # Fast paths for the common, valid case (set(map(type, ...)) runs in C; bool is not int here);
    # the loop below only runs to name a bad value.
    low, high = SIMPLIFIED_RANGE
    types = set(map(type, values))
    if integers:
        if types <= _INT and (not in_range or low <= min(values) and max(values) <= high):
            return
    elif types <= _INT_OR_FLOAT and _sum_is_finite(values):
        return
    for position, value in enumerate(values):
        problem = _value_problem(value, integers, in_range)
        if problem:
            raise InvalidRecord("bad_coordinate", f"{where}[{position}] = {short.repr(value)} {problem}")


def _sum_is_finite(values: list) -> bool:
    try:
        return math.isfinite(sum(values))
    except OverflowError:  # an integer too large for a float
        return False


def _value_problem(value: object, integers: bool, in_range: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return f"is a {json_type(value)}, not a number"
    if integers:
        if not isinstance(value, (int, np.integer)):
            return "is not an integer (simplified strokes hold integers)"
        low, high = SIMPLIFIED_RANGE
        return f"is outside {low}..{high}" if in_range and not low <= value <= high else None
    try:
        return None if math.isfinite(value) else "is not finite"
    except OverflowError:
        return "is too large"
