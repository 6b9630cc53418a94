"""ONE way from a drawing to the model input a run was trained on, for the Beam job and for prediction.

How the inks were made is recorded with the data (stats.json "preprocessing", written by
beam_jobs.make_tfrecords) and copied into model_dir/preprocessing.json by training
(quickdraw_tf/training/run_dir.py), so a Predictor prepares new drawings exactly as the training data
was prepared:

  strokes  raw drawings (with times, or with coordinates that are not integers in 0..255: a canvas
           in any size and origin) get Google's simplification when `simplify` is on; then to_ink
           with the recorded `normalize`; then the run's own truncation (`max_points`).
  images   a 28x28 image is taken as it is; strokes are rendered the way Google made numpy_bitmap
           (quickdraw_tf.data.bitmap).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from quickdraw_tf.data import bitmap, checked_json, ink, limits
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.data.layout import KINDS


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How a run's inputs were made. max_points: the run's truncation of inks (0: none)."""

    kind: str = "strokes"
    normalize: str = "uniform"
    simplify: bool = True
    max_points: int = 0

    def __post_init__(self):
        if not isinstance(self.simplify, bool):
            raise ValueError(f"preprocessing simplify must be true or false, got {self.simplify!r}")
        if type(self.max_points) is not int or self.max_points < 0:
            raise ValueError(f"preprocessing max_points must be an integer >= 0 (0: all), got {self.max_points!r}")
        if self.kind not in KINDS:
            raise ValueError(f"preprocessing kind must be one of {KINDS}, got {self.kind!r}")
        if self.normalize not in ink.NORMALIZATIONS:
            raise ValueError(
                f"preprocessing normalize must be one of {ink.NORMALIZATIONS}, got {self.normalize!r}"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: object, where: str = "preprocessing") -> Preprocessing:
        """The record as written by to_dict, every field's type and range checked (checked_json):
        checked_json.JsonFieldError (a ValueError, one line naming `where` and the field) otherwise.
        Fields this version does not know are left out (a newer record still reads)."""
        return checked_json.build(cls, values, where, ignore_unknown=True)


def job_record(kind: str, normalize: str, simplify: bool) -> dict:
    """The "preprocessing" object of stats.json. The job never truncates (max_points 0): a run's
    truncation is in its config, and run_dir adds it to the run's copy."""
    return Preprocessing(kind, normalize, simplify, 0).to_dict()


# ---------------------------------------------------------------------------------------------------
# Drawing -> model input


def is_raw(strokes: Sequence) -> bool:
    """Raw unless in Google's simplified layout: times, or coordinates that are not integers in 0..255."""
    return any(len(stroke) >= 3 for stroke in strokes) or not ink.is_simplified(strokes)


def checked_strokes(strokes: object) -> list[list[list[float]]]:
    """[[xs, ys(, ts)], ...] of finite numbers, equal lengths, >= 2 points in all, within the readers'
    bounds (quickdraw_tf.data.limits: points per stroke and drawing, |x|, |y|); InvalidRecord if not.

    Accepts what a canvas sends (floats, any origin) as well as what the readers yield."""
    if not isinstance(strokes, (list, tuple)) or not strokes:
        raise InvalidRecord("empty_drawing", "the drawing has no strokes")
    out, total = [], 0
    for index, stroke in enumerate(strokes):
        if not isinstance(stroke, (list, tuple)) or len(stroke) not in (2, 3):
            raise InvalidRecord("mismatched_lengths", f"stroke {index} is not [xs, ys] or [xs, ys, ts]")
        try:
            arrays = [np.asarray(values, np.float64) for values in stroke]
        except (TypeError, ValueError):
            raise InvalidRecord(
                "bad_coordinate", f"stroke {index} holds something that is not a number"
            ) from None
        if any(array.ndim != 1 or len(array) != len(arrays[0]) for array in arrays):
            raise InvalidRecord("mismatched_lengths", f"stroke {index}: x, y (and t) differ in length")
        if not len(arrays[0]):
            continue  # an empty stroke (a canvas click without a move) carries nothing
        if not all(np.isfinite(array).all() for array in arrays):
            raise InvalidRecord("bad_coordinate", f"stroke {index} has a value that is not finite")
        total += len(arrays[0])
        out.append([list(stroke[0]), list(stroke[1])] + ([list(stroke[2])] if len(stroke) == 3 else []))
    limits.check_drawing(out)
    if total < 2:
        raise InvalidRecord(
            "too_short" if total else "empty_drawing", f"{total} point(s) in all, at least 2 needed"
        )
    return out


def simplified_strokes(strokes: Sequence, simplify: bool = True) -> Sequence:
    """Google's simplification for raw strokes (when `simplify`), simplified strokes unchanged."""
    return ink.simplify(strokes) if simplify and is_raw(strokes) else strokes


def stroke_ink(strokes: Sequence, normalize: str = "uniform", simplify: bool = True) -> np.ndarray:
    """float32 [n, 3] delta ink, exactly as the job stores it. Google's simplification never leaves
    fewer than 2 points (a 1-point stroke becomes 2 equal points), so to_ink cannot fail on it."""
    return ink.to_ink(simplified_strokes(strokes, simplify), normalize)


def drawing_data(drawing: Drawing, normalize: str, simplify: bool) -> bytes:
    """What the job's example stores: float32 delta ink bytes, or the 28x28 pixels."""
    if drawing.image is not None:
        return np.ascontiguousarray(drawing.image, np.uint8).tobytes()
    return stroke_ink(drawing.strokes, normalize, simplify).tobytes()


def model_input(drawing: Drawing, prep: Preprocessing) -> dict[str, np.ndarray]:
    """The model input of one drawing: {"ink": float32 [n, 3]} or {"image": uint8 [28, 28]}.

    Raises InvalidRecord (a ValueError) with a one-line reason when the drawing is unusable."""
    if prep.kind == "images":
        if drawing.image is not None:
            return {"image": checked_image(drawing.image)}
        strokes = simplified_strokes(checked_strokes(drawing.strokes), True)
        return {"image": bitmap.google_bitmap(strokes)}
    if drawing.image is not None and not drawing.strokes:
        raise InvalidRecord("bad_image", "a stroke model needs strokes, not an image")
    ink_rows = stroke_ink(checked_strokes(drawing.strokes), prep.normalize, prep.simplify)
    if prep.max_points:
        ink_rows = ink_rows[: prep.max_points]
    return {"ink": ink_rows}


def checked_image(image: object) -> np.ndarray:
    array = np.asarray(image)
    if array.size != bitmap.SIDE * bitmap.SIDE or array.dtype != np.uint8:
        raise InvalidRecord("bad_image", f"image is {array.dtype} {array.shape}, not uint8 28x28")
    return array.reshape(bitmap.SIDE, bitmap.SIDE)
