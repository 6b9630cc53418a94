"""Is a generator copying its training drawings? Distance from a drawing to the nearest training drawing.

The distance is the symmetric Chamfer distance between two drawings' ink resampled to RESAMPLED_POINTS
points spaced evenly along the pen's path (pen-up jumps excluded), each drawing scaled so that its larger
side is 1 and its box starts at (0, 0): the mean, over both drawings' points, of the distance to the other
drawing's nearest point. 0 means the same shape; a copy with a few points moved stays near 0.
"""

from __future__ import annotations

import numpy as np

RESAMPLED_POINTS = 64


def resampled_points(ink: np.ndarray, count: int = RESAMPLED_POINTS) -> np.ndarray:
    """Delta ink [n, 3] → [count, 2] points evenly spaced along its strokes, in the unit box."""
    ink = np.asarray(ink, np.float64)
    points = np.concatenate([np.zeros((1, 2)), np.cumsum(ink[:, :2], axis=0)])
    # Segment i joins point i to point i + 1 unless the pen was lifted after move i - 1.
    lifted_before = np.concatenate([[0.0], ink[:-1, 2]]) > 0.5
    segments = np.stack([points[:-1], points[1:]], axis=1)[~lifted_before]
    lengths = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1)
    if not len(segments) or lengths.sum() == 0:
        samples = np.repeat(points[:1], count, axis=0)
    else:
        cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
        where = np.linspace(0.0, cumulative[-1], count)
        index = np.clip(np.searchsorted(cumulative, where, side="right") - 1, 0, len(segments) - 1)
        fraction = (where - cumulative[index]) / np.maximum(lengths[index], 1e-12)
        samples = segments[index, 0] + fraction[:, None] * (segments[index, 1] - segments[index, 0])
    samples -= samples.min(axis=0)
    side = samples.max()
    return samples / side if side > 0 else samples


def chamfer_to_each(points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Chamfer distances from one drawing's points [P, 2] to each of others [N, P, 2] → [N]."""
    d = np.linalg.norm(points[None, :, None, :] - others[:, None, :, :], axis=-1)  # [N, P, P]
    return 0.5 * (d.min(axis=2).mean(axis=1) + d.min(axis=1).mean(axis=1))


def nearest_distances(inks: list[np.ndarray], training_inks: list[np.ndarray]) -> np.ndarray:
    """For each ink, the Chamfer distance to its nearest training ink."""
    training = np.stack([resampled_points(x) for x in training_inks])
    return np.array([chamfer_to_each(resampled_points(x), training).min() for x in inks])
