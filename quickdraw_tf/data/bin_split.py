"""Splitting the official binary format into records, which it neither delimits nor marks.

A record is a 17-byte header (key_id, countrycode, recognized, timestamp, n_strokes) then, per stroke,
a 2-byte point count and that many x then y bytes: the only way to find where a record ends is to walk
its counts, and there is no sync marker to find the next one after a corrupt byte. So:

  - A header no real record has (recognized not 0 or 1, no strokes, key_id over 2**63-1) is only a
    local fault when the header after its record is sound: the record is passed on (parse_record
    rejects it) and reading goes on.
  - Otherwise the walk has lost the record boundaries: the rest of the file is one record whose
    payload is its first TAIL_KEPT_BYTES and whose `skipped` counts the bytes not read, rejected as
    unreadable_tail with the byte offset of that first bad header (not thousands of garbage records).
  - A record longer than max_bytes is walked past a chunk at a time and passed on cut to max_bytes,
    with `skipped` > 0 (too_large). A file that ends inside a record passes on what there is.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import BinaryIO

HEADER = struct.Struct("<Q2sbIH")  # key_id, countrycode, recognized, timestamp, n_strokes
COUNT = struct.Struct("<H")  # n_points, before each stroke's xs and ys bytes
MAX_KEY_ID = 2**63 - 1
TAIL_KEPT_BYTES = 1024  # what an unreadable tail's record keeps of it
CHUNK_BYTES = 1 << 20


def header_problem(header: bytes) -> str | None:
    """Why `header` cannot start a real record, or None. Only what no real record has: a merely odd
    field (a countrycode that is not ASCII) is left for parse_record to reject on its own."""
    key_id, _, recognized, _, n_strokes = HEADER.unpack_from(header)
    if recognized not in (0, 1):
        return f"recognized byte {recognized}"
    if n_strokes == 0:
        return "0 strokes"
    if key_id > MAX_KEY_ID:
        return f"key_id {key_id} over 2**63-1"
    return None


def record_length(buffer: bytes, start: int) -> int | None:
    """The length of the record at buffer[start], or None if the buffer ends before it does."""
    end = start + HEADER.size
    if end > len(buffer):
        return None
    (n_strokes,) = COUNT.unpack_from(buffer, end - COUNT.size)
    for _ in range(n_strokes):
        if end + COUNT.size > len(buffer):
            return None
        (n_points,) = COUNT.unpack_from(buffer, end)
        end += COUNT.size + 2 * n_points
    return end - start if end <= len(buffer) else None


class _Buffer:
    """The unread part of a file: data[start:] begins at file offset `offset + start`."""

    def __init__(self, fileobj: BinaryIO):
        self.fileobj, self.data, self.start, self.offset = fileobj, b"", 0, 0

    @property
    def available(self) -> int:
        return len(self.data) - self.start

    def read_more(self) -> bool:
        # Reading at least what is buffered keeps a long record linear, not quadratic.
        chunk = self.fileobj.read(max(CHUNK_BYTES, self.available))
        if chunk:
            self.data, self.offset, self.start = self.data[self.start :] + chunk, self.offset + self.start, 0
        return bool(chunk)

    def fill(self, size: int) -> bool:
        while self.available < size:
            if not self.read_more():
                return False
        return True

    def length(self, max_bytes: int) -> int | None:
        """The length of the record at start; None if the file ends inside it or it is over max_bytes."""
        while (length := record_length(self.data, self.start)) is None:
            if self.available > max_bytes or not self.read_more():
                return None
        return length


def split(fileobj: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """(byte offset, payload, bytes skipped) of every record, as the module docstring says."""
    buffer = _Buffer(fileobj)
    while buffer.fill(1):
        position = buffer.offset + buffer.start
        if not buffer.fill(HEADER.size):  # the file ends inside a header
            yield position, buffer.data[buffer.start :], 0
            return
        length = buffer.length(max_bytes)
        if header_problem(buffer.data[buffer.start : buffer.start + HEADER.size]) and not _next_is_sound(
            buffer, length
        ):
            kept = buffer.data[buffer.start : buffer.start + TAIL_KEPT_BYTES]
            yield position, kept, buffer.available - len(kept) + _skip_to_end(fileobj)
            return
        if length is None and buffer.available > max_bytes:  # over the cap: walk past it
            kept = buffer.data[buffer.start : buffer.start + max_bytes]
            length, rest = _skip_record(fileobj, buffer.data[buffer.start :])
            yield position, kept, length - len(kept)
            buffer.data, buffer.offset, buffer.start = rest, position + length, 0
            continue
        if length is None:  # the file ends inside the record
            yield position, buffer.data[buffer.start :], 0
            return
        kept = buffer.data[buffer.start : buffer.start + min(length, max_bytes)]
        yield position, kept, length - len(kept)
        buffer.start += length


def _next_is_sound(buffer: _Buffer, length: int | None) -> bool:
    """Whether the record after a bad header ends the file or is followed by a sound header."""
    if length is None:
        return False
    if not buffer.fill(length + HEADER.size):
        return buffer.available == length  # the bad record is the file's last
    at = buffer.start + length
    return header_problem(buffer.data[at : at + HEADER.size]) is None


def _skip_record(fileobj: BinaryIO, head: bytes) -> tuple[int, bytes]:
    """Walks past the record whose first bytes are `head` (a header at least) keeping one chunk in
    memory; returns its length (what the file holds of it) and the bytes read past its end."""
    (n_strokes,) = COUNT.unpack_from(head, HEADER.size - COUNT.size)
    data, base, end = head, 0, HEADER.size  # data: the file's bytes from record offset `base` on
    for _ in range(n_strokes):
        data, base, complete = _read_to(fileobj, data, base, end, end + COUNT.size)
        if not complete:
            return base + len(data), b""
        (n_points,) = COUNT.unpack_from(data, end - base)
        end += COUNT.size + 2 * n_points
    data, base, complete = _read_to(fileobj, data, base, end, end)
    if not complete:
        return base + len(data), b""
    return end, data[end - base :]


def _read_to(fileobj: BinaryIO, data: bytes, base: int, keep_from: int, upto: int) -> tuple[bytes, int, bool]:
    """Reads until record offset `upto` is buffered, dropping what lies before `keep_from`."""
    while True:
        drop = min(max(keep_from - base, 0), len(data))
        data, base = data[drop:], base + drop
        if base + len(data) >= upto:
            return data, base, True
        chunk = fileobj.read(CHUNK_BYTES)
        if not chunk:
            return data, base, False
        data += chunk


def _skip_to_end(fileobj: BinaryIO) -> int:
    skipped = 0
    while chunk := fileobj.read(CHUNK_BYTES):
        skipped += len(chunk)
    return skipped
