"""The official binary format (quickdraw-dataset examples/binary_file_parser.py). It has no sync marker:
after a corrupt count or header the rest of the file is one unreadable_tail record (data/bin_split.py)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from quickdraw_tf.data import bin_split
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.data.formats.check import validate
from quickdraw_tf.data.formats.records import Format, SourceRecord, require_strokes, word_from_path

HEADER = bin_split.HEADER  # key_id, countrycode, recognized, timestamp, n_strokes
_BIN_COUNT = bin_split.COUNT  # n_points, before each stroke's xs and ys bytes
_BIN_MAX_COUNT = 0xFFFF


def _split_bin(fileobj: BinaryIO, source: str, max_bytes: int) -> Iterator[SourceRecord]:
    # No delimiter and no sync marker: quickdraw_tf.data.bin_split walks the counts (and reports an unreadable
    # tail as one record). A record cut short at the end of the file is rejected as truncated_record.
    for position, payload, skipped in bin_split.split(fileobj, max_bytes):
        yield SourceRecord(source, position, payload, "bin", skipped=skipped)


def _parse_bin(record: SourceRecord) -> Drawing:
    payload = bytes(record.payload)
    if len(payload) < HEADER.size:
        raise InvalidRecord(
            "truncated_record", f"{len(payload)} bytes, less than the {HEADER.size}-byte header"
        )
    key_id, countrycode, recognized, timestamp, n_strokes = HEADER.unpack_from(payload)
    strokes, end = [], HEADER.size
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


def write_bin(drawings: Iterable[Drawing], fileobj: BinaryIO) -> None:
    """The official binary format. Only simplified drawings fit: [xs, ys] strokes of integers 0..255.

    The word is not stored (name the file after it, e.g. cat.bin); an empty countrycode is written as two
    NUL bytes, which the reader strips again.
    """
    for drawing in drawings:
        fileobj.write(record_bytes(drawing))


def record_bytes(drawing: Drawing) -> bytes:
    require_strokes(drawing)
    name = f"drawing {drawing.key_id}"
    if not (drawing.countrycode.isascii() and len(drawing.countrycode) <= 2):
        raise ValueError(f"{name}: countrycode {drawing.countrycode!r} is not 0-2 ASCII characters")
    if len(drawing.strokes) > _BIN_MAX_COUNT:
        raise ValueError(
            f"{name}: {len(drawing.strokes)} strokes, the binary format holds at most {_BIN_MAX_COUNT}"
        )
    try:
        header = HEADER.pack(
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


FORMATS = {"bin": Format((".bin",), _split_bin, _parse_bin)}
