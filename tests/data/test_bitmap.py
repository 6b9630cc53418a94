"""quickdraw_tf.data.bitmap against the numpy_bitmap recipe itself (vector_to_raster of
googlecreativelab/quickdraw-dataset#19, run with cairo through cairocffi) on every drawing of the embedded
sample: raw ones simplified first, as Google did."""

import glob
import os

import numpy as np
import pytest

from quickdraw_tf.data import bitmap, formats, preprocess
from tests.cairo_recipe import vector_to_raster
from tests.sample import SAMPLE

MAX_MEAN_ABS_DIFFERENCE = 2.0  # grey levels of 255, over all pixels (measured 1.49: see README)


def sample_strokes() -> list:
    paths = sorted(glob.glob(os.path.join(SAMPLE, "*", "*", "*.ndjson")))
    return [preprocess.simplified_strokes(d.strokes) for path in paths for d in formats.iter_drawings(path)]


@pytest.fixture(scope="module")
def renders():
    strokes = sample_strokes()
    ours = np.stack([bitmap.google_bitmap(s).reshape(-1) for s in strokes]).astype(np.int16)
    recipe = np.stack(
        [vector_to_raster([[np.array([s[0], s[1]], float) for s in drawing]])[0] for drawing in strokes]
    ).astype(np.int16)
    return ours, recipe


@pytest.mark.integration  # renders every sample drawing twice, once through the cairo C library
def test_renders_match_the_cairo_recipe_on_every_sample_drawing(renders):
    ours, recipe = renders
    assert len(ours) >= 1000
    difference = np.abs(ours - recipe)
    per_drawing = difference.mean(axis=1)
    print(f"mean absolute difference {difference.mean():.3f} over {len(ours)} drawings")
    assert difference.mean() < MAX_MEAN_ABS_DIFFERENCE
    assert np.percentile(per_drawing, 99) < 3 * MAX_MEAN_ABS_DIFFERENCE
    # The comparison can fail: an empty picture, or one shifted by a pixel, is far off.
    assert np.abs(recipe).mean() > 10 * MAX_MEAN_ABS_DIFFERENCE
    shifted = np.roll(ours.reshape(-1, 28, 28), 1, axis=2).reshape(len(ours), -1)
    assert np.abs(shifted - recipe).mean() > 10 * MAX_MEAN_ABS_DIFFERENCE


@pytest.mark.integration  # the same cairo renders as above
def test_ink_totals_agree(renders):
    ours, recipe = renders
    np.testing.assert_allclose(ours.sum(axis=1), recipe.sum(axis=1), rtol=0.1)


def test_layout_is_numpy_bitmap():
    image = bitmap.google_bitmap([[[0, 255], [0, 255]]])
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert image[0, 0] == 0 and image[-1, -1] == 0  # the padding stays black
    assert image[14, 14] > 200  # the diagonal passes through the centre
    # Centred on the maximum, as the recipe does: a small drawing at the origin lands in the middle.
    small = bitmap.google_bitmap([[[0, 10], [0, 10]]])
    assert small[12:16, 12:16].max() > 200 and small[:8].max() == 0
