"""Balanced top-1 (mean per-class recall) and the per-class lines evaluation.py prints."""

import numpy as np
import pytest

from quickdraw_tf.training import evaluation


def test_always_the_largest_class_scores_one_over_the_classes():
    # 8 of 10 drawings are class 0 and the model always says 0: top-1 0.8, balanced top-1 1/3.
    confusion = np.array([[8, 0, 0], [1, 0, 0], [1, 0, 0]])
    assert np.trace(confusion) / confusion.sum() == pytest.approx(0.8)
    assert evaluation.balanced_top1(confusion) == pytest.approx(1 / 3)


def test_is_the_mean_of_the_row_recalls_and_skips_absent_classes():
    confusion = np.array([[3, 1, 0], [0, 0, 0], [1, 1, 2]])  # class 1 has no drawing in the split
    assert evaluation.balanced_top1(confusion) == pytest.approx((3 / 4 + 2 / 4) / 2)


def test_a_perfect_diagonal_scores_one_and_an_empty_matrix_is_refused():
    assert evaluation.balanced_top1(np.diag([5, 1, 7])) == 1.0
    with pytest.raises(ValueError, match="no example"):
        evaluation.balanced_top1(np.zeros((3, 3), np.int64))


def test_per_class_lines_name_each_class_with_its_counts():
    results = {
        "balanced_top1": 0.625,
        "per_class": {
            "cat": {"accuracy": 0.75, "count": 4},
            "The Eiffel Tower": {"accuracy": 0.5, "count": 4},
            "dog": {"accuracy": None, "count": 0},
        },
    }
    lines = evaluation.per_class_lines(results)
    assert lines[0] == "balanced top-1 (mean per-class recall) 0.6250 over 2 classes"
    assert lines[1:] == [
        "  cat               recall 0.75  (3/4)",
        "  The Eiffel Tower  recall 0.50  (2/4)",
    ]
    assert evaluation.per_class_lines(results, max_classes=1) == lines[:1]
