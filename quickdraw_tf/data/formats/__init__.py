"""Every Quick, Draw! file format, read into `Drawing` records and written back.

Reading takes two steps so that a Beam job can reject bad records one at a time instead of failing
a whole file: `read_source_records` splits an open binary file into undecoded `SourceRecord`s and
never raises on bad content (whatever it cannot split becomes a record that parsing rejects), then
`parse_record` decodes and validates one record, raising `InvalidRecord(reason, message)`.
`iter_drawings` does both for a local file and stops at the first bad record.

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

import calendar
import csv
import datetime
import gzip
import hashlib
import io
import itertools
import json
import math
import re
import reprlib
import struct
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple, TextIO

import numpy as np

from quickdraw_tf.data import bin_split, features, ink, limits, safe_npz
from quickdraw_tf.data.drawing import Drawing, InvalidRecord, word_problem

FORMATS = ("ndjson", "bin", "csv", "npy", "bitmap_raw", "npz")
NPZ_SPLITS = ("train", "valid", "test")
BITMAP_SHAPE = (features.BITMAP_SIZE, features.BITMAP_SIZE)
BITMAP_PIXELS = BITMAP_SHAPE[0] * BITMAP_SHAPE[1]
MAX_KEY_ID = 2**63 - 1  # key_id goes into an int64 feature
SIMPLIFIED_RANGE = (0, 255)

_EXTENSIONS = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".bin": "bin",
    ".csv": "csv",
    ".npy": "npy",
    ".npz": "npz",
}
_COMPRESSION_SUFFIX = ".gz"
# Prefixes of the official file names (full_binary_cat.bin, full_numpy_bitmap_cat.npy, sketchrnn_cat.npz).
_WORD_PREFIXES = ("full_binary_", "full_numpy_bitmap_", "full_simplified_", "full_raw_", "sketchrnn_")
_CSV_TRAIN_COLUMNS = ("countrycode", "drawing", "key_id", "recognized", "timestamp", "word")
_CSV_TEST_COLUMNS = ("key_id", "countrycode", "drawing")
_TIMESTAMP_LAYOUTS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
# What both layouts accept in their most common form (ASCII digits, 2-digit fields, 1-6 fraction digits).
_TIMESTAMP_FAST = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,6})?"
)

_BIN_HEADER = bin_split.HEADER  # key_id, countrycode, recognized, timestamp, n_strokes
_BIN_COUNT = bin_split.COUNT  # n_points, before each stroke's xs and ys bytes
_BIN_MAX_COUNT = 0xFFFF
_MAX_NPY_HEADER_BYTES = 1 << 20
_STROKE3_LIMIT = 2**14 - 1  # keeps first points and deltas inside int16
_INT16_RANGE = (-(2**15), 2**15 - 1)  # what a stroke-3 value read from an .npz may hold

_INT, _INT_OR_FLOAT = {int}, {int, float}

_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = 40


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


# ---------------------------------------------------------------------------------------------------
# File names


def _basename(path: str) -> str:
    # Beam paths may be URLs (gs://bucket/cat.bin), so split on either separator rather than use os.path.
    return re.split(r"[/\\]", path)[-1]


def _without_compression(name: str) -> str:
    return name[: -len(_COMPRESSION_SUFFIX)] if name.lower().endswith(_COMPRESSION_SUFFIX) else name


def format_for_path(path: str, override: str | None = None) -> str:
    """The format of a file from its extension (a trailing .gz is ignored); `override` wins.

    bitmap_raw files end in .bin like the stroke binary format, so they are only read as such by override.
    """
    if override is not None:
        if override not in FORMATS:
            raise ValueError(f"unknown format {override!r}; expected one of {', '.join(FORMATS)}")
        return override
    name = _without_compression(_basename(path))
    extension = "." + name.rsplit(".", 1)[1].lower() if "." in name else ""
    if extension not in _EXTENSIONS:
        raise ValueError(
            f"cannot tell the format of {path!r} from its extension {extension or '(none)'}: "
            f"expected one of {', '.join(_EXTENSIONS)}, or name a format ({', '.join(FORMATS)})"
        )
    return _EXTENSIONS[extension]


def word_from_path(path: str) -> str:
    """The category of a file that does not store it: the file name without extension and known prefixes.

    "cat.bin", "full_binary_cat.bin", "full_numpy_bitmap_cat.npy" and "sketchrnn_cat.npz" all give "cat";
    URL escapes are undone ("The%20Eiffel%20Tower.npy"); names of the form "my.<word>.<anything>" (the
    bitmap_raw files in SOURCES.md, "my.cat.test.data.4000.images.starting.at.0.bin") give <word>.
    """
    name = urllib.parse.unquote(_without_compression(_basename(path)))
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


# ---------------------------------------------------------------------------------------------------
# Splitting files into records (never raises on bad content)


def read_source_records(
    fileobj: BinaryIO, source: str, fmt: str, max_record_bytes: int = limits.MAX_RECORD_BYTES
) -> Iterator[SourceRecord]:
    """Splits an open binary file into undecoded records, named `source` in each of them.

    A line or binary record longer than max_record_bytes is not kept whole (see SourceRecord.skipped).
    """
    splitters = {
        "ndjson": _split_ndjson,
        "bin": _split_bin,
        "csv": _split_csv,
        "npy": _split_npy,
        "bitmap_raw": _split_bitmap_raw,
        "npz": _split_npz,
    }
    if fmt not in splitters:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if fmt in ("ndjson", "csv", "bin"):
        return splitters[fmt](fileobj, source, max_record_bytes)
    return splitters[fmt](fileobj, source)


def _split_ndjson(fileobj: BinaryIO, source: str, max_bytes: int) -> Iterator[SourceRecord]:
    for number, line, skipped in limits.capped_lines(fileobj, max_bytes):
        if line.strip():
            yield SourceRecord(source, number, line, "ndjson", skipped=skipped)


def _split_csv(fileobj: BinaryIO, source: str, max_bytes: int) -> Iterator[SourceRecord]:
    for number, line, skipped in limits.capped_lines(fileobj, max_bytes):
        if number == 1 and not skipped and _is_kaggle_header(line):
            continue
        if line.strip():
            yield SourceRecord(source, number, line, "csv", skipped=skipped)


def _is_kaggle_header(line: bytes) -> bool:
    columns = tuple(line.decode("utf-8-sig", errors="replace").strip().split(","))
    return columns in (_CSV_TRAIN_COLUMNS, _CSV_TEST_COLUMNS)


def _split_bin(fileobj: BinaryIO, source: str, max_bytes: int) -> Iterator[SourceRecord]:
    # No delimiter and no sync marker: quickdraw_tf.data.bin_split walks the counts (and reports an unreadable
    # tail as one record). A record cut short at the end of the file is rejected as truncated_record.
    for position, payload, skipped in bin_split.split(fileobj, max_bytes):
        yield SourceRecord(source, position, payload, "bin", skipped=skipped)


def _read_exactly(fileobj: BinaryIO, size: int) -> bytes:
    """`size` bytes, fewer only at the end of the file (a raw stream may return short reads)."""
    parts, missing = [], size
    while missing > 0 and (part := fileobj.read(missing)):
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)


def _split_rows(fileobj: BinaryIO, source: str, fmt: str) -> Iterator[SourceRecord]:
    """784-pixel rows; a shorter last row (a file cut short) is kept for parse_record to reject."""
    row = 0
    while chunk := _read_exactly(fileobj, 1024 * BITMAP_PIXELS):
        pixels = np.frombuffer(chunk, np.uint8)
        for begin in range(0, len(pixels), BITMAP_PIXELS):
            yield SourceRecord(source, row, pixels[begin : begin + BITMAP_PIXELS], fmt)
            row += 1


def _split_bitmap_raw(fileobj: BinaryIO, source: str) -> Iterator[SourceRecord]:
    return _split_rows(fileobj, source, "bitmap_raw")


def _split_npy(fileobj: BinaryIO, source: str) -> Iterator[SourceRecord]:
    header = _read_npy_header(fileobj)
    try:
        _check_npy_header(header)
    except ValueError:
        # One record for the whole file: parse_record checks the header again and rejects it, with the reason.
        yield SourceRecord(source, 0, header, "npy")
        return
    yield from _split_rows(fileobj, source, "npy")


def _read_npy_header(fileobj: BinaryIO) -> bytes:
    """The magic string, version, header length and header dict of a .npy file, as read."""
    prefix = _read_exactly(fileobj, 10)  # magic (6), version (2), header length (2 bytes in version 1.0)
    if len(prefix) < 10:
        return prefix
    if prefix[6] == 1:
        (length,) = struct.unpack_from("<H", prefix, 8)
    else:  # versions 2.0 and 3.0 store the header length in 4 bytes
        prefix += _read_exactly(fileobj, 2)
        if len(prefix) < 12:
            return prefix
        (length,) = struct.unpack_from("<I", prefix, 8)
    return prefix + _read_exactly(fileobj, min(length, _MAX_NPY_HEADER_BYTES))


def _check_npy_header(header: bytes) -> None:
    """Raises ValueError unless `header` describes C-ordered uint8 rows of 784 pixels."""
    stream = io.BytesIO(header)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(stream)
        else:  # 3.0 differs from 2.0 only in allowing UTF-8 field names, which no bitmap has
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    except Exception as error:  # numpy raises ValueError, SyntaxError, ... on foreign bytes; none may escape
        raise ValueError(f"unreadable .npy header ({error})") from error
    if dtype != np.uint8 or fortran_order or len(shape) < 2 or math.prod(shape[1:]) != BITMAP_PIXELS:
        order = " in Fortran order" if fortran_order else ""
        raise ValueError(
            f"{dtype} array of shape {shape}{order}; expected C-ordered uint8 rows of {BITMAP_PIXELS} pixels"
        )


def _split_npz(fileobj: BinaryIO, source: str) -> Iterator[SourceRecord]:
    data = fileobj.read()  # a zip is read from its end, so the whole archive is needed anyway
    try:
        splits = _load_npz(data)
    except ValueError:
        # One record for the whole file: parse_record loads it again and rejects it, with the reason.
        yield SourceRecord(source, 0, data, "npz")
        return
    for split, sketches in splits.items():
        for index, sketch in enumerate(np.atleast_1d(sketches)):
            yield SourceRecord(source, index, _as_array(sketch), "npz", split)


def _load_npz(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of an npz archive, sketch-rnn's splits first; ValueError if it cannot be read.

    Never unpickles anything but arrays of numbers (quickdraw_tf.data.safe_npz): a crafted file runs no code.
    """
    arrays = safe_npz.load_npz(data)
    split_order = {split: rank for rank, split in enumerate(NPZ_SPLITS)}
    names = sorted(arrays, key=lambda name: (split_order.get(name, len(NPZ_SPLITS)), name))
    return {name: arrays[name] for name in names}


def _as_array(value: object) -> np.ndarray:
    """An npz element as an array; a ragged list or other odd object becomes a 0-d object array."""
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except ValueError:
        array = np.empty((), dtype=object)
        array[()] = value
        return array


# ---------------------------------------------------------------------------------------------------
# Parsing one record (raises InvalidRecord)


def parse_record(record: SourceRecord) -> Drawing:
    """Decodes and validates one record; raises InvalidRecord(reason, message) if it is bad."""
    parsers = {
        "ndjson": _parse_ndjson,
        "bin": _parse_bin,
        "csv": _parse_csv,
        "npy": _parse_bitmap,
        "bitmap_raw": _parse_bitmap,
        "npz": _parse_npz,
    }
    if record.format not in parsers:
        raise ValueError(f"unknown format {record.format!r}; expected one of {', '.join(FORMATS)}")
    if record.skipped:  # decided before any decoding: the reader kept only the record's start
        raise _skipped_rejection(record)
    return parsers[record.format](record)


def _skipped_rejection(record: SourceRecord) -> InvalidRecord:
    kept = len(record.payload)
    if record.format == "bin" and kept >= _BIN_HEADER.size:
        problem = bin_split.header_problem(bytes(record.payload[: _BIN_HEADER.size]))
        if problem:
            return InvalidRecord(
                "unreadable_tail",
                f"no record can start at byte {record.position} ({problem}): the binary format has no "
                f"sync marker, so the {kept + record.skipped:,} bytes from there to the end were not read",
            )
    return InvalidRecord(
        "too_large", f"{kept + record.skipped:,} bytes, over the {kept:,}-byte cap (max_record_bytes)"
    )


def _parse_ndjson(record: SourceRecord) -> Drawing:
    fields = _json_value(_utf8(record.payload, "invalid_json", "the line"), "the line")
    if not isinstance(fields, dict):
        raise InvalidRecord("not_an_object", f"the line is a JSON {_json_type(fields)}, not an object")
    return validate(_drawing_from_fields(fields))


def _parse_csv(record: SourceRecord) -> Drawing:
    text = _utf8(record.payload, "invalid_csv", "the CSV line")
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as error:
        raise InvalidRecord("invalid_csv", f"unreadable CSV line: {error}") from None
    cells = rows[0] if len(rows) == 1 else []
    if "drawing" in cells:
        raise InvalidRecord("invalid_csv", f"unexpected header {_short.repr(text)}: not a Kaggle layout")
    if len(cells) == len(_CSV_TRAIN_COLUMNS):
        fields: dict = dict(zip(_CSV_TRAIN_COLUMNS, cells, strict=True))
    elif len(cells) == len(_CSV_TEST_COLUMNS):
        fields = dict(zip(_CSV_TEST_COLUMNS, cells, strict=True), word="")
    else:
        raise InvalidRecord(
            "invalid_csv",
            f"{len(cells)} columns; expected 6 ({','.join(_CSV_TRAIN_COLUMNS)})"
            f" or 3 ({','.join(_CSV_TEST_COLUMNS)})",
        )
    fields["drawing"] = _json_value(fields["drawing"], "the drawing column")
    return validate(_drawing_from_fields(fields))


def _utf8(payload: bytes | str, reason: str, what: str) -> str:
    if isinstance(payload, str):
        return payload
    try:
        return bytes(payload).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidRecord(reason, f"{what} is not valid UTF-8 (byte {error.start})") from None


def _json_value(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidRecord(
            "invalid_json", f"{what} is not valid JSON: {error.msg} at column {error.colno}"
        ) from None
    except (ValueError, RecursionError) as error:  # an integer of over 4300 digits; deep nesting
        raise InvalidRecord("invalid_json", f"{what} is not usable JSON ({type(error).__name__})") from None


def _json_type(value: object) -> str:
    names = {
        dict: "object",
        list: "array",
        tuple: "array",
        str: "string",
        bool: "boolean",
        type(None): "null",
    }
    return names.get(type(value), "number" if isinstance(value, (int, float)) else type(value).__name__)


def _drawing_from_fields(fields: dict) -> Drawing:
    """A Drawing from ndjson/CSV fields; word, key_id and drawing are required, the rest have defaults."""
    for name in ("word", "key_id", "drawing"):
        if name not in fields:
            raise InvalidRecord("missing_field", f"no {name!r} field")
    if not isinstance(fields["drawing"], list):
        raise InvalidRecord(
            "bad_field", f"drawing is a JSON {_json_type(fields['drawing'])}, not an array of strokes"
        )
    return Drawing(
        key_id=_key_id(fields["key_id"]),
        word=_text_field(fields, "word"),
        countrycode=_text_field(fields, "countrycode"),
        recognized=_recognized(fields.get("recognized", True)),
        timestamp=_timestamp(fields["timestamp"]) if "timestamp" in fields else 0,
        strokes=tuple(fields["drawing"]),
    )


def _text_field(fields: dict, name: str) -> str:
    value = fields.get(name, "")
    if not isinstance(value, str):
        raise InvalidRecord("bad_field", f"{name} is a JSON {_json_type(value)}, not a string")
    return value


def _key_id(value: object) -> int:
    # The datasets write key_id as a string of digits; a plain JSON integer is accepted too.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        # int() refuses strings of over 4300 digits; anything past 20 digits is out of range anyway.
        key_id = int(value) if len(value) <= 20 else MAX_KEY_ID + 1
    elif type(value) is int:
        key_id = value
    else:
        raise InvalidRecord("bad_field", f"key_id {_short.repr(value)} is not a string of digits")
    if not 0 <= key_id <= MAX_KEY_ID:
        raise InvalidRecord("bad_field", f"key_id {_short.repr(key_id)} does not fit in 0..2**63-1")
    return key_id


def _recognized(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # Kaggle CSV writes True/False
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise InvalidRecord("bad_field", f"recognized {_short.repr(value)} is not true or false")


def parse_timestamp(text: str) -> int:
    """Whole seconds since the epoch from "2017-03-28 00:43:12.42591 UTC" (" UTC" and fraction optional)."""
    moment_text = text.strip().removesuffix(" UTC")
    # Fast path for the datasets' fixed layout; anything else (or an invalid date) goes through strptime,
    # so results and errors are strptime's.
    match = _TIMESTAMP_FAST.fullmatch(moment_text)
    if match:
        fields = tuple(map(int, match.groups()))
        try:
            datetime.datetime(*fields)
        except ValueError:
            pass
        else:
            return calendar.timegm(fields)
    for layout in _TIMESTAMP_LAYOUTS:
        try:
            moment = datetime.datetime.strptime(moment_text, layout)
        except ValueError:
            continue
        return calendar.timegm(moment.timetuple())  # the fraction of a second is dropped
    raise ValueError(f"timestamp {_short.repr(text)} is not like '2017-03-28 00:43:12.42591 UTC'")


def format_timestamp(seconds: int) -> str:
    """The datasets' "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, no suffix); the fraction is always 0."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _timestamp(value: object) -> int:
    if not isinstance(value, str):
        raise InvalidRecord("bad_field", f"timestamp is a JSON {_json_type(value)}, not a string")
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise InvalidRecord("bad_field", str(error)) from None


def _parse_bin(record: SourceRecord) -> Drawing:
    payload = bytes(record.payload)
    if len(payload) < _BIN_HEADER.size:
        raise InvalidRecord(
            "truncated_record", f"{len(payload)} bytes, less than the {_BIN_HEADER.size}-byte header"
        )
    key_id, countrycode, recognized, timestamp, n_strokes = _BIN_HEADER.unpack_from(payload)
    strokes, end = [], _BIN_HEADER.size
    for index in range(n_strokes):
        if end + _BIN_COUNT.size > len(payload):
            raise InvalidRecord("truncated_record", f"cut off before stroke {index} of {n_strokes}")
        (n_points,) = _BIN_COUNT.unpack_from(payload, end)
        begin, end = end + _BIN_COUNT.size, end + _BIN_COUNT.size + 2 * n_points
        if end > len(payload):
            raise InvalidRecord(
                "truncated_record",
                f"stroke {index}: {n_points} points need {2 * n_points} bytes, {len(payload) - begin} left",
            )
        strokes.append([list(payload[begin : begin + n_points]), list(payload[begin + n_points : end])])
    if end < len(payload):
        raise InvalidRecord("bad_field", f"{len(payload) - end} unexpected bytes after the last stroke")
    if recognized not in (0, 1):
        raise InvalidRecord("bad_field", f"recognized byte is {recognized}, not 0 or 1")
    try:
        code = countrycode.rstrip(b"\0").decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRecord("bad_field", f"countrycode {countrycode!r} is not ASCII") from None
    drawing = Drawing(
        key_id=key_id,
        word=word_from_path(record.source),
        countrycode=code,
        recognized=bool(recognized),
        timestamp=timestamp,
        strokes=tuple(strokes),
    )
    return validate(drawing)


def _parse_bitmap(record: SourceRecord) -> Drawing:
    pixels = record.payload
    if isinstance(pixels, (bytes, bytearray)):
        if record.format == "npy":  # the whole-file record of an unusable .npy file
            raise InvalidRecord("bad_image", _npy_header_problem(pixels))
        pixels = np.frombuffer(pixels, np.uint8)
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise InvalidRecord("bad_image", f"pixels are {pixels.dtype}, not uint8")
    if pixels.size != BITMAP_PIXELS:
        raise InvalidRecord("bad_image", f"row has {pixels.size} pixels, not {BITMAP_PIXELS} (28x28)")
    drawing = Drawing(
        key_id=derived_key_id(_basename(record.source), record.position),
        word=word_from_path(record.source),
        image=pixels.reshape(BITMAP_SHAPE),
    )
    return validate(drawing)


def _npy_header_problem(header: bytes) -> str:
    try:
        _check_npy_header(header)
    except ValueError as error:
        return f"unusable .npy file: {error}"
    return "a .npy record must be a row of pixels, not the file's header"


def _parse_npz(record: SourceRecord) -> Drawing:
    if isinstance(record.payload, (bytes, bytearray)):  # the whole-file record of an unreadable archive
        try:
            _load_npz(bytes(record.payload))
        except ValueError as error:
            raise InvalidRecord("truncated_record", str(error)) from None
        raise InvalidRecord("truncated_record", "an .npz record must be a stroke-3 array, not the archive")
    if record.split not in NPZ_SPLITS:
        raise InvalidRecord(
            "bad_field", f"unknown split {record.split!r}; expected one of {', '.join(NPZ_SPLITS)}"
        )
    strokes = ink.from_stroke3(_checked_stroke3(_as_array(record.payload)))
    drawing = Drawing(
        key_id=derived_key_id(_basename(record.source), record.split, record.position),
        word=word_from_path(record.source),
        strokes=tuple(strokes),
    )
    # Integers, but not within 0..255: sketch-rnn's files hold offsets from an unrecorded first point.
    return validate(drawing, simplified_range=False)


def _checked_stroke3(stroke3: np.ndarray) -> np.ndarray:
    if stroke3.ndim != 2 or stroke3.shape[1] != 3:
        raise InvalidRecord("mismatched_lengths", f"stroke-3 array of shape {stroke3.shape}, not (n, 3)")
    if len(stroke3) == 0:
        raise InvalidRecord("empty_drawing", "stroke-3 array has no rows")
    if stroke3.dtype.kind not in "iuf":
        raise InvalidRecord("bad_coordinate", f"stroke-3 values are {stroke3.dtype}, not numbers")
    if stroke3.dtype.kind == "f" and not (
        np.isfinite(stroke3).all() and (stroke3 == np.round(stroke3)).all()
    ):
        raise InvalidRecord("bad_coordinate", "stroke-3 values are not all finite integers")
    low, high = _INT16_RANGE
    if stroke3.min() < low or stroke3.max() > high:  # sketch-rnn's files are int16: never wrap around
        raise InvalidRecord("bad_coordinate", f"stroke-3 values outside the int16 range {low}..{high}")
    if not np.isin(stroke3[:, 2], (0, 1)).all():
        raise InvalidRecord("bad_coordinate", "stroke-3 pen_lifted values must be 0 or 1")
    return stroke3


# ---------------------------------------------------------------------------------------------------
# Structural checks


def validate(drawing: Drawing, *, simplified_range: bool = True) -> Drawing:
    """Raises InvalidRecord if the drawing is structurally wrong; returns it unchanged otherwise.

    Strokes must all be [xs, ys] (simplified: integers, 0..255 unless simplified_range=False) or all
    [xs, ys, ts] (raw: finite numbers), with equal lengths, no empty stroke and at least 2 points in all.
    A bitmap drawing (image set) must hold a 28x28 uint8 image. parse_record already calls this.
    """
    _check_metadata(drawing)
    if drawing.image is not None:
        _check_image(drawing.image)
    if drawing.image is None or drawing.strokes:
        _check_strokes(drawing.strokes, simplified_range)
        limits.check_drawing(drawing.strokes)
    return drawing


def _check_metadata(drawing: Drawing) -> None:
    checks = (
        ("key_id", type(drawing.key_id) is int and 0 <= drawing.key_id <= MAX_KEY_ID, "in 0..2**63-1"),
        ("word", isinstance(drawing.word, str), "a string"),
        ("countrycode", isinstance(drawing.countrycode, str), "a string"),
        ("recognized", isinstance(drawing.recognized, bool), "a bool"),
        ("timestamp", type(drawing.timestamp) is int and drawing.timestamp >= 0, "a non-negative integer"),
    )
    for name, fine, expected in checks:
        if not fine:
            raise InvalidRecord(
                "bad_field", f"{name} {_short.repr(getattr(drawing, name))} is not {expected}"
            )
    problem = word_problem(drawing.word)
    if problem:
        raise InvalidRecord("bad_field", problem)


def _check_image(image: object) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != BITMAP_SHAPE:
        found = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise InvalidRecord("bad_image", f"image is {found}, not uint8 (28, 28)")


def _check_strokes(strokes: object, simplified_range: bool) -> None:
    if _strokes_look_valid(strokes, simplified_range):
        return
    _check_strokes_one_by_one(strokes, simplified_range)


def _strokes_look_valid(strokes: object, simplified_range: bool) -> bool:
    """True only for drawings _check_strokes_one_by_one accepts: the common case, checked in a few passes
    over all values at once. False means "not sure": the one-by-one checks then find the problem."""
    if type(strokes) not in (list, tuple) or not strokes:
        return False
    first = strokes[0]
    if type(first) not in (list, tuple):
        return False
    arity = len(first)
    if arity not in (2, 3):
        return False
    total = 0
    for stroke in strokes:
        if type(stroke) not in (list, tuple) or len(stroke) != arity:
            return False
        n = len(stroke[0])
        if not n:
            return False
        for values in stroke:
            if type(values) not in (list, tuple) or len(values) != n:
                return False
        total += n
    if total < 2:
        return False
    values = list(itertools.chain.from_iterable(itertools.chain.from_iterable(strokes)))
    types = set(map(type, values))
    if arity == 2:  # simplified: integers, in 0..255 unless simplified_range is off
        low, high = SIMPLIFIED_RANGE
        return types <= _INT and (not simplified_range or low <= min(values) and max(values) <= high)
    if not types <= _INT_OR_FLOAT:
        return False
    try:
        return bool(np.isfinite(np.array(values, np.float64)).all())
    except OverflowError:  # an integer too large for a float
        return False


def _check_strokes_one_by_one(strokes: object, simplified_range: bool) -> None:
    if not isinstance(strokes, (list, tuple)):
        raise InvalidRecord("bad_field", f"strokes are a {type(strokes).__name__}, not a list")
    if not strokes:
        raise InvalidRecord("empty_drawing", "the drawing has no strokes")
    for index, stroke in enumerate(strokes):
        _check_stroke(index, stroke)
        if len(stroke) != len(strokes[0]):  # raw and simplified strokes in one drawing
            raise InvalidRecord(
                "mismatched_lengths",
                f"stroke {index} has {len(stroke)} arrays but stroke 0 has {len(strokes[0])}",
            )
        simplified = len(stroke) == 2
        for axis, values in zip("xyt", stroke, strict=False):
            _check_values(values, f"stroke {index}: {axis}", simplified, simplified and simplified_range)
    total = sum(len(stroke[0]) for stroke in strokes)
    if total < 2:
        raise InvalidRecord("too_short", f"{total} point in all, at least 2 needed")


def _check_stroke(index: int, stroke: object) -> None:
    shaped = isinstance(stroke, (list, tuple)) and len(stroke) in (2, 3)
    if not (shaped and all(isinstance(values, (list, tuple)) for values in stroke)):
        raise InvalidRecord("mismatched_lengths", f"stroke {index} is not a list of 2 or 3 arrays")
    if len({len(values) for values in stroke}) > 1:
        counts = [f"{len(values)} {axis} values" for axis, values in zip("xyt", stroke, strict=False)]
        raise InvalidRecord(
            "mismatched_lengths", f"stroke {index}: {', '.join(counts[:-1])} but {counts[-1]}"
        )
    if not stroke[0]:
        raise InvalidRecord("empty_drawing", f"stroke {index} has no points")


def _check_values(values: list, where: str, integers: bool, in_range: bool) -> None:
    # Fast paths for the common, valid case (set(map(type, ...)) runs in C; bool is not int here);
    # the loop below only runs to name a bad value.
    low, high = SIMPLIFIED_RANGE
    types = set(map(type, values))
    if integers:
        if types <= _INT and (not in_range or low <= min(values) and max(values) <= high):
            return
    elif types <= _INT_OR_FLOAT and _sum_is_finite(values):
        return
    for position, value in enumerate(values):
        problem = _value_problem(value, integers, in_range)
        if problem:
            raise InvalidRecord("bad_coordinate", f"{where}[{position}] = {_short.repr(value)} {problem}")


def _sum_is_finite(values: list) -> bool:
    try:
        return math.isfinite(sum(values))
    except OverflowError:  # an integer too large for a float
        return False


def _value_problem(value: object, integers: bool, in_range: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return f"is a {_json_type(value)}, not a number"
    if integers:
        if not isinstance(value, (int, np.integer)):
            return "is not an integer (simplified strokes hold integers)"
        low, high = SIMPLIFIED_RANGE
        return f"is outside {low}..{high}" if in_range and not low <= value <= high else None
    try:
        return None if math.isfinite(value) else "is not finite"
    except OverflowError:
        return "is too large"


# ---------------------------------------------------------------------------------------------------
# Reading local files


def iter_drawings(path: str, fmt: str | None = None) -> Iterator[Drawing]:
    """Every drawing of a local file (gzip if it ends in .gz); raises InvalidRecord at the first bad one."""
    fmt = format_for_path(path, fmt)
    opener = gzip.open if path.lower().endswith(_COMPRESSION_SUFFIX) else open
    with opener(path, "rb") as fileobj:
        for record in read_source_records(fileobj, path, fmt):
            yield parse_record(record)


# ---------------------------------------------------------------------------------------------------
# Writers


def _require_strokes(drawing: Drawing) -> None:
    if not drawing.strokes:
        raise ValueError(f"drawing {drawing.key_id} has no strokes (a bitmap cannot be written as strokes)")
    # Refused here rather than written: the readers reject such words (a newline would also split a CSV
    # record over two lines), so every file a writer produces reads back.
    problem = word_problem(drawing.word)
    if problem:
        raise ValueError(f"drawing {drawing.key_id}: {problem}")


def _compact_json(value: object, drawing: Drawing) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as error:  # NaN or infinity: not JSON
        raise ValueError(f"drawing {drawing.key_id}: {error}") from None


def write_ndjson(drawings: Iterable[Drawing], fileobj: TextIO) -> None:
    """The simplified-ndjson layout; raw drawings keep their t arrays. Timestamps get a ".000000" fraction."""
    for drawing in drawings:
        _require_strokes(drawing)
        fields = {
            "word": drawing.word,
            "countrycode": drawing.countrycode,
            "timestamp": format_timestamp(drawing.timestamp) + " UTC",
            "recognized": drawing.recognized,
            "key_id": str(drawing.key_id),
            "drawing": list(drawing.strokes),
        }
        fileobj.write(_compact_json(fields, drawing) + "\n")


def write_csv(drawings: Iterable[Drawing], fileobj: TextIO) -> None:
    """The Kaggle train layout, header included. Open `fileobj` with newline=""."""
    writer = csv.writer(fileobj, lineterminator="\n")
    writer.writerow(_CSV_TRAIN_COLUMNS)
    for drawing in drawings:
        _require_strokes(drawing)
        recognized = "True" if drawing.recognized else "False"
        writer.writerow(
            [
                drawing.countrycode,
                _compact_json(list(drawing.strokes), drawing),
                drawing.key_id,
                recognized,
                format_timestamp(drawing.timestamp),
                drawing.word,
            ]
        )


def write_bin(drawings: Iterable[Drawing], fileobj: BinaryIO) -> None:
    """The official binary format. Only simplified drawings fit: [xs, ys] strokes of integers 0..255.

    The word is not stored (name the file after it, e.g. cat.bin); an empty countrycode is written as two
    NUL bytes, which the reader strips again.
    """
    for drawing in drawings:
        fileobj.write(_bin_record(drawing))


def _bin_record(drawing: Drawing) -> bytes:
    _require_strokes(drawing)
    name = f"drawing {drawing.key_id}"
    if not (drawing.countrycode.isascii() and len(drawing.countrycode) <= 2):
        raise ValueError(f"{name}: countrycode {drawing.countrycode!r} is not 0-2 ASCII characters")
    if len(drawing.strokes) > _BIN_MAX_COUNT:
        raise ValueError(
            f"{name}: {len(drawing.strokes)} strokes, the binary format holds at most {_BIN_MAX_COUNT}"
        )
    try:
        header = _BIN_HEADER.pack(
            drawing.key_id,
            drawing.countrycode.encode("ascii").ljust(2, b"\0"),
            int(drawing.recognized),
            drawing.timestamp,
            len(drawing.strokes),
        )
    except struct.error as error:
        raise ValueError(
            f"{name}: key_id or timestamp out of range for the binary format ({error})"
        ) from None
    parts = [header]
    for index, stroke in enumerate(drawing.strokes):
        parts.append(_bin_stroke(stroke, f"{name}, stroke {index}"))
    return b"".join(parts)


def _bin_stroke(stroke: list, name: str) -> bytes:
    if len(stroke) != 2:
        raise ValueError(
            f"{name}: {len(stroke)} arrays; the binary format holds simplified [xs, ys] strokes only"
        )
    xs, ys = stroke
    if len(xs) != len(ys) or len(xs) > _BIN_MAX_COUNT:
        raise ValueError(f"{name}: {len(xs)} x and {len(ys)} y values; need equal counts <= {_BIN_MAX_COUNT}")
    try:
        return _BIN_COUNT.pack(len(xs)) + bytes(xs) + bytes(ys)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: coordinates must be integers in 0..255 (a simplified drawing)") from None


def write_npz(path_or_fileobj: str | BinaryIO, splits: dict[str, list[Drawing]]) -> None:
    """sketch-rnn's .npz: "train", "valid" and "test" object arrays of int16 stroke-3 (missing splits empty).

    Lossy: timestamps, metadata and a raw drawing's t arrays are dropped and coordinates rounded to integers.
    numpy appends ".npz" to a path without it. read_source_records reads it back without allow_pickle.
    """
    unknown = sorted(set(splits) - set(NPZ_SPLITS))
    if unknown:
        raise ValueError(f"unknown splits {unknown}; expected {', '.join(NPZ_SPLITS)}")
    arrays = {}
    for split in NPZ_SPLITS:
        drawings = splits.get(split, [])
        # Filled one by one: np.array() on equal-length sketches would build a 3-D array, not an object array.
        array = np.empty(len(drawings), dtype=object)
        for index, drawing in enumerate(drawings):
            array[index] = _stroke3(drawing)
        arrays[split] = array
    np.savez_compressed(path_or_fileobj, **arrays)


def _stroke3(drawing: Drawing) -> np.ndarray:
    _require_strokes(drawing)
    coordinates = ink.stroke_points(drawing.strokes)[:, :2]
    if not np.isfinite(coordinates).all() or np.abs(coordinates).max() > _STROKE3_LIMIT:
        raise ValueError(
            f"drawing {drawing.key_id}: coordinates beyond ±{_STROKE3_LIMIT} overflow int16 stroke-3"
        )
    return ink.to_stroke3(drawing.strokes)
