"""The page's own preprocessing (quickdraw_tf/serve/static/preprocess.js) inside Chromium against
quickdraw_tf/data/preprocess.py on every drawing of the embedded sample: Google's simplification gives
the same points, the delta ink the same floats, the 28x28 bitmap the same picture within the
numpy_bitmap recipe's tolerance, and a drawing that cannot be used the same reason."""

from __future__ import annotations

import numpy as np
import pytest

from quickdraw_tf.data import bitmap, limits, preprocess
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.serve.browser_model import STATIC_DIR
from tests.cairo_recipe import vector_to_raster
from tests.data.test_bitmap import MAX_MEAN_ABS_DIFFERENCE
from tests.sample import every_drawing
from tests.serve.conftest import start_static_server, stop_server

pytestmark = pytest.mark.integration  # a browser and a static file server

INK_TOLERANCE = 1e-5
CHUNK = 200  # drawings per call into the page


@pytest.fixture(scope="module")
def page(browser):
    process, url = start_static_server(str(STATIC_DIR))
    page = browser.new_page()
    page.goto(f"{url}/preprocess.js")  # any page of that origin: the module is imported into it
    page.evaluate("async () => { window.pp = await import('./preprocess.js'); }")
    yield page
    page.close()
    stop_server(process)


@pytest.fixture(scope="module")
def drawings() -> list:
    found = every_drawing()
    assert len(found) > 1500 and sum(d.is_raw for d in found) > 300
    return found


def _as_json(drawing) -> list:
    return [[[float(v) for v in axis] for axis in stroke] for stroke in drawing.strokes]


def _in_page(page, function: str, drawings: list, *extra) -> list:
    """`function`(strokes, ...extra) of preprocess.js on every drawing, in chunks; typed arrays come back
    as lists, an InvalidDrawing as {"error": reason}."""
    results = []
    for start in range(0, len(drawings), CHUNK):
        results += page.evaluate(
            """([name, all, extra]) => all.map((strokes) => {
                try {
                    const out = window.pp[name](strokes, ...extra);
                    if (out && out.ink) return {ink: Array.from(out.ink), length: out.length};
                    if (out && out.image) return {image: Array.from(out.image)};
                    return out;
                } catch (error) {
                    if (error instanceof window.pp.InvalidDrawing) return {error: error.reason};
                    throw error;
                }
            })""",
            [function, [_as_json(d) for d in drawings[start : start + CHUNK]], list(extra)],
        )
    return results


def test_simplification_gives_pythons_points_on_every_sample_drawing(page, drawings):
    ours = _in_page(page, "simplifiedStrokes", drawings, True)
    for drawing, strokes in zip(drawings, ours, strict=True):
        expected = preprocess.simplified_strokes(preprocess.checked_strokes(drawing.strokes), True)
        assert strokes == [[list(map(float, axis)) for axis in stroke] for stroke in expected], drawing.key_id
    raw = [s for d, s in zip(drawings, ours, strict=True) if d.is_raw]
    assert all(v == round(v) and 0 <= v <= 255 for s in raw for stroke in s for axis in stroke for v in axis)


@pytest.mark.parametrize("prep", [
    preprocess.Preprocessing(),
    preprocess.Preprocessing(normalize="per_axis", simplify=False, max_points=50),
], ids=["uniform", "per_axis_unsimplified_truncated"])
def test_model_input_gives_pythons_ink_on_every_sample_drawing(page, drawings, prep):
    ours = _in_page(page, "modelInput", drawings, prep.to_dict())
    exact = 0
    for drawing, answer in zip(drawings, ours, strict=True):
        expected = preprocess.model_input(drawing, prep)["ink"]
        ink = np.asarray(answer["ink"], np.float32).reshape(-1, 3)
        assert answer["length"] == len(expected) and ink.shape == expected.shape, drawing.key_id
        np.testing.assert_allclose(ink, expected, atol=INK_TOLERANCE, rtol=0)
        exact += np.array_equal(ink, expected)
    print(f"{exact} of {len(drawings)} inks identical to the last bit")
    assert exact == len(drawings)  # float32 arithmetic operation for operation, as numpy does it


def test_bitmaps_match_python_and_the_cairo_recipe_within_the_recipes_tolerance(page, drawings):
    """tests/test_bitmap.py's tolerance (Python's bitmap against the recipe run with cairo), for the
    page's bitmap against Python's and against the recipe itself."""
    ours = _in_page(page, "modelInput", drawings, {"kind": "images"})
    images = np.array([answer["image"] for answer in ours], np.int16)
    assert images.shape == (len(drawings), bitmap.SIDE * bitmap.SIDE)
    images_prep = preprocess.Preprocessing(kind="images")
    python = np.stack([preprocess.model_input(d, images_prep)["image"].reshape(-1) for d in drawings])
    simplified = [preprocess.simplified_strokes(preprocess.checked_strokes(d.strokes)) for d in drawings]
    cairo = np.stack([vector_to_raster([[np.array(s[:2], float) for s in one]])[0] for one in simplified])
    for name, expected in (("Python's", python.astype(np.int16)), ("cairo's", cairo.astype(np.int16))):
        difference = np.abs(images - expected)
        per_drawing = difference.mean(axis=1)
        print(f"against {name}: mean absolute difference {difference.mean():.3f} over {len(images)} bitmaps, "
              f"worst drawing {per_drawing.max():.2f}")
        assert difference.mean() < MAX_MEAN_ABS_DIFFERENCE
        assert np.percentile(per_drawing, 99) < 3 * MAX_MEAN_ABS_DIFFERENCE
        # The comparison can fail: a picture shifted by a pixel is far off.
        shifted = np.roll(images.reshape(-1, 28, 28), 1, axis=2).reshape(len(images), -1)
        assert np.abs(shifted - expected).mean() > 5 * MAX_MEAN_ABS_DIFFERENCE


def test_hypot_and_rounding_are_numpys(page):
    """RDP's ties hang on the last bit of np.hypot (glibc's hypot), which Math.hypot does not give."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-255, 255, 20_000) * rng.choice([1.0, 1e-3, 1 / 7], 20_000)
    y = rng.uniform(-255, 255, 20_000)
    ours = page.evaluate("([x, y]) => x.map((v, i) => window.pp.hypot(v, y[i]))", [x.tolist(), y.tolist()])
    assert np.array_equal(np.array(ours), np.hypot(x, y))
    browsers = page.evaluate("([x, y]) => x.map((v, i) => Math.hypot(v, y[i]))", [x.tolist(), y.tolist()])
    assert not np.array_equal(np.array(browsers), np.hypot(x, y))  # why preprocess.js has its own
    halves = (np.arange(-20, 21) + 0.5).tolist() + [0.49999999999999994, 2.5000000000000004, 254.5, 255.5]
    rounded = page.evaluate("(values) => values.map(window.pp.roundHalfEven)", halves)
    assert rounded == np.round(halves).tolist()


def test_limits_are_pythons(page):
    assert page.evaluate("window.pp.LIMITS") == {
        "maxPointsPerStroke": limits.MAX_POINTS_PER_STROKE,
        "maxPointsPerDrawing": limits.MAX_POINTS_PER_DRAWING,
        "maxAbsCoordinate": limits.MAX_ABS_COORDINATE,
        "maxResampledPoints": limits.MAX_RESAMPLED_POINTS,
    }


def test_unusable_drawings_get_pythons_reasons(page, drawings):
    real = _as_json(next(d for d in drawings if d.is_raw))
    cases = [
        [],  # no stroke
        [[[], [], []]],  # only an empty stroke
        [[real[0][0][:1], real[0][1][:1], real[0][2][:1]]],  # one point
        [[real[0][0], real[0][1][:-1], real[0][2]]],  # x and y differ in length
        [[real[0][0], [2e6] * len(real[0][1]), real[0][2]]],  # beyond the coordinate bound
        [[[float(i % 7) for i in range(10_001)], [0.0] * 10_001]],  # too many points in a stroke
        [[[0.0, 1e5] * 600, [0.0, 0.0] * 600, list(range(1200))]],  # over 2**18 px of ink to resample
    ]
    answers = page.evaluate(
        """(cases) => cases.map((strokes) => {
            const prep = {kind: "strokes", normalize: "uniform", simplify: true};
            try { window.pp.modelInput(strokes, prep); return null; }
            catch (error) { return error instanceof window.pp.InvalidDrawing ? error.reason : String(error); }
        })""", cases)
    for strokes, reason in zip(cases, answers, strict=True):
        with pytest.raises(InvalidRecord) as failure:
            preprocess.model_input(Drawing(key_id=0, word="", strokes=strokes), preprocess.Preprocessing())
        assert str(failure.value).split(":")[0] == reason, (reason, str(failure.value))
