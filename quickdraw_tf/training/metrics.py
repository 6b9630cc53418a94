"""Classification metrics shared by the training loop and evaluate.py.

All functions take logits [B, C] and integer labels [B] and return one value per example, so callers
can sum them across batches and replicas and divide once by the example count. The predicted list is
tf.math.top_k's order (ties go to the lower class index), as a Kaggle submission would list it.
"""

from __future__ import annotations

import tensorflow as tf


def top_k_hits(logits: tf.Tensor, labels: tf.Tensor, k: int) -> tf.Tensor:
    """bool [B, k]: whether the i-th best guess is the true class."""
    k = min(k, logits.shape[-1]) if logits.shape[-1] is not None else k
    top = tf.math.top_k(logits, k=k).indices
    return tf.equal(top, tf.cast(labels, top.dtype)[:, None])


def top_k_correct(logits: tf.Tensor, labels: tf.Tensor, k: int) -> tf.Tensor:
    """float32 [B]: 1 where the true class is among the k best guesses, else 0."""
    return tf.cast(tf.reduce_any(top_k_hits(logits, labels, k), axis=-1), tf.float32)


def average_precision_at_k(logits: tf.Tensor, labels: tf.Tensor, k: int = 3) -> tf.Tensor:
    """float32 [B]: 1 / rank of the true class within the k best guesses, 0 if it is not there.

    With one true class per drawing this is Kaggle's MAP@k summand; the mean over examples is MAP@k.
    """
    hits = tf.cast(top_k_hits(logits, labels, k), tf.float32)
    ranks = tf.range(1, tf.shape(hits)[-1] + 1, dtype=tf.float32)
    return tf.reduce_sum(hits / ranks, axis=-1)


def classification_sums(logits: tf.Tensor, labels: tf.Tensor) -> dict[str, tf.Tensor]:
    """Per-batch sums of top-1, top-3 and MAP@3 plus the example count: add these, divide at the end."""
    return {
        "top1": tf.reduce_sum(top_k_correct(logits, labels, 1)),
        "top3": tf.reduce_sum(top_k_correct(logits, labels, 3)),
        "map3": tf.reduce_sum(average_precision_at_k(logits, labels, 3)),
        "count": tf.cast(tf.shape(labels)[0], tf.float32),
    }
