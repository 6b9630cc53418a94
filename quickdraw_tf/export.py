"""SavedModel export with a serving signature that takes strokes (or, for bitmap models, images).

Signature "serving_default":
  stroke models: ink float32 [None, None, 3] (delta ink, zero-padded), length int32 [None]
  image models:  image uint8 [None, 28, 28]
  → probabilities float32 [None, C], top_k_classes string [None, k], top_k_probabilities float32 [None, k]
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from quickdraw_tf import features

SIGNATURE = "serving_default"


_INK_SIGNATURE = [
    tf.TensorSpec([None, None, 3], tf.float32, name="ink"),
    tf.TensorSpec([None], tf.int32, name="length"),
]
_IMAGE_SIGNATURE = [tf.TensorSpec([None, features.BITMAP_SIZE, features.BITMAP_SIZE], tf.uint8, name="image")]


def input_names(model: keras.Model) -> set[str]:
    return {tensor.name for tensor in model.inputs}


class Serving(tf.Module):
    """Wraps a trained Keras model; the class names travel inside the SavedModel.

    Only the signature matching the model's inputs is created: SavedModel traces every tf.function
    it finds, and an ink model cannot be traced with an image.
    """

    def __init__(self, model: keras.Model, class_names: Sequence[str], top_k: int = 3):
        super().__init__()
        self.model = model
        self.class_names = tf.constant(list(class_names))
        self.top_k = min(top_k, len(class_names))
        names = input_names(model)
        if names == {"ink", "length"}:
            self.serve = tf.function(self._serve_ink, input_signature=_INK_SIGNATURE)
        elif names == {"image"}:
            self.serve = tf.function(self._serve_image, input_signature=_IMAGE_SIGNATURE)
        else:
            raise ValueError(
                f"cannot serve a model with inputs {sorted(names)}: expected ink+length or image"
            )

    def _outputs(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        probabilities = tf.nn.softmax(tf.cast(self.model(inputs, training=False), tf.float32))
        top = tf.math.top_k(probabilities, k=self.top_k)
        return {
            "probabilities": probabilities,
            "top_k_classes": tf.gather(self.class_names, top.indices),
            "top_k_probabilities": top.values,
        }

    def _serve_ink(self, ink: tf.Tensor, length: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._outputs({"ink": ink, "length": length})

    def _serve_image(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._outputs({"image": image})


def export_saved_model(
    model: keras.Model, class_names: Sequence[str], export_dir: str, top_k: int = 3
) -> str:
    """Writes the SavedModel with its one serving signature; returns export_dir."""
    module = Serving(model, class_names, top_k)
    tf.saved_model.save(module, export_dir, signatures={SIGNATURE: module.serve.get_concrete_function()})
    return export_dir
