"""Training-time geometric augmentation of delta ink, inside the model (like Keras' Random* layers).

A drawing's points are the cumulative sums of its deltas, so a linear map of the deltas is the same
map of the whole drawing (about its first point; the raster models re-fit every drawing to its
bounding box, so where it lands does not matter). The input pipeline jitters x and y scales, drops
points and can rotate (--augment_rotation); the raster configs rotate and shear here instead
(--hparams=augment_rotation, augment_shear) and leave the pipeline's rotation at 0: setting both
rotates twice.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf


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
        angle = tf.random.uniform([batch], -1.0, 1.0) * (self.rotation * math.pi / 180)
        shear = tf.random.uniform([batch], -1.0, 1.0) * self.shear
        cos, sin = tf.cos(angle), tf.sin(angle)
        # Rows of M^T for deltas @ M^T, M = rotation @ [[1, shear], [0, 1]].
        matrix = tf.stack([tf.stack([cos, sin], -1), tf.stack([cos * shear - sin, sin * shear + cos], -1)], 1)
        return tf.concat([tf.linalg.matmul(ink[..., :2], matrix), ink[..., 2:]], axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)
        return {**config, "rotation": self.rotation, "shear": self.shear}
