"""The hand-written Example encoder against TensorFlow's own protobuf serializer, on real drawings."""

import numpy as np
import tensorflow as tf

from quickdraw_tf.data import features, ink
from tests.sample import sample_drawings


def _tf_stroke_example(ink_rows, class_index, key_id, word, countrycode, recognized, timestamp):
    """The schema built field by field with TensorFlow's protobuf classes: the reference."""
    example = tf.train.Example()
    feature = example.features.feature
    feature["ink"].float_list.SetInParent()  # present even when empty
    feature["ink"].float_list.value.extend(np.asarray(ink_rows, np.float32).ravel().tolist())
    feature["shape"].int64_list.value.extend(np.shape(ink_rows))
    feature["class_index"].int64_list.value.append(class_index)
    feature["key_id"].int64_list.value.append(key_id)
    feature["word"].bytes_list.value.append(word.encode("utf-8"))
    feature["countrycode"].bytes_list.value.append(countrycode.encode("utf-8"))
    feature["recognized"].int64_list.value.append(int(recognized))
    feature["timestamp"].int64_list.value.append(timestamp)
    return example.SerializeToString(deterministic=True)


def test_stroke_examples_are_the_bytes_tensorflow_writes():
    records = sample_drawings(per_class=3)
    cases = [
        (
            ink.to_ink(r["drawing"]),
            i,
            int(r["key_id"]),
            r["word"],
            r["countrycode"],
            r["recognized"],
            1490000000 + i,
        )
        for i, r in enumerate(records)
    ]
    cases.append((np.zeros((0, 3), np.float32), 0, 2**63 - 1, "", "", False, 0))  # empty ink, largest key_id
    for case in cases:
        assert features.serialize_stroke_example(*case) == _tf_stroke_example(*case)


def test_image_examples_are_the_bytes_tensorflow_writes():
    bitmap = np.arange(784, dtype=np.uint8).reshape(28, 28)
    example = tf.train.Example()
    feature = example.features.feature
    feature["image"].bytes_list.value.append(bitmap.tobytes())
    feature["class_index"].int64_list.value.append(7)
    feature["key_id"].int64_list.value.append(12345678901)
    feature["word"].bytes_list.value.append(b"eye")
    expected = example.SerializeToString(deterministic=True)
    assert features.serialize_image_example(bitmap, 7, 12345678901, "eye") == expected


# A varint's length changes at every 7 bits (and the 14-bit look-up tables at every 14): values on both sides.
VARINT_EDGES = sorted({max(0, (1 << bits) + delta) for bits in range(0, 64, 7) for delta in (-1, 0, 1)})


def test_body_and_class_index_are_the_bytes_tensorflow_writes():
    records = sample_drawings(per_class=2)
    cases = [
        (
            ink.to_ink(r["drawing"], "per_axis"),
            i,
            int(r["key_id"]),
            r["word"],
            r["countrycode"],
            bool(i % 2),
            0,
        )
        for i, r in enumerate(records)
    ]
    big_ink = ink.to_ink(records[0]["drawing"] * 40)  # > 16 KiB of floats: multi-byte lengths everywhere
    cases.append((big_ink, 344, 2**63 - 1, "The Eiffel Tower", "GB", True, 2**40))
    cases.append((np.zeros((0, 3), np.float32), 0, 0, "", "", False, 0))
    small = cases[0][0]
    for edge in VARINT_EDGES:  # every varint boundary, in each integer field
        if edge < 2**63:
            cases.append((small, edge, edge, "pig", "", True, edge))
    cases.append((small, -1, 5, "pig", "US", True, 1))  # a negative int64: a 10-byte varint
    for case in cases:
        ink_rows, class_index, rest = case[0], case[1], case[2:]
        body = features.stroke_example_body(ink_rows, *rest)
        assert features.example_with_class_index(body, class_index) == _tf_stroke_example(*case)
        assert features.serialize_stroke_example(*case) == _tf_stroke_example(*case)
    # The same bytes whatever array the ink comes in (float64, a list, non-contiguous, big-endian).
    reference = features.stroke_example_body(small, 7, "pig")
    for variant in (small.astype(np.float64), small.tolist(), np.asfortranarray(small), small.astype(">f4")):
        assert features.stroke_example_body(variant, 7, "pig") == reference


def test_image_body_and_class_index_are_the_bytes_tensorflow_writes():
    rng = np.random.default_rng(3)
    for class_index, key_id, word in [
        (0, 0, "eye"),
        (300, 2**63 - 1, "The Eiffel Tower"),
        (2**14, 2**14, "é"),
    ]:
        bitmap = rng.integers(0, 256, (28, 28), dtype=np.uint8)
        example = tf.train.Example()
        feature = example.features.feature
        feature["image"].bytes_list.value.append(bitmap.tobytes())
        feature["class_index"].int64_list.value.append(class_index)
        feature["key_id"].int64_list.value.append(key_id)
        feature["word"].bytes_list.value.append(word.encode("utf-8"))
        expected = example.SerializeToString(deterministic=True)
        body = features.image_example_body(bitmap, key_id, word)
        assert features.example_with_class_index(body, class_index) == expected
        assert features.serialize_image_example(bitmap, class_index, key_id, word) == expected
