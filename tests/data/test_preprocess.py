"""quickdraw_tf.data.preprocess: the one path from a drawing to a model input, shared by the Beam job and the
Predictor, and its record in stats.json (its copy in a run directory: tests/training/test_run_dir.py)."""

import glob
import json
import os

import numpy as np
import pytest

from quickdraw_tf.data import bitmap, formats, ink, preprocess
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from tests.sample import SAMPLE



def twins() -> list[tuple[Drawing, Drawing]]:
    """(raw, simplified) pairs of the sample: the same key_id in both kinds."""

    def by_key(kind):
        paths = sorted(glob.glob(os.path.join(SAMPLE, kind, "*", "*.ndjson")))
        return {d.key_id: d for path in paths for d in formats.iter_drawings(path)}

    raw, simplified = by_key("raw"), by_key("simplified")
    return [(raw[key], simplified[key]) for key in sorted(set(raw) & set(simplified))]


def test_raw_drawings_get_the_ink_of_their_simplified_twin():
    pairs = twins()
    assert len(pairs) > 100
    for raw, simplified in pairs:
        np.testing.assert_array_equal(
            preprocess.stroke_ink(raw.strokes), preprocess.stroke_ink(simplified.strokes)
        )


def test_the_job_stores_what_preprocess_makes():
    from beam_jobs import records

    raw, _ = twins()[0]
    stored = np.frombuffer(records.drawing_data(raw, "uniform", True), np.float32).reshape(-1, 3)
    np.testing.assert_array_equal(stored, preprocess.model_input(raw, preprocess.Preprocessing())["ink"])
    unsimplified = np.frombuffer(records.drawing_data(raw, "per_axis", False), np.float32)
    np.testing.assert_array_equal(unsimplified.reshape(-1, 3), ink.to_ink(raw.strokes, "per_axis"))


def test_a_canvas_at_any_scale_and_origin_gives_the_raw_drawings_ink():
    close = 0
    pairs = twins()[:60]
    for raw, _ in pairs:
        canvas = [[[x * 1.7 - 412.5 for x in s[0]], [y * 1.7 + 3.25 for y in s[1]]] for s in raw.strokes]
        a, b = preprocess.stroke_ink(canvas), preprocess.stroke_ink(raw.strokes)
        close += a.shape == b.shape and np.allclose(a, b, atol=0.01)
    # Float rounding may move a point across Google's integer grid now and then, not more.
    assert close >= 0.9 * len(pairs)


@pytest.mark.parametrize(
    "strokes, raw",
    [
        ([[[0, 255], [3, 4]]], False),  # Google's simplified layout
        ([[[0.0, 255.0], [3.0, 4.0]]], False),  # the same, as floats
        ([[[0.5, 20], [3, 4]]], True),  # a canvas: fractions
        ([[[0, 600], [3, 4]]], True),  # a canvas: beyond 255
        ([[[-3, 20], [3, 4]]], True),
        ([[[0, 20], [3, 4], [0, 16]]], True),  # times
    ],
)
def test_what_counts_as_raw(strokes, raw):
    assert preprocess.is_raw(strokes) is raw


def test_truncation_and_kinds():
    raw, _ = twins()[0]
    full = preprocess.model_input(raw, preprocess.Preprocessing())["ink"]
    cut = preprocess.model_input(raw, preprocess.Preprocessing(max_points=5))["ink"]
    np.testing.assert_array_equal(cut, full[:5])
    image = preprocess.model_input(raw, preprocess.Preprocessing(kind="images"))["image"]
    np.testing.assert_array_equal(image, bitmap.google_bitmap(ink.simplify(raw.strokes)))
    with pytest.raises(InvalidRecord, match="needs strokes"):
        preprocess.model_input(Drawing(key_id=1, word="", image=image), preprocess.Preprocessing())
    with pytest.raises(InvalidRecord, match="more than"):
        preprocess.checked_strokes([[[0.0] * 60_000, [1.0] * 60_000]] * 2)


def test_job_writes_the_record_into_stats(tmp_path):
    from beam_jobs import outputs

    record = preprocess.job_record("images", "uniform", True)
    outputs.write_stats([("read", "", 0)], ["cat"], str(tmp_path), "images", 1, record)
    with open(tmp_path / "stats.json") as f:
        assert json.load(f)["preprocessing"] == {
            "kind": "images",
            "normalize": "uniform",
            "simplify": True,
            "max_points": 0,
        }
