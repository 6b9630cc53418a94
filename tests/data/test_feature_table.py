"""quickdraw_tf.data.features.FEATURE_TABLE: the one declaration the parse specs and the encoders agree
with."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf.data import features, layout
from quickdraw_tf.training import example_parsing

# The tf.io specs as they were written by hand before the table: the reference the derived ones must equal.
HAND_WRITTEN = {
    "strokes": {
        "ink": tf.io.VarLenFeature(tf.float32),
        "shape": tf.io.FixedLenFeature([2], tf.int64),
        "class_index": tf.io.FixedLenFeature([1], tf.int64),
        "key_id": tf.io.FixedLenFeature([1], tf.int64),
        "word": tf.io.FixedLenFeature([], tf.string),
        "countrycode": tf.io.FixedLenFeature([], tf.string),
        "recognized": tf.io.FixedLenFeature([1], tf.int64),
        "timestamp": tf.io.FixedLenFeature([1], tf.int64),
    },
    "images": {
        "image": tf.io.FixedLenFeature([], tf.string),
        "class_index": tf.io.FixedLenFeature([1], tf.int64),
        "key_id": tf.io.FixedLenFeature([1], tf.int64),
        "word": tf.io.FixedLenFeature([], tf.string),
    },
}


def test_the_table_covers_each_kind():
    assert tuple(features.FEATURE_TABLE) == layout.KINDS


@pytest.mark.parametrize("kind", layout.KINDS)
def test_parse_specs_derive_from_the_table(kind):
    assert example_parsing.parse_spec(kind) == HAND_WRITTEN[kind]
    module_spec = example_parsing.STROKE_FEATURES if kind == "strokes" else example_parsing.IMAGE_FEATURES
    assert module_spec == HAND_WRITTEN[kind]


def test_encoded_examples_hold_exactly_the_table_features():
    ink = np.array([[1.5, -2, 0], [3, 4, 1]], np.float32)
    encoded = {
        "strokes": features.serialize_stroke_example(ink, 2, 99, "pig", "AU", True, 1490000000),
        "images": features.serialize_image_example(np.zeros((28, 28), np.uint8), 0, 7, "eye"),
    }
    for kind, serialized in encoded.items():
        names = set(tf.train.Example.FromString(serialized).features.feature)
        assert names == {feature.name for feature in features.FEATURE_TABLE[kind]}, kind
        parsed = tf.io.parse_single_example(serialized, example_parsing.parse_spec(kind))
        for feature in features.FEATURE_TABLE[kind]:
            value = parsed[feature.name]
            if isinstance(value, tf.SparseTensor):
                value = tf.reshape(tf.sparse.to_dense(value), [-1, feature.shape[1]])
            assert value.dtype.name == feature.dtype, feature.name
            assert all(d is None or d == n for d, n in zip(feature.shape, value.shape, strict=True)), (
                feature.name
            )
    stroke = tf.io.parse_single_example(encoded["strokes"], example_parsing.STROKE_FEATURES)
    np.testing.assert_array_equal(tf.sparse.to_dense(stroke["ink"]).numpy().reshape(-1, 3), ink)
