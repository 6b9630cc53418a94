"""PNG renderings for TensorBoard and evaluation reports: drawings with labels, confusion matrices.

Uses matplotlib's object API with the Agg canvas (no pyplot, no display, thread-safe enough for a
training loop).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from quickdraw_tf.data.ink import ink_strokes


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def drawings_png(inks: np.ndarray, lengths: np.ndarray, titles: Sequence[str], columns: int = 4) -> bytes:
    """A grid of drawings (y down, as drawn), each titled, e.g. 'true: cat / pred: dog'."""
    rows = max(1, -(-len(titles) // columns))
    figure = Figure(figsize=(3 * columns, 3 * rows))
    for i, title in enumerate(titles):
        axes = figure.add_subplot(rows, columns, i + 1)
        for stroke in ink_strokes(inks[i], lengths[i]):
            axes.plot(stroke[:, 0], stroke[:, 1], "k-", linewidth=1.5)
        axes.invert_yaxis()
        axes.set_aspect("equal", adjustable="datalim")
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(title, fontsize=9, color="green" if _is_correct(title) else "red")
    figure.tight_layout()
    return _png(figure)


def bitmaps_png(images: np.ndarray, titles: Sequence[str], columns: int = 4) -> bytes:
    """A grid of 28x28 bitmaps (ink is bright, as in the dataset's numpy files), each titled."""
    rows = max(1, -(-len(titles) // columns))
    figure = Figure(figsize=(3 * columns, 3 * rows))
    for i, title in enumerate(titles):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(title, fontsize=9, color="green" if _is_correct(title) else "red")
    figure.tight_layout()
    return _png(figure)


def _is_correct(title: str) -> bool:
    true, _, predicted = title.partition(" / ")
    return true.removeprefix("true: ") == predicted.removeprefix("pred: ")


def confusion_matrix_png(matrix: np.ndarray, class_names: Sequence[str]) -> bytes:
    """Row-normalized confusion matrix (rows: true class, columns: predicted class)."""
    matrix = np.asarray(matrix, np.float64)
    normalized = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.35 * len(class_names) + 2)
    figure = Figure(figsize=(size, size))
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(normalized, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, labels=class_names, rotation=90, fontsize=7)
    axes.set_yticks(ticks, labels=class_names, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    return _png(figure)
