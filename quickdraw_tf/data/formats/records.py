"""What every format module shares: the undecoded record, a format's entry in the registry, and the
facts a file name gives (its word, a derived key_id)."""

from __future__ import annotations

import hashlib
import re
import reprlib
import urllib.parse
from collections.abc import Callable, Iterator
from typing import BinaryIO, NamedTuple

import numpy as np

from quickdraw_tf.data import features
from quickdraw_tf.data.drawing import Drawing, word_problem

BITMAP_SHAPE = (features.BITMAP_SIZE, features.BITMAP_SIZE)
BITMAP_PIXELS = BITMAP_SHAPE[0] * BITMAP_SHAPE[1]
MAX_KEY_ID = 2**63 - 1  # key_id goes into an int64 feature
COMPRESSION_SUFFIX = ".gz"
# Prefixes of the official file names (full_binary_cat.bin, full_numpy_bitmap_cat.npy, sketchrnn_cat.npz).
_WORD_PREFIXES = ("full_binary_", "full_numpy_bitmap_", "full_simplified_", "full_raw_", "sketchrnn_")

short = reprlib.Repr()  # values quoted in error messages, cut to 40 characters
short.maxstring = short.maxother = short.maxlong = 40


class SourceRecord(NamedTuple):
    """One undecoded record and where it came from.

    `position` is the 1-based line number (ndjson, csv), the byte offset (bin), the 0-based row index
    (npy, bitmap_raw) or the 0-based index within the split (npz). `payload` is the line's bytes
    without the line break, the record's bytes, a row of pixels, or a stroke-3 array.
    """

    source: str
    position: int
    payload: bytes | np.ndarray
    format: str
    split: str = ""  # npz only: train, valid or test
    # Bytes of the record the reader did not keep: a line or binary record over the byte cap (payload: its
    # first max_record_bytes), or a binary file's unreadable tail (payload: its first KiB). Both rejected.
    skipped: int = 0


class Format(NamedTuple):
    """One format in the registry (formats/__init__.py): the file extensions it is told by, how a file
    splits into records (never raising on bad content) and how one record parses (raising InvalidRecord)."""

    extensions: tuple[str, ...]
    split: Callable[[BinaryIO, str, int], Iterator[SourceRecord]]  # (file, source name, max_record_bytes)
    parse: Callable[[SourceRecord], Drawing]


def basename(path: str) -> str:
    # Beam paths may be URLs (gs://bucket/cat.bin), so split on either separator rather than use os.path.
    return re.split(r"[/\\]", path)[-1]


def without_compression(name: str) -> str:
    return name[: -len(COMPRESSION_SUFFIX)] if name.lower().endswith(COMPRESSION_SUFFIX) else name


def word_from_path(path: str) -> str:
    """The category of a file that does not store it: the file name without extension and known prefixes.

    "cat.bin", "full_binary_cat.bin", "full_numpy_bitmap_cat.npy" and "sketchrnn_cat.npz" all give "cat";
    URL escapes are undone ("The%20Eiffel%20Tower.npy"); names of the form "my.<word>.<anything>" (the
    bitmap_raw files in SOURCES.md, "my.cat.test.data.4000.images.starting.at.0.bin") give <word>.
    """
    name = urllib.parse.unquote(without_compression(basename(path)))
    tokens = name.split(".")
    if tokens[0] == "my" and len(tokens) > 2:
        return tokens[1]
    stem = name.rsplit(".", 1)[0]
    for prefix in _WORD_PREFIXES:
        if stem.startswith(prefix):
            return stem[len(prefix) :]
    return stem


def derived_key_id(*parts: object) -> int:
    """A stable key_id for formats without one: the first 8 bytes of sha256("part/part/..."), 63 bits.

    Readers pass (file base name, row) for bitmaps and (file base name, split, index) for npz.
    """
    digest = hashlib.sha256("/".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & MAX_KEY_ID


def json_type(value: object) -> str:
    names = {
        dict: "object",
        list: "array",
        tuple: "array",
        str: "string",
        bool: "boolean",
        type(None): "null",
    }
    return names.get(type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def require_strokes(drawing: Drawing) -> None:
    if not drawing.strokes:
        raise ValueError(f"drawing {drawing.key_id} has no strokes (a bitmap cannot be written as strokes)")
    # Refused here rather than written: the readers reject such words (a newline would also split a CSV
    # record over two lines), so every file a writer produces reads back.
    problem = word_problem(drawing.word)
    if problem:
        raise ValueError(f"drawing {drawing.key_id}: {problem}")
