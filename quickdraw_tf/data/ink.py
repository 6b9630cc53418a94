"""Drawing geometry: Google's simplification, the normalized delta ink, stroke-3 and stroke-5."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quickdraw_tf.data import limits
from quickdraw_tf.data.drawing import InvalidRecord, Stroke

NORMALIZATIONS = ("uniform", "per_axis")


def stroke_points(strokes: Sequence[Stroke]) -> np.ndarray:
    """All points of all strokes as float32 [n, 3] rows of (x, y, end_of_stroke)."""
    lengths = [len(stroke[0]) for stroke in strokes]
    points = np.zeros((sum(lengths), 3), np.float32)
    start = 0
    for stroke, length in zip(strokes, lengths, strict=True):
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


def ink_strokes(ink: np.ndarray, length: int) -> list[np.ndarray]:
    """Delta ink [T, 3] → absolute [k, 2] point arrays, one per stroke, starting at the origin."""
    ink = np.asarray(ink, np.float32)[: max(int(length), 1)]
    points = np.concatenate([np.zeros((1, 2), np.float32), np.cumsum(ink[:, :2], axis=0)])
    ends = np.flatnonzero(ink[:, 2] > 0.5) + 2  # row i moves to point i + 1, which ends a stroke
    strokes, start = [], 0
    for end in [*ends, len(points)]:
        if end > start:
            strokes.append(points[start:end])
        start = end
    return strokes


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


def to_stroke5(stroke3: np.ndarray, max_len: int) -> np.ndarray:
    """sketch-rnn's stroke-5, as its utils.to_big_strokes: float32 [max_len, 5] of (dx, dy, p1, p2, p3).

    Row i < len(stroke3) holds stroke3[i]'s offsets with p2 = its pen-lifted flag and p1 = 1 - p2;
    every row after the drawing is (0, 0, 0, 0, 1), the end-of-sketch padding. Note that, as in
    sketch-rnn, no row of a drawing of exactly max_len points carries p3.
    """
    stroke3 = np.asarray(stroke3)
    length = len(stroke3)
    if length > max_len:
        raise ValueError(f"drawing has {length} stroke-3 rows, more than max_len={max_len}")
    stroke5 = np.zeros((max_len, 5), np.float32)
    stroke5[:length, 0:2] = stroke3[:, 0:2]
    stroke5[:length, 3] = stroke3[:, 2]
    stroke5[:length, 2] = 1 - stroke5[:length, 3]
    stroke5[length:, 4] = 1
    return stroke5


def from_stroke5(stroke5: np.ndarray) -> np.ndarray:
    """Inverse of to_stroke5, as sketch-rnn's utils.to_normal_strokes: float32 stroke-3 [n, 3].

    n is the first row with p3 set. As in sketch-rnn, when that is row 0 or there is none, every row
    is kept (so an all-padding stroke-5 does not come back empty).
    """
    stroke5 = np.asarray(stroke5)
    ends = np.flatnonzero(stroke5[:, 4] > 0)
    length = int(ends[0]) if len(ends) and ends[0] > 0 else len(stroke5)
    stroke3 = np.zeros((length, 3), np.float32)
    stroke3[:, 0:2] = stroke5[:length, 0:2]
    stroke3[:, 2] = stroke5[:length, 3]
    return stroke3


# Google's simplification (quickdraw-dataset README): align to the top-left, scale uniformly to 0..255,
# resample every 1 px, Ramer-Douglas-Peucker with epsilon 2, round. Checked against Google's own output
# on real raw/simplified twins: 7992 of 7995 identical (benchmarks/simplify_fidelity.py, --ablations).
# Which point RDP keeps often hangs on an exact tie (raw coordinates are integers, so a stroke side is
# often parallel to the chord), and the float rounding of Google's arithmetic breaks those ties; so the
# code below repeats that arithmetic operation for operation:
#   scale     (x - min) * 255 / max(width, height), multiply first;
#   resample  per stroke, arc lengths summed left to right, segment length sqrt(dx**2 + dy**2), a new
#             point at every whole arc length 1, 2, ... before the end, as a * (1 - t) + b * t; the
#             first and last points are kept, the other original vertices are not;
#   RDP       distance |cross| / hypot to the infinite line, split at the first maximum, if > 2;
#   round     np.round (half to even), once, at the very end.
# Written the textbook way (a + (b - a) * t, np.hypot lengths, / extent * 255) only ~94% come out
# identical; floor(x + 0.5) rounding gives ~96%, and RDP without the resampling under 1%.
SIMPLIFIED_MAX = 255
RDP_EPSILON = 2.0
_BATCH_POINTS = 1 << 16  # resampled points handled at once (a longer stroke is handled alone)


def simplify(
    strokes: Sequence[Stroke], epsilon: float = RDP_EPSILON, max_resampled: int = limits.MAX_RESAMPLED_POINTS
) -> list[list[list[int]]]:
    """Google's simplification of a raw drawing: strokes of [xs, ys] integers in 0..255, time dropped.

    Strokes may be [xs, ys, ts] or [xs, ys]; empty strokes are dropped. A stroke of one point (or of
    one repeated point) becomes two equal points, as in Google's files. Meant for raw drawings only:
    it is not idempotent. Run again on a simplified drawing it rescales it (RDP and the resampling
    cut the extreme points, so a simplified drawing rarely spans 0..255 exactly) and resamples the
    rounded points, which moves or drops a few of them: only ~3% of Google's simplified drawings
    come back unchanged, with ~4% fewer points.

    Resampling makes one point per pixel of ink, so a zig-zag can grow many times its raw size: a
    drawing of more than `max_resampled` px of ink (in the 0..255 box) raises InvalidRecord too_large,
    and strokes are resampled a batch of about _BATCH_POINTS points at a time (strokes are
    independent, so the result is the same), which bounds the memory one drawing takes.
    """
    strokes = [stroke for stroke in strokes if len(stroke[0])]
    if not strokes:
        return []
    sizes = np.array([len(stroke[0]) for stroke in strokes])
    xs = np.array([x for stroke in strokes for x in stroke[0]], np.float64)
    ys = np.array([y for stroke in strokes for y in stroke[1]], np.float64)
    xs, ys = _scale_to_top_left_box(xs, ys)
    estimate = _ink_lengths(xs, ys, sizes) + 2  # points each stroke resamples to, at most
    if estimate.sum() > max_resampled:
        raise InvalidRecord(
            "too_large", f"{estimate.sum():,.0f} px of ink to resample, more than {max_resampled:,}"
        )
    simplified, offsets = [], np.concatenate([[0], np.cumsum(sizes)]).tolist()
    for first, last in _batches(estimate):
        begin, end = offsets[first], offsets[last]
        simplified += _simplify_batch(xs[begin:end], ys[begin:end], sizes[first:last], epsilon)
    return simplified


def _ink_lengths(xs: np.ndarray, ys: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The length of each stroke's polyline."""
    segment = np.hypot(np.diff(xs), np.diff(ys))
    segment[_starts(sizes)[1:] - 1] = 0  # pairs that straddle two strokes
    return np.add.reduceat(np.concatenate([segment, [0.0]]), _starts(sizes))


def _batches(estimate: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive strokes [first, last) of about _BATCH_POINTS resampled points (at least one)."""
    batches, first, total = [], 0, 0.0
    for index, points in enumerate(estimate.tolist()):
        if index > first and total + points > _BATCH_POINTS:
            batches.append((first, index))
            first, total = index, 0.0
        total += points
    return batches + [(first, len(estimate))]


def _simplify_batch(xs: np.ndarray, ys: np.ndarray, sizes: np.ndarray, epsilon: float) -> list:
    xs, ys, sizes = _resample_every_pixel(xs, ys, sizes)
    keep = _rdp_keep_mask(xs, ys, sizes, epsilon)
    kept_x = np.round(xs[keep]).astype(np.int64).tolist()
    kept_y = np.round(ys[keep]).astype(np.int64).tolist()
    bounds = np.concatenate([[0], np.cumsum(np.add.reduceat(keep, _starts(sizes)))]).tolist()
    return [[kept_x[a:b], kept_y[a:b]] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def is_simplified(strokes: Sequence[Stroke]) -> bool:
    """Whether a drawing is in the simplified layout: [xs, ys] strokes (no times) of integers in 0..255.

    A layout check only: the bounding box is not required to span 0..255, since Google's own
    simplified drawings often do not (RDP drops extreme points). A raw drawing stored without its
    times and already inside 0..255 would pass too.
    """
    if not strokes or any(len(stroke) != 2 or len(stroke[0]) != len(stroke[1]) for stroke in strokes):
        return False
    values = np.array([v for stroke in strokes for axis in stroke for v in axis], np.float64)
    return bool(
        len(values)
        and np.all(values == np.round(values))
        and values.min() >= 0
        and values.max() <= SIMPLIFIED_MAX
    )


def _starts(sizes: np.ndarray) -> np.ndarray:
    return np.cumsum(sizes) - sizes


def _scale_to_top_left_box(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2: subtract each axis' minimum, then scale both by 255 / the larger extent."""
    xs, ys = xs - xs.min(), ys - ys.min()
    extent = max(xs.max(), ys.max())
    if extent == 0:  # every point equal: all land on (0, 0)
        return xs, ys
    # Multiply, then divide: this order (not / extent * 255) is Google's, see the note above.
    return xs * SIMPLIFIED_MAX / extent, ys * SIMPLIFIED_MAX / extent


def _resample_every_pixel(xs: np.ndarray, ys: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, ...]:
    """Step 3, all strokes at once: each stroke's first point, a point at every whole arc length
    1, 2, ... strictly before its end, then its last point. Original vertices are not kept (corners
    get cut). Returns the new xs, ys and points per stroke."""
    starts = _starts(sizes)
    # Segments i -> i + 1 inside a stroke (pairs that straddle two strokes are left out).
    inside = np.ones(len(xs) - 1, bool)
    inside[starts[1:] - 1] = False
    segment = np.flatnonzero(inside)
    dx, dy = xs[segment + 1] - xs[segment], ys[segment + 1] - ys[segment]
    lengths = np.sqrt(dx**2 + dy**2)
    # Arc length at each segment's start and end, summed left to right within each stroke as Google
    # does: one running sum over all strokes, or end - length, would round differently.
    bounds = np.cumsum(np.concatenate([[0], sizes - 1])).tolist()
    running = [np.cumsum(lengths[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    at_end = np.concatenate(running)
    at_start = np.concatenate([np.concatenate([[0.0], run])[:-1] for run in running])
    # Whole arc lengths k with at_start <= k < at_end fall in the segment (k = 0 is the first point;
    # k = total would be the last). Zero-length segments (repeated points) get none.
    first_k = np.maximum(np.ceil(at_start), 1.0)
    per_segment = np.maximum(np.ceil(at_end) - first_k, 0).astype(np.int64)
    owner = np.repeat(np.arange(len(segment)), per_segment)
    rank_in_segment = np.arange(len(owner)) - np.repeat(np.cumsum(per_segment) - per_segment, per_segment)
    arc = first_k[owner] + rank_in_segment
    t = (arc - at_start[owner]) / lengths[owner]
    start = segment[owner]
    between_x = xs[start] * (1 - t) + xs[start + 1] * t
    between_y = ys[start] * (1 - t) + ys[start + 1] * t
    # Lay out each stroke as [first point, its in-between points, last point].
    stroke_of_segment = np.repeat(np.arange(len(sizes)), sizes - 1)
    between_per_stroke = np.bincount(stroke_of_segment, per_segment, len(sizes)).astype(np.int64)
    new_sizes = between_per_stroke + 2
    new_starts = _starts(new_sizes)
    out_x, out_y = np.empty(new_sizes.sum()), np.empty(new_sizes.sum())
    out_x[new_starts], out_y[new_starts] = xs[starts], ys[starts]
    last = starts + sizes - 1
    out_x[new_starts + new_sizes - 1], out_y[new_starts + new_sizes - 1] = xs[last], ys[last]
    middle = np.ones(len(out_x), bool)
    middle[new_starts] = middle[new_starts + new_sizes - 1] = False
    out_x[middle], out_y[middle] = between_x, between_y
    return out_x, out_y, new_sizes


def _rdp_keep_mask(xs: np.ndarray, ys: np.ndarray, sizes: np.ndarray, epsilon: float) -> np.ndarray:
    """Step 4, Ramer-Douglas-Peucker on all strokes at once: the mask of the points kept.

    Level by level, every open interval (start, end) of every stroke is split at its first point of
    maximal distance to the infinite line through its ends, while that distance exceeds epsilon.
    Intervals are independent, so handling a whole level in one vectorized pass gives the result of
    the usual recursion for a few numpy calls per level instead of per split.
    """
    keep = np.zeros(len(xs), bool)
    starts = _starts(sizes)
    ends = starts + sizes - 1
    keep[starts] = keep[ends] = True
    while True:
        has_interior = ends - starts >= 2
        starts, ends = starts[has_interior], ends[has_interior]
        if not len(starts):
            return keep
        split, farthest = _farthest_points(xs, ys, starts, ends)
        cut = farthest > epsilon
        keep[split[cut]] = True
        starts = np.concatenate([starts[cut], split[cut]])
        ends = np.concatenate([split[cut], ends[cut]])


def _farthest_points(
    xs: np.ndarray, ys: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each interval (disjoint, each with an interior point): the index of its first interior
    point farthest from the line through its ends, and that distance."""
    counts = ends - starts - 1
    offsets = np.cumsum(counts) - counts
    interval = np.repeat(np.arange(len(starts)), counts)  # the interval of each interior point
    index = np.arange(len(interval)) + (starts + 1 - offsets)[interval]
    start_x, start_y = xs[starts], ys[starts]
    dx, dy = xs[ends] - start_x, ys[ends] - start_y
    length = np.hypot(dx, dy)
    px, py = xs[index] - start_x[interval], ys[index] - start_y[interval]
    cross = np.abs(dx[interval] * py - dy[interval] * px)
    if length.all():
        distance = cross / length[interval]
    else:  # a loop back to its start has no line: measure the distance to that point instead
        distance = np.hypot(px, py)
        line = length[interval] != 0
        distance[line] = cross[line] / length[interval][line]
    farthest = np.maximum.reduceat(distance, offsets)
    # First maximum on ties: the smallest index whose distance equals its interval's maximum.
    candidate = np.where(distance == farthest[interval], index, len(xs))
    return np.minimum.reduceat(candidate, offsets), farthest
