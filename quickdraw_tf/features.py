"""The ONE tf.train.Example schema: the Beam writer, the tf.data reader and the TFDS metadata derive from it.

Stroke examples keep the TF RNN tutorial's three features (`ink`, `shape`, `class_index`) so the
tutorial's readers still work, plus the drawing's metadata. Image examples (numpy bitmaps) hold
the 28x28 uint8 pixels row-major in one bytes feature.

`FEATURE_TABLE` (plain Python, no TensorFlow) declares each kind's features once; from it derive the
tf.io parse specs `STROKE_FEATURES` / `IMAGE_FEATURES` (built, and TensorFlow imported, on first
access) and the TFDS features.json (beam_jobs/tfds_metadata.py). The examples are encoded by
`serialize_stroke_example` / `serialize_image_example`, which write the protobuf wire format directly
(byte for byte what TensorFlow's own serializer gives for the same tf.train.Example,
tests/test_features.py), so the Beam workers need no TensorFlow.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

BITMAP_SIZE = 28


class Feature(NamedTuple):
    """One feature of an example: how it is stored, parsed and described to TFDS."""

    name: str
    dtype: str  # "int64", "float32" or "string": the same name in tf.io and in TFDS's features.json
    shape: tuple  # the parsed shape; None: any length (stored as one flat list: a tf.io.VarLenFeature)
    text: bool  # a UTF-8 string (TFDS Text) rather than raw bytes
    description: str


def _int64(name: str, description: str) -> Feature:
    return Feature(name, "int64", (1,), False, description)


def _text(name: str, description: str) -> Feature:
    return Feature(name, "string", (), True, description)


FEATURE_TABLE: dict[str, tuple[Feature, ...]] = {
    "strokes": (
        Feature("ink", "float32", (None, 3), False, "[n, 3] rows (dx, dy, end_of_stroke), stored flat"),
        Feature("shape", "int64", (2,), False, "the ink's shape [n, 3]"),
        _int64("class_index", "line number (from 0) of the word in classes.txt"),
        _int64("key_id", "the drawing's unique id"),
        _text("word", "the class word"),
        _text("countrycode", "two-letter country code of the player"),
        _int64("recognized", "1 if the game recognized the drawing, else 0"),
        _int64("timestamp", "seconds since the epoch when the drawing was made"),
    ),
    "images": (
        Feature("image", "string", (), False, f"{BITMAP_SIZE}x{BITMAP_SIZE} uint8 pixels, row-major bytes"),
        _int64("class_index", "line number (from 0) of the word in classes.txt"),
        _int64("key_id", "the drawing's unique id (derived from file and row for bitmaps)"),
        _text("word", "the class word"),
    ),
}


def parse_spec(kind: str) -> dict:
    """The tf.io.parse_single_example spec of a kind's examples, from FEATURE_TABLE."""
    import tensorflow as tf

    spec = {}
    for feature in FEATURE_TABLE[kind]:
        dtype = tf.dtypes.as_dtype(feature.dtype)
        if None in feature.shape:
            spec[feature.name] = tf.io.VarLenFeature(dtype)
        else:
            spec[feature.name] = tf.io.FixedLenFeature(list(feature.shape), dtype)
    return spec


def _stroke_features() -> dict:
    return parse_spec("strokes")


def _image_features() -> dict:
    return parse_spec("images")


_LAZY = {"STROKE_FEATURES": _stroke_features, "IMAGE_FEATURES": _image_features}


def _spec(name: str) -> dict:
    return globals()[name] if name in globals() else __getattr__(name)


def __getattr__(name: str):
    # STROKE_FEATURES and IMAGE_FEATURES are built (and TensorFlow imported) on first access.
    if name in _LAZY:
        value = _LAZY[name]()
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ---------------------------------------------------------------------------------------------------
# The protobuf wire format of tf.train.Example, written directly (no TensorFlow, no protobuf classes):
#   Example  { Features features = 1; }            Features { map<string, Feature> feature = 1; }
#   map entry { string key = 1; Feature value = 2; }  (deterministic: entries sorted by key)
#   Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
#   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
#   Int64List { repeated int64 value = 1 [packed]; }  (negative int64 varints take 10 bytes)

_FLOAT32_LE = np.dtype("<f4")
_ONE_BYTE = [bytes((value,)) for value in range(128)]


def _varint(value: int) -> bytes:
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _bytes_feature(value: bytes) -> bytes:
    return _delimited(b"\x0a", _delimited(b"\x0a", value))  # Feature.bytes_list { value }


def _int64_feature(values) -> bytes:
    packed = b"".join([_varint(int(value)) for value in values])
    # A packed list of up to 12 varints (at most 120 bytes) has one-byte lengths.
    return bytes((0x1A, len(packed) + 2, 0x0A, len(packed))) + packed if packed else b"\x1a\x00"


def _float_feature(raw_le_float32: bytes) -> bytes:
    return _delimited(b"\x12", _delimited(b"\x0a", raw_le_float32) if raw_le_float32 else b"")


def _entry_prefix(name: str) -> bytes:
    """A map entry's start: its key field, then the tag of its value (a Feature) field."""
    return _delimited(b"\x0a", name.encode("utf-8")) + b"\x12"


_STROKE_NAMES = ("class_index", "countrycode", "ink", "key_id", "recognized", "shape", "timestamp", "word")
_IMAGE_NAMES = ("class_index", "image", "key_id", "word")
_PREFIX = {name: _entry_prefix(name) for name in _STROKE_NAMES + _IMAGE_NAMES}


def _example(names: tuple[str, ...], values: tuple[bytes, ...]) -> bytes:
    """An Example of the features `names` (sorted: the deterministic map order) with these Features."""
    entries = []
    for name, feature in zip(names, values, strict=True):
        body = _PREFIX[name] + _varint(len(feature)) + feature
        entries.append(b"\x0a" + _varint(len(body)) + body)
    return _delimited(b"\x0a", b"".join(entries))


def serialize_stroke_example(
    ink: np.ndarray,
    class_index: int,
    key_id: int,
    word: str,
    countrycode: str = "",
    recognized: bool = True,
    timestamp: int = 0,
) -> bytes:
    """A stroke tf.train.Example's bytes as TensorFlow serializes them (deterministic=True), without TF."""
    ink = np.asarray(ink, np.float32)
    return _example(
        _STROKE_NAMES,
        (
            _int64_feature((class_index,)),
            _bytes_feature(countrycode.encode("utf-8")),
            _float_feature(np.ascontiguousarray(ink, _FLOAT32_LE).tobytes()),
            _int64_feature((key_id,)),
            _int64_feature((int(recognized),)),
            _int64_feature(ink.shape),
            _int64_feature((timestamp,)),
            _bytes_feature(word.encode("utf-8")),
        ),
    )


def serialize_image_example(image: np.ndarray, class_index: int, key_id: int, word: str) -> bytes:
    """An image tf.train.Example's bytes as TensorFlow serializes them (deterministic=True), without TF."""
    pixels = np.asarray(image, np.uint8).reshape(BITMAP_SIZE * BITMAP_SIZE)
    return _example(
        _IMAGE_NAMES,
        (
            _int64_feature((class_index,)),
            _bytes_feature(pixels.tobytes()),
            _int64_feature((key_id,)),
            _bytes_feature(word.encode("utf-8")),
        ),
    )


def parse_stroke_example(serialized):
    """Parses one serialized stroke example; `ink` comes back as float32 [n, 3]."""
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, _spec("STROKE_FEATURES"))
    parsed["ink"] = tf.reshape(tf.sparse.to_dense(parsed["ink"]), parsed["shape"])
    return parsed


def parse_image_example(serialized):
    """Parses one serialized image example; `image` comes back as uint8 [28, 28]."""
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, _spec("IMAGE_FEATURES"))
    pixels = tf.io.decode_raw(parsed["image"], tf.uint8)
    parsed["image"] = tf.reshape(pixels, [BITMAP_SIZE, BITMAP_SIZE])
    return parsed
