r"""How exactly quickdraw_tf.data.ink.simplify reproduces Google's simplified drawings, and how fast it is:

  .venv/bin/python -m benchmarks.simplify_fidelity [--data_dir=../shared/data/quickdraw] [--ablations]

Pairs every raw drawing (<data_dir>/raw/*/*.ndjson) with the simplified drawing of the same key_id
(<data_dir>/simplified/*/*.ndjson): Google's own simplification of that very drawing. Prints the pairs
found, the share simplified to exactly Google's drawing, the share with the same stroke count and the
same point count in every stroke, the mean absolute coordinate difference on those same-count pairs,
and the time per drawing.

--ablations also scores a plain per-stroke re-implementation with one detail changed at a time, to
show which details decide exact agreement. Most of them only matter through ties: raw coordinates are
integers, so a stroke side is often exactly parallel to the RDP chord, and the float rounding of
Google's arithmetic decides which of the tied points is kept.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys
import time
from collections.abc import Callable, Sequence

if __package__ in (None, ""):  # run as `python benchmarks/simplify_fidelity.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np

from quickdraw_tf.data import ink

Strokes = list[list[list[int]]]


def read_drawings(pattern: str) -> dict[str, tuple[str, list]]:
    """key_id -> (source folder, strokes) for every parseable ndjson line; the first copy of a key wins."""
    drawings: dict[str, tuple[str, list]] = {}
    for path in sorted(glob.glob(pattern)):
        source = os.path.basename(os.path.dirname(path))
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    record = json.loads(line)
                    drawings.setdefault(str(record["key_id"]), (source, record["drawing"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a blank or broken line is not a pair; formats.py owns the validation
    return drawings


def read_pairs(data_dir: str) -> list[tuple[str, str, list, Strokes]]:
    """(key_id, 'raw source -> simplified source', raw strokes, Google's simplified strokes)."""
    raw = read_drawings(os.path.join(data_dir, "raw", "*", "*.ndjson"))
    simplified = read_drawings(os.path.join(data_dir, "simplified", "*", "*.ndjson"))
    return [
        (key, f"{raw[key][0]} -> {simplified[key][0]}", raw[key][1], as_int_strokes(simplified[key][1]))
        for key in sorted(raw.keys() & simplified.keys())
    ]


def as_int_strokes(strokes: list) -> Strokes:
    return [[[int(v) for v in stroke[0]], [int(v) for v in stroke[1]]] for stroke in strokes]


def point_counts(strokes: Strokes) -> list[int]:
    return [len(stroke[0]) for stroke in strokes]


def score(outputs: Sequence[Strokes], expected: Sequence[Strokes]) -> dict[str, float]:
    """Identical share, same-count share, and the mean |coordinate difference| on the same-count pairs."""
    identical = same_counts = 0
    differences = []
    for ours, google in zip(outputs, expected, strict=True):
        identical += ours == google
        if point_counts(ours) == point_counts(google):
            same_counts += 1
            difference = ink.stroke_points(ours)[:, :2] - ink.stroke_points(google)[:, :2]
            differences.append(np.abs(difference).ravel())
    total = max(len(expected), 1)
    mean_difference = float(np.concatenate(differences).mean()) if differences else float("nan")
    return {
        "identical": identical / total,
        "same_counts": same_counts / total,
        "mean_abs_difference": mean_difference,
    }


def timed(
    simplify: Callable[[list], Strokes], drawings: Sequence[list]
) -> tuple[list[Strokes], float, float]:
    """The outputs, the CPU seconds of this process and the wall seconds. CPU time is the figure to
    read on a shared machine: other processes stretch the wall time, not the CPU time."""
    cpu, wall = time.process_time(), time.perf_counter()
    outputs = [simplify(strokes) for strokes in drawings]
    return outputs, time.process_time() - cpu, time.perf_counter() - wall


# A plain per-stroke re-implementation for the ablations. With the default options it follows Google's
# arithmetic like ink.simplify does (the report checks that both score the same); each option swaps
# one detail for a common alternative.
def reference_simplify(
    strokes: list,
    lerp: str = "a(1-t)+bt",
    segment_length: str = "sqrt",
    scale: str = "*255/extent",
    rounding: str = "half_even",
    resample: bool = True,
    ties: str = "first",
) -> Strokes:
    arrays = [np.array(stroke[:2], np.float64).T for stroke in strokes if len(stroke[0])]
    every_point = np.concatenate(arrays)
    lower = every_point.min(axis=0)
    extent = (every_point.max(axis=0) - lower).max() or 1.0
    result = []
    for points in arrays:
        if scale == "*255/extent":
            points = (points - lower) * 255 / extent
        else:
            points = (points - lower) / extent * 255
        if resample:
            points = _reference_resample(points, lerp, segment_length)
        points = points[_reference_rdp(points, ties)]
        rounded = np.round(points) if rounding == "half_even" else np.floor(points + 0.5)
        result.append([rounded[:, 0].astype(int).tolist(), rounded[:, 1].astype(int).tolist()])
    return result


def _reference_resample(points: np.ndarray, lerp: str, segment_length: str) -> np.ndarray:
    delta = np.diff(points, axis=0)
    if segment_length == "sqrt":
        lengths = np.sqrt(delta[:, 0] ** 2 + delta[:, 1] ** 2)
    else:
        lengths = np.hypot(delta[:, 0], delta[:, 1])
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    arc = np.arange(1.0, cumulative[-1])
    segment = np.searchsorted(cumulative, arc, side="right") - 1
    t = ((arc - cumulative[segment]) / lengths[segment])[:, None]
    a, b = points[segment], points[segment + 1]
    between = a * (1 - t) + b * t if lerp == "a(1-t)+bt" else a + (b - a) * t
    return np.concatenate([points[:1], between, points[-1:]])


def _reference_rdp(points: np.ndarray, ties: str) -> np.ndarray:
    keep = np.zeros(len(points), bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:
            continue
        inner, (sx, sy), (ex, ey) = points[start + 1 : end], points[start], points[end]
        length = np.hypot(ex - sx, ey - sy)
        if length == 0:
            distance = np.hypot(inner[:, 0] - sx, inner[:, 1] - sy)
        else:
            distance = np.abs((ex - sx) * (inner[:, 1] - sy) - (ey - sy) * (inner[:, 0] - sx)) / length
        if ties == "first":
            i = int(np.argmax(distance))
        else:
            i = len(distance) - 1 - int(np.argmax(distance[::-1]))
        if distance[i] > ink.RDP_EPSILON:
            keep[start + 1 + i] = True
            stack += [(start, start + 1 + i), (start + 1 + i, end)]
    return keep


ABLATIONS: dict[str, dict] = {
    "reference, Google's arithmetic (= ink.simplify)": {},
    "interpolate a + (b - a) * t": {"lerp": "a+(b-a)t"},
    "segment length np.hypot": {"segment_length": "hypot"},
    "scale (x - min) / extent * 255": {"scale": "/extent*255"},
    "all three textbook choices above": {
        "lerp": "a+(b-a)t",
        "segment_length": "hypot",
        "scale": "/extent*255",
    },
    "round floor(x + 0.5)": {"rounding": "floor+0.5"},
    "RDP keeps the last of tied points": {"ties": "last"},
    "no 1 px resampling (RDP on raw vertices)": {"resample": False},
}


def report(data_dir: str, ablations: bool) -> None:
    pairs = read_pairs(data_dir)
    print(f"data: {data_dir}")
    print(f"pairs found (same key_id in raw/ and simplified/): {len(pairs)}")
    for sources, count in collections.Counter(pair[1] for pair in pairs).most_common():
        print(f"  {count:6d}  {sources}")
    if not pairs:
        return
    raw, google = [pair[2] for pair in pairs], [pair[3] for pair in pairs]
    outputs, cpu_seconds, wall_seconds = timed(ink.simplify, raw)
    scores = score(outputs, google)
    print("ink.simplify vs Google's simplified drawing:")
    print(f"  identical drawings:               {scores['identical']:.2%}")
    print(f"  same stroke and point counts:     {scores['same_counts']:.2%}")
    print(f"  mean |coordinate diff|, same-count: {scores['mean_abs_difference']:.6f}")
    cpu_ms = 1e3 * cpu_seconds / len(raw)
    print(f"  CPU time: {cpu_ms:.3f} ms per drawing, {len(raw) / cpu_seconds:.0f} drawings/s on one core")
    print(f"  wall time: {1e3 * wall_seconds / len(raw):.3f} ms per drawing")
    mismatches = [pair[0] for pair, ours in zip(pairs, outputs, strict=True) if ours != pair[3]]
    more = " ..." if len(mismatches) > 10 else ""
    print(f"  mismatched key_ids ({len(mismatches)}): {' '.join(mismatches[:10])}{more}")
    if ablations:
        print("ablations (identical / same counts):")
        for name, options in ABLATIONS.items():
            variant = score([reference_simplify(strokes, **options) for strokes in raw], google)
            print(f"  {variant['identical']:7.2%}  {variant['same_counts']:7.2%}  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default="data/sample", help="folder with raw/ and simplified/ ndjson")
    parser.add_argument("--ablations", action="store_true", help="also score one-detail-changed variants")
    args = parser.parse_args()
    report(args.data_dir, args.ablations)
