"""quickdraw_tf.models.raster: scatter-mean against numpy, and render against PIL on real drawings."""

import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageDraw

from quickdraw_tf.data import ink
from quickdraw_tf.models import raster
from tests.sample import SAMPLE


def _numpy_scatter(features, positions, lengths, height, width):
    sums = np.zeros((len(features), height, width, features.shape[-1]))
    counts = np.zeros((len(features), height, width))
    for b, length in enumerate(lengths):
        for t in range(length):
            x, y = positions[b, t]
            sums[b, y, x] += features[b, t]
            counts[b, y, x] += 1
    return sums, counts


def _random_points(rng, batch=3, steps=40, channels=5, height=4, width=6):
    features = rng.normal(size=(batch, steps, channels)).astype(np.float32)
    # A 4x6 grid and 40 points: many cells get several points (collisions).
    columns, rows = rng.integers(0, width, (batch, steps)), rng.integers(0, height, (batch, steps))
    positions = np.stack([columns, rows], axis=-1)
    lengths = np.array([steps, 17, 0][:batch], np.int32)
    return features, positions.astype(np.int32), lengths


def test_scatter_matches_numpy_sums_counts_and_means():
    features, positions, lengths = _random_points(np.random.default_rng(0))
    sums, counts = _numpy_scatter(features, positions, lengths, 4, 6)
    assert counts.max() >= 3  # the test exercises collisions
    mask = raster.point_mask(lengths, features.shape[1])
    got_sums, got_counts = raster.scatter_sum_and_count(features, positions, (4, 6), mask)
    np.testing.assert_allclose(got_sums, sums, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got_counts, counts)
    means = raster.scatter(features, positions, (4, 6), lengths=lengths)
    np.testing.assert_allclose(means, sums / np.maximum(counts, 1)[..., None], rtol=1e-5, atol=1e-5)
    assert not np.any(means[2])  # a length-0 drawing scatters nothing


def test_scatter_ignores_padded_points_whatever_they_hold():
    features, positions, lengths = _random_points(np.random.default_rng(1))
    clean = raster.scatter(features, positions, (4, 6), lengths=lengths)
    features[1, 17:] = 1e6  # padding full of junk, pointing at cells that valid points use
    positions[1, 17:] = positions[1, 0]
    np.testing.assert_array_equal(raster.scatter(features, positions, (4, 6), lengths=lengths), clean)


def test_scatter_gradient_is_the_cells_weight_over_its_count():
    features, positions, lengths = _random_points(np.random.default_rng(2))
    _, counts = _numpy_scatter(features, positions, lengths, 4, 6)
    cell_weights = np.random.default_rng(3).normal(size=(3, 4, 6, 5)).astype(np.float32)
    features = tf.constant(features)
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = tf.reduce_sum(raster.scatter(features, positions, (4, 6), lengths=lengths) * cell_weights)
    gradient = tape.gradient(loss, features).numpy()
    for b, t in [(0, 0), (0, 39), (1, 16)]:
        x, y = positions[b, t]
        np.testing.assert_allclose(gradient[b, t], cell_weights[b, y, x] / counts[b, y, x], rtol=1e-5)
    assert not np.any(gradient[1, 17:]) and not np.any(gradient[2])


def test_scatter_sums_in_float32_under_float16():
    # 100 points of 1000 in one cell: a float16 sum (1e5) overflows to inf; the float32 mean is 1000.
    features = tf.fill([1, 100, 2], tf.constant(1000.0, tf.float16))
    means = raster.scatter(features, tf.zeros([1, 100, 2], tf.int32), (2, 2))
    assert means.dtype == tf.float16
    np.testing.assert_array_equal(means.numpy()[0, 0, 0], [1000.0, 1000.0])


def _real_drawings(per_file=4):
    """Real drawings: simplified (0-255 integers) and raw (unnormalized, many points)."""
    drawings = []
    for fmt in ("simplified/lamnguyen5464-Sketch-dataset", "raw/borismus-exupery"):
        for path in sorted(glob.glob(os.path.join(SAMPLE, fmt, "*.ndjson"))):
            with open(path, encoding="utf-8") as f:
                drawings += [json.loads(next(f))["drawing"] for _ in range(per_file)]
    return drawings


def _batch(drawings):
    inks = [ink.to_ink(strokes) for strokes in drawings]
    batch = np.zeros((len(inks), max(map(len, inks)), 3), np.float32)
    for i, one in enumerate(inks):
        batch[i, : len(one)] = one
    return batch, np.array([len(one) for one in inks], np.int32)


def _pil_render(strokes, size, width, padding, factor=16):
    """PIL's ImageDraw lines (round joins and caps) drawn factor x larger, box-filtered to size."""
    points = np.concatenate([np.asarray(stroke[:2], np.float64).T for stroke in strokes])
    lower, extent = points.min(0), (points.max(0) - points.min(0)).max() or 1.0
    image = Image.new("L", (size * factor, size * factor))
    draw, radius = ImageDraw.Draw(image), width * factor / 2
    for stroke in strokes:
        xy = (np.asarray(stroke[:2], np.float64).T - lower) / extent * (size - 1 - 2 * padding) + padding
        xy = (xy + 0.5) * factor - 0.5  # pixel centres of the small image, in the large one
        if len(xy) > 1:
            draw.line([tuple(p) for p in np.round(xy)], fill=255, width=round(width * factor), joint="curve")
        for x, y in (xy[0], xy[-1]):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    pixels = np.asarray(image, np.float32).reshape(size, factor, size, factor)
    return pixels.mean(axis=(1, 3)) / 255.0


def test_render_matches_pil_on_real_drawings():
    drawings = _real_drawings()
    batch, lengths = _batch(drawings)
    images = raster.render(batch, lengths, size=64, line_width=2.0).numpy()[..., 0]
    binary_ious = []
    for image, strokes in zip(images, drawings, strict=True):
        reference = _pil_render(strokes, 64, 2.0, padding=1.0)
        # Coverage-weighted IoU: sum of the minimum over sum of the maximum coverage.
        assert np.minimum(image, reference).sum() / np.maximum(image, reference).sum() >= 0.9
        assert abs(image.sum() / reference.sum() - 1) < 0.05  # as much ink: lines are as wide
        ours, theirs = image >= 0.5, reference >= 0.5
        binary_ious.append((ours & theirs).sum() / (ours | theirs).sum())
    # Pixels at least half covered: a line centred on a pixel row covers its neighbours exactly by
    # half, so single drawings with long axis-aligned lines fall to ~0.85 on rounding; on average:
    assert np.mean(binary_ious) >= 0.9 and np.min(binary_ious) >= 0.75


@pytest.mark.integration  # an XLA compile of the renderer: ~9 s on 2 shared cores
def test_render_is_the_same_padded_in_tf_data_and_under_xla():
    batch, lengths = _batch(_real_drawings(per_file=1)[:6])
    expected = raster.render(batch, lengths, size=32, colour="stroke_order").numpy()
    padded = np.pad(batch, [[0, 0], [0, 7], [0, 0]], constant_values=5.0)  # junk past the lengths
    dataset = tf.data.Dataset.from_tensors((padded, lengths)).map(
        lambda x, n: raster.render(x, n, size=32, colour="stroke_order")
    )
    np.testing.assert_array_equal(next(iter(dataset)).numpy(), expected)
    xla = tf.function(lambda x, n: raster.render(x, n, size=32, colour="stroke_order"), jit_compile=True)
    np.testing.assert_allclose(xla(batch, lengths).numpy(), expected, atol=1 / 255)


def _lines(num_strokes):
    """Strokes stacked as horizontal lines 10 units apart: one per row of a 0-100 box."""
    return [[[0, 100], [10 * i, 10 * i]] for i in range(num_strokes)]


def test_stroke_order_colours_as_the_kaggle_kernel_and_no_line_across_pen_lifts():
    batch, lengths = _batch([_lines(11)])
    # 11 rows (0-100 units) onto pixel rows 0, 10, ..., 100 with no padding: 1,100 pixels of line,
    # unbroken with 1,100 samples (at most 1 pixel apart).
    image = raster.render(batch, lengths, size=101, line_width=1, antialias=False, colour="stroke_order",
                          padding=0, num_samples=1100).numpy()[0, :, :, 0]  # fmt: skip
    for stroke in range(11):
        assert np.allclose(image[10 * stroke, 5:96], (255 - min(stroke, 10) * 13) / 255)
    # A pen lift jumps from (100, 10 s) back to (0, 10 (s + 1)): nothing between the rows.
    assert not np.any(image[[5, 15, 55, 95]])


def test_later_strokes_are_drawn_on_top_and_palette_gives_a_colour_per_stroke():
    cross = [[[0, 20], [10, 10]], [[10, 10], [0, 20]], [[0, 20], [20, 20]]]
    batch, lengths = _batch([cross])
    grey = raster.render(batch, lengths, size=21, line_width=1, antialias=False, colour="stroke_order",
                         padding=0).numpy()[0, :, :, 0]  # fmt: skip
    assert np.isclose(grey[10, 10], 242 / 255) and np.isclose(grey[10, 3], 1.0)  # stroke 1 on top
    colour = raster.render(batch, lengths, size=21, line_width=1, antialias=False, colour="stroke_palette",
                           padding=0).numpy()[0]  # fmt: skip
    palette = np.asarray(raster.STROKE_PALETTE) / 255
    np.testing.assert_allclose(colour[10, 3], palette[0], atol=1e-6)
    np.testing.assert_allclose(colour[3, 10], palette[1], atol=1e-6)
    np.testing.assert_allclose(colour[20, 5], palette[2], atol=1e-6)
    assert colour.shape == (21, 21, 3) and not np.any(colour[0, 0])


def test_antialiased_edges_are_partial_and_dots_are_drawn():
    # A line between pixel rows 50 and 51, then two one-point strokes (dots) at opposite corners.
    # (Not a dot first: to_ink does not store the first point's end-of-stroke flag.)
    strokes = [[[0, 100], [50.5, 50.5]], [[0], [0]], [[100], [100]]]
    batch, lengths = _batch([strokes])
    image = raster.render(batch, lengths, size=101, line_width=1.0, padding=0).numpy()[0, :, :, 0]
    assert image[0, 0] == 1.0 and image[100, 100] == 1.0
    np.testing.assert_allclose(image[50:52, 20:80], 0.5, atol=0.01)  # each row half covered
    assert not np.any(image[20:40]) and not np.any(image[60:90])  # no line to or between the dots


def test_render_ink_layer_round_trips_and_stays_float32_under_mixed_precision(tmp_path):
    batch, lengths = _batch(_real_drawings(per_file=1)[:3])
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = raster.RenderInk(size=32, colour="stroke_palette")
        images = layer(batch, lengths)
    finally:
        keras.config.set_dtype_policy(previous)
    assert images.dtype == tf.float32 and images.shape == (3, 32, 32, 3)
    clone = raster.RenderInk.from_config(layer.get_config())
    np.testing.assert_array_equal(clone(batch, lengths), images)


def test_render_rejects_unknown_colours():
    with pytest.raises(ValueError, match="colour must be one of"):
        raster.render(np.zeros((1, 2, 3), np.float32), [2], colour="rainbow")


def test_render_handles_empty_batches_and_drawings():
    none = raster.render(np.zeros((0, 0, 3), np.float32), np.zeros(0, np.int32), size=16)
    assert none.shape == (0, 16, 16, 1)
    empty = raster.render(np.zeros((2, 0, 3), np.float32), np.zeros(2, np.int32), size=16)
    assert empty.shape == (2, 16, 16, 1) and not np.any(empty)
