"""quickdraw_tf.data.ink on hand-computed examples and on the real drawings of data/sample."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from quickdraw_tf.data import ink
from tests.tutorial_reference import tutorial_parse_line
from tests.sample import SAMPLE


# Two strokes: (0, 0) -> (20, 5), then (20, 10) -> (10, 10). x spans 0..20, y spans 0..10.
TWO_STROKES = [[[0, 20], [0, 5]], [[20, 10], [10, 10]]]


def read_sample(kind: str) -> dict[str, list]:
    """key_id -> strokes for every drawing of data/sample/<kind>/*/*.ndjson (first copy wins)."""
    drawings: dict[str, list] = {}
    for path in sorted(glob.glob(os.path.join(SAMPLE, kind, "*", "*.ndjson"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                drawings.setdefault(str(record["key_id"]), record["drawing"])
    return drawings


@pytest.fixture(scope="module")
def raw() -> dict[str, list]:
    return read_sample("raw")


@pytest.fixture(scope="module")
def simplified() -> dict[str, list]:
    return read_sample("simplified")


@pytest.fixture(scope="module")
def pairs(raw, simplified) -> list[tuple[list, list]]:
    """(raw strokes, Google's simplified strokes) of the same key_id: borismus raw vs lamnguyen etc."""
    return [(raw[key], simplified[key]) for key in sorted(raw.keys() & simplified.keys())]


@pytest.fixture(scope="module")
def simplified_by_us(pairs) -> list[list]:
    return [ink.simplify(raw_strokes) for raw_strokes, _ in pairs]


def sketch_rnn_to_big_strokes(stroke, max_len=250):
    """magenta/sketch_rnn utils.to_big_strokes, line for line."""
    result = np.zeros((max_len, 5), dtype=float)
    l = len(stroke)  # noqa: E741 (sketch-rnn's name)
    assert l <= max_len
    result[0:l, 0:2] = stroke[:, 0:2]
    result[0:l, 3] = stroke[:, 2]
    result[0:l, 2] = 1 - result[0:l, 3]
    result[l:, 4] = 1
    return result


def sketch_rnn_to_normal_strokes(big_stroke):
    """magenta/sketch_rnn utils.to_normal_strokes, line for line."""
    l = 0  # noqa: E741
    for i in range(len(big_stroke)):
        if big_stroke[i, 4] > 0:
            l = i  # noqa: E741
            break
    if l == 0:
        l = len(big_stroke)  # noqa: E741
    result = np.zeros((l, 3))
    result[:, 0:2] = big_stroke[0:l, 0:2]
    result[:, 2] = big_stroke[0:l, 3]
    return result


# ---- to_ink -------------------------------------------------------------------------------------


def test_to_ink_uniform_hand_computed():
    # Points (x, y, end): (0,0,0) (20,5,1) (20,10,0) (10,10,1). Ranges x 20, y 10: one scale, 20.
    # Normalized: (0,0) (20/20, 5/20) = (1, .25) (1, 10/20) = (1, .5) (10/20, .5) = (.5, .5).
    # Deltas of points 1..3: (1-0, .25-0) (1-1, .5-.25) (.5-1, .5-.5), each with its own end flag.
    expected = [[1.0, 0.25, 1.0], [0.0, 0.25, 0.0], [-0.5, 0.0, 1.0]]
    np.testing.assert_array_equal(ink.to_ink(TWO_STROKES, "uniform"), np.array(expected, np.float32))


def test_to_ink_per_axis_hand_computed():
    # Same points; x / 20 and y / 10: (0,0) (1, .5) (1, 1) (.5, 1).
    # Deltas: (1, .5) (0, .5) (-.5, 0).
    expected = [[1.0, 0.5, 1.0], [0.0, 0.5, 0.0], [-0.5, 0.0, 1.0]]
    np.testing.assert_array_equal(ink.to_ink(TWO_STROKES, "per_axis"), np.array(expected, np.float32))


def test_to_ink_rejects_unknown_normalization():
    with pytest.raises(ValueError, match="normalize"):
        ink.to_ink(TWO_STROKES, "none")


def test_uniform_keeps_aspect_ratio(simplified, raw):
    for strokes in list(simplified.values())[:200] + list(raw.values())[:50]:
        points = ink.stroke_points(strokes)[:, :2].astype(np.float64)
        span = points.max(axis=0) - points.min(axis=0)
        if span.min() == 0:
            continue
        delta = ink.to_ink(strokes, "uniform").astype(np.float64)
        rebuilt = np.concatenate([[[0.0, 0.0]], np.cumsum(delta[:, :2], axis=0)])
        rebuilt_span = rebuilt.max(axis=0) - rebuilt.min(axis=0)
        assert rebuilt_span.max() == pytest.approx(1.0, abs=1e-5)
        assert rebuilt_span[0] / rebuilt_span[1] == pytest.approx(span[0] / span[1], rel=1e-4)


def test_per_axis_is_the_tutorials_parse_line(simplified, raw):
    drawings = list(simplified.values())[:300] + list(raw.values())[:100]
    for strokes in drawings:
        expected, _ = tutorial_parse_line(json.dumps({"word": "", "drawing": strokes}))
        np.testing.assert_array_equal(ink.to_ink(strokes, "per_axis"), expected)


def test_to_ink_has_one_row_per_point_but_the_first(simplified):
    for strokes in list(simplified.values())[:100]:
        total_points = sum(len(stroke[0]) for stroke in strokes)
        result = ink.to_ink(strokes)
        assert result.shape == (total_points - 1, 3) and result.dtype == np.float32
        assert result[:, 2].sum() == len(strokes)  # one end flag per stroke (the first point is no row)


@pytest.mark.parametrize("normalize", ink.NORMALIZATIONS)
def test_to_ink_zero_range_does_not_divide_by_zero(normalize):
    dot = [[[7, 7], [3, 3]]]
    np.testing.assert_array_equal(ink.to_ink(dot, normalize), [[0.0, 0.0, 1.0]])
    horizontal = [[[0, 4], [9, 9]]]  # y has no range: the tutorial divides it by 1
    np.testing.assert_array_equal(ink.to_ink(horizontal, normalize), [[1.0, 0.0, 1.0]])


# ---- simplify -----------------------------------------------------------------------------------


def test_sample_has_raw_and_simplified_twins(pairs):
    assert len(pairs) >= 200


def test_simplify_reproduces_googles_simplified_drawings(pairs, simplified_by_us):
    # Measured: 245/245 identical on data/sample, 7992/7995 (99.96%) on all of ../shared's pairs
    # (benchmarks/simplify_fidelity.py). The margin only allows for another platform's float rounding.
    identical = same_counts = 0
    for (_, google), ours in zip(pairs, simplified_by_us, strict=True):
        identical += ours == google
        same_counts += [len(s[0]) for s in ours] == [len(s[0]) for s in google]
    assert identical / len(pairs) >= 0.99
    assert same_counts / len(pairs) >= 0.99


def test_simplified_raw_drawing_has_its_twins_ink(pairs, simplified_by_us):
    equal_ink = equal_without_simplify = 0
    for (raw_strokes, google), ours in zip(pairs, simplified_by_us, strict=True):
        google_ink = ink.to_ink(google)
        equal_ink += np.array_equal(ink.to_ink(ours), google_ink)
        equal_without_simplify += np.array_equal(ink.to_ink(raw_strokes), google_ink)
    assert equal_ink / len(pairs) >= 0.99
    assert equal_without_simplify == 0  # the raw points themselves never give the twin's ink


def test_simplify_output_layout(pairs, simplified_by_us):
    for (raw_strokes, _), ours in zip(pairs, simplified_by_us, strict=True):
        assert len(ours) == len(raw_strokes)
        for xs, ys in ours:
            assert len(xs) == len(ys) >= 2
            assert all(type(v) is int and 0 <= v <= 255 for v in xs + ys)
        points = ink.stroke_points(ours)
        assert points[:, 0].min() >= 0 and points[:, :2].max() <= 255


def test_simplify_edge_cases():
    # x 10..30 and y 10..20: minus (10, 10), times 255 / 20 (the larger extent). Stroke 1:
    # (0, 0) -> (255, 127.5), a straight line, so RDP keeps only its ends; 127.5 rounds half to
    # even: 128. The one-point stroke (20, 15) -> (127.5, 63.75) -> (128, 64) becomes two equal
    # points, as in Google's files. The empty stroke is dropped.
    drawing = [[[10, 30], [10, 20], [0, 5]], [[], [], []], [[20], [15], [9]]]
    assert ink.simplify(drawing) == [[[0, 255], [0, 128]], [[128, 128], [64, 64]]]
    assert ink.simplify([[[5, 5, 5], [7, 7, 7]]]) == [[[0, 0], [0, 0]]]  # no extent: no division
    assert ink.simplify([]) == []
    # The longer side gets 0..255, the other keeps the aspect ratio: 50 x 10 -> 255 x 51.
    assert ink.simplify([[[100, 150], [40, 50]]]) == [[[0, 255], [0, 51]]]


def test_is_simplified(raw, simplified, pairs, simplified_by_us):
    assert all(ink.is_simplified(strokes) for strokes in simplified.values())
    assert not any(ink.is_simplified(strokes) for strokes in raw.values())  # they carry times
    assert all(ink.is_simplified(strokes) for strokes in simplified_by_us)
    assert not ink.is_simplified([[[0, 256], [0, 1]]]) and not ink.is_simplified([[[0.5, 1], [0, 1]]])
    assert not ink.is_simplified([])


# ---- stroke-3 and stroke-5 ----------------------------------------------------------------------


def test_stroke3_round_trip(simplified):
    for strokes in list(simplified.values())[:300]:
        stroke3 = ink.to_stroke3(strokes)
        assert stroke3[:, 2].sum() == len(strokes)
        assert ink.from_stroke3(stroke3) == [[list(s[0]), list(s[1])] for s in strokes]


def test_stroke5_is_sketch_rnns_to_big_strokes(simplified):
    for strokes in list(simplified.values())[:200]:
        stroke3 = ink.to_stroke3(strokes)
        max_len = len(stroke3) + 7
        stroke5 = ink.to_stroke5(stroke3, max_len)
        assert stroke5.shape == (max_len, 5)
        np.testing.assert_array_equal(stroke5, sketch_rnn_to_big_strokes(stroke3, max_len))
        np.testing.assert_array_equal(ink.from_stroke5(stroke5), sketch_rnn_to_normal_strokes(stroke5))
        np.testing.assert_array_equal(ink.from_stroke5(stroke5), stroke3)  # the round trip


def test_stroke5_layout_and_limits(simplified):
    stroke3 = ink.to_stroke3(next(iter(simplified.values())))
    n = len(stroke3)
    stroke5 = ink.to_stroke5(stroke3, n + 2)
    np.testing.assert_array_equal(stroke5[:n, 2] + stroke5[:n, 3], np.ones(n))  # pen down xor lifted
    np.testing.assert_array_equal(stroke5[n:], [[0, 0, 0, 0, 1]] * 2)  # end-of-sketch padding
    with pytest.raises(ValueError, match="max_len"):
        ink.to_stroke5(stroke3, n - 1)
    # Exactly max_len rows: no p3 row, so (as in sketch-rnn) every row comes back.
    np.testing.assert_array_equal(ink.from_stroke5(ink.to_stroke5(stroke3, n)), stroke3)
