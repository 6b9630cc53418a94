"""The tf.io side of the ONE tf.train.Example schema (quickdraw_tf/data/features.py): parse specs derived
from FEATURE_TABLE, and the image example's parsing. Here, not in data/, because it needs TensorFlow."""

from __future__ import annotations

import tensorflow as tf

from quickdraw_tf.data.features import BITMAP_SIZE, FEATURE_TABLE


def parse_spec(kind: str) -> dict:
    """The tf.io.parse_single_example spec of a kind's examples, from FEATURE_TABLE."""
    spec = {}
    for feature in FEATURE_TABLE[kind]:
        dtype = tf.dtypes.as_dtype(feature.dtype)
        if None in feature.shape:
            spec[feature.name] = tf.io.VarLenFeature(dtype)
        else:
            spec[feature.name] = tf.io.FixedLenFeature(list(feature.shape), dtype)
    return spec


STROKE_FEATURES = parse_spec("strokes")
IMAGE_FEATURES = parse_spec("images")


def parse_image_example(serialized):
    """Parses one serialized image example; `image` comes back as uint8 [28, 28]."""
    parsed = tf.io.parse_single_example(serialized, IMAGE_FEATURES)
    pixels = tf.io.decode_raw(parsed["image"], tf.uint8)
    parsed["image"] = tf.reshape(pixels, [BITMAP_SIZE, BITMAP_SIZE])
    return parsed
