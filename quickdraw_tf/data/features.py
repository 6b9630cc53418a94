"""The ONE tf.train.Example schema: the Beam writer, the tf.data reader and the TFDS metadata derive from it.

Stroke examples keep the TF RNN tutorial's three features (`ink`, `shape`, `class_index`) so the
tutorial's readers still work, plus the drawing's metadata. Image examples (numpy bitmaps) hold
the 28x28 uint8 pixels row-major in one bytes feature.

`FEATURE_TABLE` (plain Python, no TensorFlow) declares each kind's features once; from it derive the
tf.io parse specs (quickdraw_tf/training/example_parsing.py) and the TFDS features.json
(beam_jobs/tfds_metadata.py). The examples are encoded by
`serialize_stroke_example` / `serialize_image_example`, which write the protobuf wire format directly
(byte for byte what TensorFlow's own serializer gives for the same tf.train.Example,
tests/data/test_features.py), so the Beam workers need no TensorFlow.
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


# ---------------------------------------------------------------------------------------------------
# The protobuf wire format of tf.train.Example, written directly (no TensorFlow, no protobuf classes):
#   Example  { Features features = 1; }            Features { map<string, Feature> feature = 1; }
#   map entry { string key = 1; Feature value = 2; }  (deterministic: entries sorted by key)
#   Feature  { oneof { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
#   BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
#   Int64List { repeated int64 value = 1 [packed]; }  (negative int64 varints take 10 bytes)
#
# class_index sorts first in both schemas, so an Example is its class_index entry followed by the
# entries of every other feature (the "body"): a job can encode a drawing's body before it knows its
# class, and `example_with_class_index` completes it with one concatenation. The encoder works a field
# at a time, not a value at a time: varints come from tables of 14-bit groups, and the entries that
# repeat (words, country codes, recognized, class indices) are built once and reused.

_FLOAT32_LE = np.dtype("<f4")
_GROUP_BITS = 14
_GROUP = 1 << _GROUP_BITS
_MASK = _GROUP - 1


def _slow_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_VARINT = [_slow_varint(value) for value in range(_GROUP)]  # a whole varint: 1 or 2 bytes
# A 14-bit group that more groups follow: two bytes, both with the continuation bit.
_GROUP_BYTES = [bytes(((value & 0x7F) | 0x80, (value >> 7) | 0x80)) for value in range(_GROUP)]


def _varint(value: int) -> bytes:
    # Unrolled by 14-bit groups: a key_id (~2**52) takes 4 table look-ups instead of 8 loop turns.
    if 0 <= value < _GROUP:
        return _SMALL_VARINT[value]
    if value < 0:
        value += 1 << 64
    if value < 1 << 28:
        return _GROUP_BYTES[value & _MASK] + _SMALL_VARINT[value >> 14]
    if value < 1 << 42:
        return _GROUP_BYTES[value & _MASK] + _GROUP_BYTES[value >> 14 & _MASK] + _SMALL_VARINT[value >> 28]
    if value < 1 << 56:  # the datasets' key_ids (about 2**52)
        low = _GROUP_BYTES[value & _MASK] + _GROUP_BYTES[value >> 14 & _MASK]
        return low + _GROUP_BYTES[value >> 28 & _MASK] + _SMALL_VARINT[value >> 42]
    parts = []
    while value >= _GROUP:
        parts.append(_GROUP_BYTES[value & _MASK])
        value >>= _GROUP_BITS
    parts.append(_SMALL_VARINT[value])
    return b"".join(parts)


def _entry_prefix(name: str) -> bytes:
    """A map entry's start: its key field, then the tag of its value (a Feature) field."""
    key = name.encode("utf-8")
    return b"\x0a" + _varint(len(key)) + key + b"\x12"


def _entry(name: str, feature: bytes) -> bytes:
    """One map entry (name -> Feature) of Features, with its own tag and length."""
    body = _PREFIX[name] + _varint(len(feature)) + feature
    return b"\x0a" + _varint(len(body)) + body


def _bytes_entry(name: str, value: bytes) -> bytes:
    inner = b"\x0a" + _varint(len(value)) + value  # BytesList { value }
    return _entry(name, b"\x0a" + _varint(len(inner)) + inner)  # Feature.bytes_list


def _int64_entry(name: str, *values: int) -> bytes:
    packed = b"".join([_varint(value) for value in values])
    heads = _INT64_HEADS[name]
    return (heads[len(packed)] if len(packed) < len(heads) else _int64_head(name, len(packed))) + packed


def _ink_entry_head(raw_size: int) -> bytes:
    """The "ink" entry up to its float bytes (raw_size of them), which are joined once, with the rest."""
    inner_head = b"\x0a" + _varint(raw_size) if raw_size else b""  # FloatList { packed values }
    feature_head = b"\x12" + _varint(len(inner_head) + raw_size) + inner_head
    body_head = _PREFIX["ink"] + _varint(len(feature_head) + raw_size) + feature_head
    return b"\x0a" + _varint(len(body_head) + raw_size) + body_head


_STROKE_NAMES = ("class_index", "countrycode", "ink", "key_id", "recognized", "shape", "timestamp", "word")
_IMAGE_NAMES = ("class_index", "image", "key_id", "word")
_PREFIX = {name: _entry_prefix(name) for name in _STROKE_NAMES + _IMAGE_NAMES}
_MAX_PACKED_SHORT = 20  # int64 entries of up to this many packed bytes get their heads from a table


def _int64_head(name: str, size: int) -> bytes:
    """An int64 entry up to its packed values (size bytes): the same for every value of that size."""
    inner_head = b"\x0a" + _varint(size) if size else b""
    feature_head = b"\x1a" + _varint(len(inner_head) + size) + inner_head
    body_head = _PREFIX[name] + _varint(len(feature_head) + size) + feature_head
    return b"\x0a" + _varint(len(body_head) + size) + body_head


_INT64_HEADS = {name: [_int64_head(name, size) for size in range(_MAX_PACKED_SHORT + 1)] for name in _PREFIX}
_KEY_ID_HEADS, _TIMESTAMP_HEADS = _INT64_HEADS["key_id"], _INT64_HEADS["timestamp"]


class _Entries(dict):
    """Entries built once per key (a word, a country code, an ink size...) and then looked up in C;
    cleared when full, as a bound on memory (the data have a few hundred distinct keys of each)."""

    LIMIT = 4096

    def __init__(self, build):
        super().__init__()
        self._build = build

    def __missing__(self, key):
        if len(self) >= self.LIMIT:
            self.clear()
        value = self[key] = self._build(key)
        return value


_WORD = _Entries(lambda word: _bytes_entry("word", word.encode("utf-8")))
_COUNTRY = _Entries(lambda code: _bytes_entry("countrycode", code.encode("utf-8")))
_RECOGNIZED = _Entries(lambda recognized: _int64_entry("recognized", recognized))
_SHAPE = _Entries(lambda shape: _int64_entry("shape", *shape))
_INK_HEAD = _Entries(_ink_entry_head)  # by size of the float bytes
_CLASS_INDEX = _Entries(lambda class_index: _int64_entry("class_index", class_index))


def stroke_example_body(
    ink: np.ndarray,
    key_id: int,
    word: str,
    countrycode: str = "",
    recognized: bool = True,
    timestamp: int = 0,
) -> bytes:
    """Every entry of a stroke Example but class_index, in the deterministic order (see above)."""
    if type(ink) is not np.ndarray or ink.dtype != _FLOAT32_LE:
        ink = np.asarray(ink, np.float32).astype(_FLOAT32_LE)
    raw = ink.tobytes()  # C order, whatever the array's layout
    key_id, timestamp = _varint(int(key_id)), _varint(int(timestamp))
    return b"".join(
        (
            _COUNTRY[countrycode],
            _INK_HEAD[len(raw)],
            raw,
            _KEY_ID_HEADS[len(key_id)],
            key_id,
            _RECOGNIZED[int(recognized)],
            _SHAPE[ink.shape],
            _TIMESTAMP_HEADS[len(timestamp)],
            timestamp,
            _WORD[word],
        )
    )


def image_example_body(image: np.ndarray, key_id: int, word: str) -> bytes:
    """Every entry of an image Example but class_index, in the deterministic order (see above)."""
    pixels = np.asarray(image, np.uint8).reshape(BITMAP_SIZE * BITMAP_SIZE)
    key_id = _varint(int(key_id))
    return b"".join(
        (_bytes_entry("image", pixels.tobytes()), _KEY_ID_HEADS[len(key_id)], key_id, _WORD[word])
    )


def example_with_class_index(body: bytes, class_index: int) -> bytes:
    """The Example of a body from stroke_example_body / image_example_body and its class_index."""
    entry = _CLASS_INDEX[int(class_index)]
    return b"".join((b"\x0a", _varint(len(entry) + len(body)), entry, body))


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
    body = stroke_example_body(ink, key_id, word, countrycode, recognized, timestamp)
    return example_with_class_index(body, class_index)


def serialize_image_example(image: np.ndarray, class_index: int, key_id: int, word: str) -> bytes:
    """An image tf.train.Example's bytes as TensorFlow serializes them (deterministic=True), without TF."""
    return example_with_class_index(image_example_body(image, key_id, word), class_index)
