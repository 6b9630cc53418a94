"""Training-time geometric augmentation of delta ink, inside the model (like Keras' Random* layers).

A drawing's points are the cumulative sums of its deltas, so a linear map of the deltas is the same
map of the whole drawing (about its first point; the raster models re-fit every drawing to its
bounding box, so where it lands does not matter). The input pipeline jitters x and y scales, drops
points and can rotate (--augment_rotation); the raster configs rotate and shear here instead
(--hparams=augment_rotation, augment_shear) and leave the pipeline's rotation at 0: setting both
rotates twice. Both draw their angles with `random_angles` and turn the moves with `affine_moves`.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


def random_angles(count: tf.Tensor | int, max_degrees: float) -> tf.Tensor:
    """`count` angles in radians, uniform in +-max_degrees (stateful tf.random: see RandomInkAffine)."""
    return tf.random.uniform([count], -1.0, 1.0) * (max_degrees * math.pi / 180)


def affine_moves(moves: tf.Tensor, angle: tf.Tensor, shear: tf.Tensor | float = 0.0) -> tf.Tensor:
    """Moves (dx, dy) [..., 2] sheared along x by `shear` * dy, then rotated by `angle` (radians);
    angle and shear broadcast against moves[..., 0]. shear 0: a rotation, lengths kept."""
    cos, sin = tf.cos(angle), tf.sin(angle)
    dx, dy = moves[..., 0], moves[..., 1]
    sheared_dx = dx + shear * dy
    return tf.stack([cos * sheared_dx - sin * dy, sin * sheared_dx + cos * dy], axis=-1)


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class RandomInkAffine(keras.layers.Layer):
    """ink [B, T, 3] → the same with (dx, dy) of each drawing rotated by an angle uniform in
    ±rotation degrees and sheared by a factor uniform in ±shear. Identity unless training.

    tf.random (stateful) rather than a Keras seed generator: it runs unchanged in replicas of any
    tf.distribute strategy and under XLA. Always float32, like the geometry it feeds.
    """

    def __init__(self, rotation: float = 0.0, shear: float = 0.0, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.rotation, self.shear = rotation, shear

    def call(self, ink, training=None):
        if not training or not (self.rotation or self.shear):
            return ink
        batch = tf.shape(ink)[0]
        angle = random_angles(batch, self.rotation)
        shear = tf.random.uniform([batch], -1.0, 1.0) * self.shear
        moves = affine_moves(ink[..., :2], angle[:, None], shear[:, None])  # one angle per drawing
        return tf.concat([moves, ink[..., 2:]], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)  # always float32 (see __init__)
        config.update({"rotation": self.rotation, "shear": self.shear})
        return config
