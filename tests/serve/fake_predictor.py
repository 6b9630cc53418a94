"""A stand-in for quickdraw_tf.Predictor used ONLY by the unit tests of the server's mechanics (batching,
limits, errors, metrics). It has no model: its "probabilities" are a fixed function of the point count.
Every test that claims an end-to-end answer uses the real Predictor and a trained model instead."""

from __future__ import annotations

import threading

import numpy as np

from quickdraw_tf.data.drawing import Drawing


class FakePredictor:
    class_names = ("cat", "dog", "pig", "cow")
    name = "fake"
    accepts_strokes = True
    accepts_images = False

    def __init__(self, fail: bool = False):
        self.batch_sizes: list[int] = []
        self.fail = fail
        self.missing_rows = 0  # > 0: answer fewer rows than inputs (a broken model's output)
        self._lock = threading.Lock()

    def prepare(self, drawing: Drawing) -> int:
        points = sum(len(stroke[0]) for stroke in drawing.strokes)
        if points < 2:
            raise ValueError("too_short: 1 point in all, at least 2 needed")
        return points

    def probabilities(self, prepared: list) -> np.ndarray:
        with self._lock:
            self.batch_sizes.append(len(prepared))
        if self.fail:
            raise RuntimeError("the model broke")
        rows = np.full((len(prepared), 4), 0.1, np.float32)
        for row, points in zip(rows, prepared, strict=True):
            row[points % 4] = 0.7
        return rows[: len(rows) - self.missing_rows]

    def top_k(self, row: np.ndarray, k: int) -> list[tuple[str, float]]:
        order = np.argsort(-row, kind="stable")[:k]
        return [(self.class_names[i], float(row[i])) for i in order]
