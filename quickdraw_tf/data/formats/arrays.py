"""The array formats: numpy_bitmap .npy rows, the same rows without a header (bitmap_raw), and
sketch-rnn's .npz of stroke-3 arrays (read by data/safe_npz.py: a crafted file runs no code)."""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from quickdraw_tf.data import ink, safe_npz
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.data.formats.check import validate
from quickdraw_tf.data.formats.records import (
    BITMAP_PIXELS,
    BITMAP_SHAPE,
    Format,
    SourceRecord,
    basename,
    derived_key_id,
    require_strokes,
    word_from_path,
)

NPZ_SPLITS = ("train", "valid", "test")
_MAX_NPY_HEADER_BYTES = 1 << 20
_STROKE3_LIMIT = 2**14 - 1  # keeps first points and deltas inside int16
_INT16_RANGE = (-(2**15), 2**15 - 1)  # what a stroke-3 value read from an .npz may hold
_ZIP_OVERHEAD_BYTES = 1 << 20  # room for the headers of the members of a stored (uncompressed) archive
_KEPT_BYTES = 1 << 20  # what the rejection of a member keeps of its numbers
_NPY_MAGIC = b"\x93NUMPY"


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


# The array formats' records have a fixed size (a row, one array of an archive): no byte cap applies.


def _split_bitmap_raw(fileobj: BinaryIO, source: str, max_bytes: int) -> Iterator[SourceRecord]:
    return _split_rows(fileobj, source, "bitmap_raw")


def _split_npy(fileobj: BinaryIO, source: str, max_bytes: int) -> Iterator[SourceRecord]:
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


def _split_npz(fileobj: BinaryIO, source: str, max_bytes: int) -> Iterator[SourceRecord]:
    # A zip is read from its end, so the whole archive is needed; no more of it than the cap on what its
    # members may inflate to (a stored member takes its own size in the archive, plus its headers).
    data = fileobj.read(safe_npz.MAX_NPZ_BYTES + _ZIP_OVERHEAD_BYTES + 1)
    try:
        if len(data) > safe_npz.MAX_NPZ_BYTES + _ZIP_OVERHEAD_BYTES:
            raise ValueError("over the cap: parse_record says so")
        splits = _load_npz(data)
    except ValueError:
        # One record for the whole file: parse_record loads it again and rejects it, with the reason.
        yield SourceRecord(source, 0, data, "npz")
        return
    for split, member in splits.items():
        if split not in NPZ_SPLITS and member.size or not _holds_sketches(member):
            # One record for the member (not one per element: a 1-D int8 array of 200,000 zeros is a
            # 426-byte file); parse_record rejects it, saying what the member is.
            yield SourceRecord(source, 0, _member_head(member), "npz", split)
            continue
        for index, sketch in enumerate(member):
            yield SourceRecord(source, index, _as_array(sketch), "npz", split)


def _holds_sketches(member: np.ndarray) -> bool:
    """sketch-rnn's layout: a 1-D object array of stroke-3 arrays (each checked as its own record), or
    equal-length sketches stacked into one [N, n, 3] number array; or an empty member."""
    if member.size == 0:
        return True
    if member.dtype == object:
        return member.ndim == 1
    return member.ndim == 3 and member.shape[2] == 3


def _member_head(member: np.ndarray) -> bytes:
    """A member as .npy bytes: its header and at most _KEPT_BYTES of its numbers (the rejection's copy)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_2_0(buffer, np.lib.format.header_data_from_array_1_0(member))
    if member.dtype != object:
        flat = np.ascontiguousarray(member).reshape(-1)
        buffer.write(flat[: _KEPT_BYTES // flat.itemsize].tobytes())
    return buffer.getvalue()


def _member_problem(head: bytes, split: str) -> str:
    if split not in NPZ_SPLITS:
        return f"unknown split {split!r}; expected one of {', '.join(NPZ_SPLITS)}"
    stream = io.BytesIO(head)
    np.lib.format.read_magic(stream)
    shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    return (
        f"member {split!r} is a {dtype} array of shape {shape}, not sketches (a 1-D object array of "
        "stroke-3 arrays)"
    )


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
        key_id=derived_key_id(basename(record.source), record.position),
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
    if isinstance(record.payload, (bytes, bytearray)) and bytes(record.payload[:6]) == _NPY_MAGIC:
        raise InvalidRecord("bad_field", _member_problem(bytes(record.payload), record.split))
    if isinstance(record.payload, (bytes, bytearray)):  # the whole-file record of an unreadable archive
        if len(record.payload) > safe_npz.MAX_NPZ_BYTES + _ZIP_OVERHEAD_BYTES:
            raise InvalidRecord(
                "too_large", f"the archive is over the {safe_npz.MAX_NPZ_BYTES:,} bytes an .npz may hold"
            )
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
        key_id=derived_key_id(basename(record.source), record.split, record.position),
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
    require_strokes(drawing)
    coordinates = ink.stroke_points(drawing.strokes)[:, :2]
    if not np.isfinite(coordinates).all() or np.abs(coordinates).max() > _STROKE3_LIMIT:
        raise ValueError(
            f"drawing {drawing.key_id}: coordinates beyond ±{_STROKE3_LIMIT} overflow int16 stroke-3"
        )
    return ink.to_stroke3(drawing.strokes)


FORMATS = {
    "npy": Format((".npy",), _split_npy, _parse_bitmap),
    "bitmap_raw": Format((), _split_bitmap_raw, _parse_bitmap),  # never told by a name: rows end in .bin
    "npz": Format((".npz",), _split_npz, _parse_npz),
}
