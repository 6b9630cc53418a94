"""Every Quick, Draw! file format, read into `Drawing` records and written back.

Reading takes two steps so that a Beam job can reject bad records one at a time instead of failing
a whole file: `read_source_records` splits an open binary file into undecoded `SourceRecord`s and
never raises on bad content (whatever it cannot split becomes a record that parsing rejects), then
`parse_record` decodes and validates one record, raising `InvalidRecord(reason, message)`.
`iter_drawings` does both for a local file and stops at the first bad record.

One module per family: text.py (ndjson, csv), binary.py (bin), arrays.py (npy, bitmap_raw, npz); each
declares its formats (extensions, splitter, parser) in its FORMATS, and this module's registry dispatches
to them. records.py holds what they share (SourceRecord, names from a file path), check.py the one
structural check every parsed drawing goes through (validate).

FORMATS:
  ndjson      simplified or raw ndjson, one JSON object per line; raw ([xs, ys, ts] strokes) or
              simplified ([xs, ys]) is told per record, so one file may mix both.
  bin         the official binary format (quickdraw-dataset examples/binary_file_parser.py). It has no
              sync marker: after a corrupt count or header the rest of the file is one unreadable_tail
              record (quickdraw_tf.data.bin_split).
  csv         Kaggle "quickdraw-doodle-recognition": the train layout
              countrycode,drawing,key_id,recognized,timestamp,word, or the test layout
              key_id,countrycode,drawing (no word: word "", recognized True, timestamp 0).
              Columns are taken by position.
              Line 1 is skipped when it is exactly one of these two headers; any other line 1 is read as
              data, so header-less files work and a header of another layout is rejected as invalid_csv.
  npy         numpy_bitmap: uint8 rows of 784 pixels, shaped (N, 784), (N, 1, 784) or (N, 28, 28).
              Rows are read until the data ends (the header's row count is not trusted); a file whose
              header is unreadable or not such rows becomes one record, rejected as bad_image.
  bitmap_raw  numpy_bitmap rows without the .npy header, 784 bytes each; never guessed from a name.
  npz         sketch-rnn: np.savez_compressed of "train", "valid", "test" object arrays of int16 stroke-3.
              Object arrays are pickled; they are read by quickdraw_tf.data.safe_npz, whose unpickler builds
              nothing but numpy arrays of numbers (never allow_pickle=True): a crafted file runs no code.
              An archive that cannot be read, or holds anything else, becomes one record, rejected as
              truncated_record. Values outside int16 are rejected as bad_coordinate (never wrapped).

Limits (quickdraw_tf.data.limits): a line or binary record over max_record_bytes is rejected as too_large
before it is decoded; so are drawings of too many points; |x|, |y| over 1e6 are bad_coordinate. Words
with control characters, or blank, are bad_field (drawing.word_problem); the writers refuse them.

What a format does not store:
  word       bin, npy, bitmap_raw and npz take it from the file name (word_from_path).
  key_id     npy, bitmap_raw and npz derive a stable 63-bit id from the file's base name and the record's
             place in it (derived_key_id), so a re-run gives the same ids.
  timestamp  Drawing keeps whole seconds (the binary format's resolution): the fraction of a text timestamp
             is dropped when read, and written back as ".000000".
  countrycode, recognized, timestamp  bitmaps and npz have none: "", True, 0.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import BinaryIO

from quickdraw_tf.data import bin_split, limits
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.data.formats import arrays, binary, text
from quickdraw_tf.data.formats.arrays import NPZ_SPLITS, write_npz
from quickdraw_tf.data.formats.binary import write_bin
from quickdraw_tf.data.formats.check import SIMPLIFIED_RANGE, validate
from quickdraw_tf.data.formats.records import (
    BITMAP_PIXELS,
    BITMAP_SHAPE,
    COMPRESSION_SUFFIX,
    MAX_KEY_ID,
    Format,
    SourceRecord,
    basename,
    derived_key_id,
    without_compression,
    word_from_path,
)
from quickdraw_tf.data.formats.text import format_timestamp, parse_timestamp, write_csv, write_ndjson

__all__ = [
    "BITMAP_PIXELS", "BITMAP_SHAPE", "FORMATS", "MAX_KEY_ID", "NPZ_SPLITS", "SIMPLIFIED_RANGE",
    "SourceRecord", "derived_key_id", "format_for_path", "format_timestamp", "iter_drawings",
    "parse_record", "parse_timestamp", "read_source_records", "validate", "word_from_path", "write_bin",
    "write_csv", "write_ndjson", "write_npz",
]  # fmt: skip

# The registry: a format is one entry of its family's FORMATS (text, binary, arrays) and its name here,
# in the order error messages and flags list them.
FORMATS = ("ndjson", "bin", "csv", "npy", "bitmap_raw", "npz")
_REGISTRY: dict[str, Format] = {**text.FORMATS, **binary.FORMATS, **arrays.FORMATS}
_EXTENSIONS = {extension: name for name in FORMATS for extension in _REGISTRY[name].extensions}


def format_for_path(path: str, override: str | None = None) -> str:
    """The format of a file from its extension (a trailing .gz is ignored); `override` wins.

    bitmap_raw files end in .bin like the stroke binary format, so they are only read as such by override.
    """
    if override is not None:
        if override not in FORMATS:
            raise ValueError(f"unknown format {override!r}; expected one of {', '.join(FORMATS)}")
        return override
    name = without_compression(basename(path))
    extension = "." + name.rsplit(".", 1)[1].lower() if "." in name else ""
    if extension not in _EXTENSIONS:
        raise ValueError(
            f"cannot tell the format of {path!r} from its extension {extension or '(none)'}: "
            f"expected one of {', '.join(_EXTENSIONS)}, or name a format ({', '.join(FORMATS)})"
        )
    return _EXTENSIONS[extension]


def read_source_records(
    fileobj: BinaryIO, source: str, fmt: str, max_record_bytes: int = limits.MAX_RECORD_BYTES
) -> Iterator[SourceRecord]:
    """Splits an open binary file into undecoded records, named `source` in each of them.

    A line or binary record longer than max_record_bytes is not kept whole (see SourceRecord.skipped).
    """
    if fmt not in _REGISTRY:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return _REGISTRY[fmt].split(fileobj, source, max_record_bytes)


def parse_record(record: SourceRecord) -> Drawing:
    """Decodes and validates one record; raises InvalidRecord(reason, message) if it is bad."""
    if record.format not in _REGISTRY:
        raise ValueError(f"unknown format {record.format!r}; expected one of {', '.join(FORMATS)}")
    if record.skipped:  # decided before any decoding: the reader kept only the record's start
        raise _skipped_rejection(record)
    return _REGISTRY[record.format].parse(record)


def _skipped_rejection(record: SourceRecord) -> InvalidRecord:
    kept = len(record.payload)
    if record.format == "bin" and kept >= bin_split.HEADER.size:
        problem = bin_split.header_problem(bytes(record.payload[: bin_split.HEADER.size]))
        if problem:
            return InvalidRecord(
                "unreadable_tail",
                f"no record can start at byte {record.position} ({problem}): the binary format has no "
                f"sync marker, so the {kept + record.skipped:,} bytes from there to the end were not read",
            )
    return InvalidRecord(
        "too_large", f"{kept + record.skipped:,} bytes, over the {kept:,}-byte cap (max_record_bytes)"
    )


def iter_drawings(path: str, fmt: str | None = None) -> Iterator[Drawing]:
    """Every drawing of a local file (gzip if it ends in .gz); raises InvalidRecord at the first bad one."""
    fmt = format_for_path(path, fmt)
    opener = gzip.open if path.lower().endswith(COMPRESSION_SUFFIX) else open
    with opener(path, "rb") as fileobj:
        for record in read_source_records(fileobj, path, fmt):
            yield parse_record(record)
