import numpy as np
import pytest

from quickdraw_tf.training import metrics

# Three drawings, four classes. Ranks of the true class: 1, 3, 4 (outside the top 3).
LOGITS = np.array(
    [
        [5.0, 1.0, 0.0, -1.0],  # true 0: rank 1
        [0.1, 3.0, 2.0, 1.0],  # true 3: rank 3
        [4.0, 3.0, 2.0, 1.0],  # true 3: rank 4
    ],
    np.float32,
)
LABELS = np.array([0, 3, 3])


def test_average_precision_at_3_is_one_over_rank_or_zero():
    np.testing.assert_allclose(metrics.average_precision_at_k(LOGITS, LABELS, 3), [1.0, 1 / 3, 0.0])


def test_top_k_correct():
    np.testing.assert_allclose(metrics.top_k_correct(LOGITS, LABELS, 1), [1, 0, 0])
    np.testing.assert_allclose(metrics.top_k_correct(LOGITS, LABELS, 3), [1, 1, 0])
    np.testing.assert_allclose(metrics.top_k_correct(LOGITS, LABELS, 4), [1, 1, 1])


def test_k_larger_than_the_number_of_classes_counts_every_class():
    np.testing.assert_allclose(metrics.top_k_correct(LOGITS, LABELS, 5), [1, 1, 1])


def test_classification_sums():
    sums = {key: float(value) for key, value in metrics.classification_sums(LOGITS, LABELS).items()}
    assert sums == pytest.approx({"top1": 1.0, "top3": 2.0, "map3": 1 + 1 / 3, "count": 3.0})
