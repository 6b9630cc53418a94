"""The distance a generator's samples are held to (benchmarks/generate_eval.py: are they copies of training
drawings?): symmetric Chamfer distance of evenly resampled strokes in the unit box, on real drawings."""

import numpy as np
import pytest

from quickdraw_tf.data import ink, shape_distance
from tests.conftest import sample_drawings


def real_inks(count: int) -> list[np.ndarray]:
    return [ink.to_ink(record["drawing"]) for record in sample_drawings(per_class=2)[:count]]


def test_resampled_points_are_evenly_spaced_along_the_pen_in_the_unit_box():
    points = shape_distance.resampled_points(real_inks(1)[0], count=64)
    assert points.shape == (64, 2)
    assert points.min(axis=0) == pytest.approx([0.0, 0.0]) and points.max() == pytest.approx(1.0)


def test_a_drawing_is_at_distance_zero_from_itself_scaled_and_moved():
    drawing = real_inks(1)[0]
    moved = drawing.copy()
    moved[:, :2] *= 0.37  # delta ink: a smaller copy; the first point's position is not stored at all
    this = shape_distance.resampled_points(drawing)
    assert shape_distance.chamfer_to_each(this, this[None])[0] == pytest.approx(0.0, abs=1e-9)
    that = shape_distance.resampled_points(moved)
    assert shape_distance.chamfer_to_each(this, that[None])[0] == pytest.approx(0.0, abs=1e-6)  # float32 ink


def test_pen_up_jumps_are_not_part_of_the_path():
    # (0, 0) -> (1, 0), pen up, (1, 1) -> (2, 1): in the unit box the strokes lie at y = 0 and y = 0.5
    two_strokes = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]], np.float32)
    points = shape_distance.resampled_points(two_strokes, count=9)
    assert np.all((np.abs(points[:, 1]) < 1e-9) | (np.abs(points[:, 1] - 0.5) < 1e-9))
    assert (np.abs(points[:, 1]) < 1e-9).sum() == (np.abs(points[:, 1] - 0.5) < 1e-9).sum() - 1


def test_nearest_distance_is_the_smallest_over_the_training_drawings():
    inks = real_inks(6)
    queries, training = inks[:2], inks[2:]
    nearest = shape_distance.nearest_distances(queries, training)
    for query, got in zip(queries, nearest, strict=True):
        each = [
            shape_distance.chamfer_to_each(
                shape_distance.resampled_points(query), shape_distance.resampled_points(t)[None]
            )[0]
            for t in training
        ]
        assert got == pytest.approx(min(each)) and got > 0
    assert shape_distance.nearest_distances(training[:1], training)[0] == pytest.approx(0.0, abs=1e-9)
