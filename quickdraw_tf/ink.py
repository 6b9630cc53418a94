"""Drawing geometry: Google's simplification, the normalized delta ink, stroke-3 and stroke-5."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from quickdraw_tf.drawing import Stroke

NORMALIZATIONS = ("uniform", "per_axis")


def stroke_points(strokes: Sequence[Stroke]) -> np.ndarray:
    """All points of all strokes as float32 [n, 3] rows of (x, y, end_of_stroke)."""
    lengths = [len(stroke[0]) for stroke in strokes]
    points = np.zeros((sum(lengths), 3), np.float32)
    start = 0
    for stroke, length in zip(strokes, lengths):
        points[start : start + length, 0] = stroke[0]
        points[start : start + length, 1] = stroke[1]
        start += length
        points[start - 1, 2] = 1.0
    return points


def to_ink(strokes: Sequence[Stroke], normalize: str = "uniform") -> np.ndarray:
    """The delta ink stored in TFRecords: float32 [total_points - 1, 3] of (dx, dy, end_of_stroke).

    `uniform` divides x and y by one common scale, max(x range, y range), so the aspect ratio is
    kept; `per_axis` scales x and y separately, exactly as the TF RNN tutorial's create_dataset.py.
    """
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    points = stroke_points(strokes)
    lower = points[:, :2].min(axis=0)
    scale = points[:, :2].max(axis=0) - lower
    if normalize == "uniform":
        scale = np.full(2, scale.max(), np.float32)
    scale[scale == 0] = 1.0
    points[:, :2] = (points[:, :2] - lower) / scale
    points[1:, :2] -= points[:-1, :2].copy()
    return points[1:]


def to_stroke3(strokes: Sequence[Stroke]) -> np.ndarray:
    """sketch-rnn's stroke-3: int16 [n, 3] of (dx, dy, pen_lifted_after_this_point).

    The first row is the offset of the first point from the origin, as in sketch-rnn's data files.
    """
    points = stroke_points(strokes)
    stroke3 = np.empty_like(points)
    stroke3[0, :2] = points[0, :2]
    stroke3[1:, :2] = np.diff(points[:, :2], axis=0)
    stroke3[:, 2] = points[:, 2]
    return np.round(stroke3).astype(np.int16)


def from_stroke3(stroke3: np.ndarray) -> list[list[list[int]]]:
    """Inverse of to_stroke3: absolute integer strokes [[xs], [ys]] from stroke-3 rows."""
    stroke3 = np.asarray(stroke3)
    absolute = np.cumsum(stroke3[:, :2].astype(np.int64), axis=0)
    ends = np.flatnonzero(stroke3[:, 2]) + 1
    if len(ends) == 0 or ends[-1] != len(stroke3):
        ends = np.append(ends, len(stroke3))
    strokes, start = [], 0
    for end in ends:
        strokes.append([absolute[start:end, 0].tolist(), absolute[start:end, 1].tolist()])
        start = end
    return strokes
