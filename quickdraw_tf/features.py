"""The ONE tf.train.Example schema: the Beam writer and the tf.data reader both import it.

Stroke examples keep the TF RNN tutorial's three features (`ink`, `shape`, `class_index`) so the
tutorial's readers still work, plus the drawing's metadata. Image examples (numpy bitmaps) hold
the 28x28 uint8 pixels row-major in one bytes feature.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

BITMAP_SIZE = 28

STROKE_FEATURES = {
    "ink": tf.io.VarLenFeature(tf.float32),  # flattened [n, 3]: (dx, dy, end_of_stroke)
    "shape": tf.io.FixedLenFeature([2], tf.int64),  # [n, 3]
    "class_index": tf.io.FixedLenFeature([1], tf.int64),
    "key_id": tf.io.FixedLenFeature([1], tf.int64),
    "word": tf.io.FixedLenFeature([], tf.string),
    "countrycode": tf.io.FixedLenFeature([], tf.string),
    "recognized": tf.io.FixedLenFeature([1], tf.int64),
    "timestamp": tf.io.FixedLenFeature([1], tf.int64),
}

IMAGE_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),  # BITMAP_SIZE**2 uint8 bytes, row-major
    "class_index": tf.io.FixedLenFeature([1], tf.int64),
    "key_id": tf.io.FixedLenFeature([1], tf.int64),
    "word": tf.io.FixedLenFeature([], tf.string),
}


def _int64(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def stroke_example(
    ink: np.ndarray,
    class_index: int,
    key_id: int,
    word: str,
    countrycode: str = "",
    recognized: bool = True,
    timestamp: int = 0,
) -> tf.train.Example:
    """Encodes one delta ink ([n, 3] float32) and its drawing's metadata."""
    ink = np.asarray(ink, np.float32)
    feature = {
        "ink": tf.train.Feature(float_list=tf.train.FloatList(value=ink.ravel())),
        "shape": _int64(ink.shape),
        "class_index": _int64([class_index]),
        "key_id": _int64([key_id]),
        "word": _bytes(word.encode("utf-8")),
        "countrycode": _bytes(countrycode.encode("utf-8")),
        "recognized": _int64([int(recognized)]),
        "timestamp": _int64([timestamp]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def image_example(image: np.ndarray, class_index: int, key_id: int, word: str) -> tf.train.Example:
    """Encodes one 28x28 uint8 bitmap."""
    pixels = np.asarray(image, np.uint8).reshape(BITMAP_SIZE * BITMAP_SIZE)
    feature = {
        "image": _bytes(pixels.tobytes()),
        "class_index": _int64([class_index]),
        "key_id": _int64([key_id]),
        "word": _bytes(word.encode("utf-8")),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse_stroke_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized stroke example; `ink` comes back as float32 [n, 3]."""
    parsed = tf.io.parse_single_example(serialized, STROKE_FEATURES)
    parsed["ink"] = tf.reshape(tf.sparse.to_dense(parsed["ink"]), parsed["shape"])
    return parsed


def parse_image_example(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """Parses one serialized image example; `image` comes back as uint8 [28, 28]."""
    parsed = tf.io.parse_single_example(serialized, IMAGE_FEATURES)
    pixels = tf.io.decode_raw(parsed["image"], tf.uint8)
    parsed["image"] = tf.reshape(pixels, [BITMAP_SIZE, BITMAP_SIZE])
    return parsed
