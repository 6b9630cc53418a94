"""The hand-written Example encoder against TensorFlow's own protobuf serializer, on real drawings."""

import numpy as np
import tensorflow as tf

from quickdraw_tf import features, ink
from tests.conftest import sample_drawings


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
