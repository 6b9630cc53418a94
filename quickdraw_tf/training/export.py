"""SavedModel export with a serving signature that takes strokes (or, for bitmap models, images).

Signature "serving_default":
  stroke models: ink float32 [None, None, 3] (delta ink, zero-padded), length int32 [None]
  image models:  image uint8 [None, 28, 28]
  → probabilities float32 [None, C], top_k_classes string [None, k], top_k_probabilities float32 [None, k]

The ink signature checks what a client sends before the model sees it, and raises
tf.errors.InvalidArgumentError with a plain message otherwise: ink has at most `max_points` points per
drawing (T, default MAX_POINTS; longer requests would cost seconds), one length per drawing, each
1 <= length <= T, and the ink finite (no NaN or Inf) within each drawing's length. What lies past a
drawing's length is padding: not trusted, not checked, set to zero before the model reads it.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from quickdraw_tf.data import features
from quickdraw_tf.models import contract

SIGNATURE = "serving_default"
MAX_POINTS = 10_000  # per drawing; the longest simplified drawings of the dataset have a few hundred


_INK_SIGNATURE = [
    tf.TensorSpec([None, None, 3], tf.float32, name="ink"),
    tf.TensorSpec([None], tf.int32, name="length"),
]
_IMAGE_SIGNATURE = [tf.TensorSpec([None, features.BITMAP_SIZE, features.BITMAP_SIZE], tf.uint8, name="image")]


class Serving(tf.Module):
    """Wraps a trained Keras model; the class names travel inside the SavedModel.

    Only the signature matching the model's inputs is created: SavedModel traces every tf.function
    it finds, and an ink model cannot be traced with an image.
    """

    def __init__(
        self, model: keras.Model, class_names: Sequence[str], top_k: int = 3, max_points: int = MAX_POINTS
    ):
        super().__init__()
        if max_points < 1:
            raise ValueError(f"max_points must be >= 1, got {max_points}")
        self.model = model
        self.max_points = max_points
        self.class_names = tuple(class_names)  # a constant of the traced graph (what converters want)
        self.top_k = min(top_k, len(class_names))
        if contract.input_kind(model) == contract.INK:
            self.serve = tf.function(self._serve_ink, input_signature=_INK_SIGNATURE)
        else:
            self.serve = tf.function(self._serve_image, input_signature=_IMAGE_SIGNATURE)

    def _outputs(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        probabilities = tf.nn.softmax(tf.cast(self.model(inputs, training=False), tf.float32))
        top = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "probabilities": probabilities,
            "top_k_classes": tf.gather(tf.constant(self.class_names), top.indices),
            "top_k_probabilities": top.values,
        }

    def _serve_ink(self, ink: tf.Tensor, length: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._outputs({"ink": checked_ink(ink, length, self.max_points), "length": length})

    def _serve_image(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._outputs({"image": image})


def checked_ink(ink: tf.Tensor, length: tf.Tensor, max_points: int) -> tf.Tensor:
    """The ink with its padding zeroed, once the checks of the module docstring hold (else an
    InvalidArgumentError: `assertion failed: [<message>]`)."""
    points = tf.shape(ink)[1]
    checks = [
        (tf.shape(length)[0] == tf.shape(ink)[0], "length must have one entry per drawing of ink"),
        (points <= max_points, f"ink has more than {max_points} points per drawing (the export's maximum T)"),
        (tf.reduce_all(length >= 1), "every length must be >= 1"),
        (tf.reduce_all(length <= points), "every length must be <= T (the ink's points per drawing)"),
    ]
    with tf.control_dependencies([tf.debugging.Assert(ok, [message]) for ok, message in checks]):
        within = tf.sequence_mask(length, points)[:, :, None]
    finite = tf.reduce_all(tf.math.is_finite(ink) | ~within)
    with tf.control_dependencies([tf.debugging.Assert(finite, ["ink must be finite (no NaN or Inf)"])]):
        return tf.where(within, ink, tf.zeros_like(ink))


def export_saved_model(
    model: keras.Model,
    class_names: Sequence[str],
    export_dir: str,
    top_k: int = 3,
    max_points: int = MAX_POINTS,
) -> str:
    """Writes the SavedModel with its one serving signature; returns export_dir."""
    module = Serving(model, class_names, top_k, max_points)
    tf.saved_model.save(module, export_dir, signatures={SIGNATURE: module.serve.get_concrete_function()})
    return export_dir
