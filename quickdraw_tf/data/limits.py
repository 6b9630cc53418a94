"""Bounds on one record, so that no single bad or hostile record can take a run's memory or time.

One rule for every way in: the readers (formats.validate), the Predictor (preprocess.checked_strokes,
so the predict CLI and any library caller) and the server (serve/schemas.py, answering 422) all call
check_drawing.

Each limit sits far above the real data: over the 12,056 real raw drawings in ../shared/data/quickdraw/raw
(345 words) the longest ndjson line is 39,948 bytes, the most points in a drawing (and in a stroke) 1,174,
the largest |coordinate| 2,755, and the longest ink 35,928 px once scaled to Google's 0..255 box.

  MAX_RECORD_BYTES       1 MiB: a longer line (ndjson, csv) or binary record is rejected as too_large
                         before it is decoded; the reader keeps only its first bytes in memory.
  MAX_POINTS_PER_STROKE  10,000 and MAX_POINTS_PER_DRAWING 20,000: more is too_large.
  MAX_ABS_COORDINATE     1e6: a larger |x| or |y| is bad_coordinate (as NaN and infinity are); times are
                         only required to be finite.
  MAX_RESAMPLED_POINTS   2**18 px of ink after scaling to 0..255: a raw drawing that simplification would
                         resample to more points is too_large (ink.simplify), which bounds its memory.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from quickdraw_tf.data.drawing import InvalidRecord

MAX_RECORD_BYTES = 1 << 20
MAX_POINTS_PER_STROKE = 10_000
MAX_POINTS_PER_DRAWING = 20_000
MAX_ABS_COORDINATE = 1e6
MAX_RESAMPLED_POINTS = 1 << 18
CHUNK_BYTES = 1 << 20


def check_drawing(strokes: Sequence) -> None:
    """too_large / bad_coordinate for a structurally valid drawing of finite numbers ([xs, ys(, ts)]
    sequences); formats.validate, preprocess.checked_strokes and the server's schemas call it last."""
    total = 0
    for index, stroke in enumerate(strokes):
        points = len(stroke[0])
        if points > MAX_POINTS_PER_STROKE:
            raise InvalidRecord(
                "too_large", f"stroke {index} has {points:,} points, more than {MAX_POINTS_PER_STROKE:,}"
            )
        total += points
        for axis, values in zip("xy", stroke[:2], strict=True):
            # min/max run in C; the values are already known to be finite numbers.
            low, high = min(values), max(values)
            if high > MAX_ABS_COORDINATE or low < -MAX_ABS_COORDINATE:
                beyond = high if high > MAX_ABS_COORDINATE else low
                raise InvalidRecord(
                    "bad_coordinate", f"stroke {index}: {axis} {beyond:g} is beyond ±{MAX_ABS_COORDINATE:g}"
                )
    if total > MAX_POINTS_PER_DRAWING:
        raise InvalidRecord("too_large", f"{total:,} points, more than {MAX_POINTS_PER_DRAWING:,}")


def capped_lines(fileobj: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """(line number from 1, line without its break, bytes of it not kept) for every line.

    A line longer than max_bytes is cut to its first max_bytes bytes and the rest is skipped a chunk at
    a time, so a 10 MB line costs one chunk of memory, not 10 MB (nor its JSON parse). Takes any object
    with read(size): one without readline(size) (Beam's CompressedFile, what FileSystems.open gives
    for a .gz file) is read through a buffer that has it.
    """
    fileobj = readable_lines(fileobj)
    number = 0
    while first := fileobj.readline(max_bytes + 2):  # room for max_bytes and "\r\n"
        number += 1
        ending, total = first[-2:], len(first)  # ending: the last two bytes read of the line
        if len(first) == max_bytes + 2 and not first.endswith(b"\n"):  # the line goes on: skip the rest
            while part := fileobj.readline(CHUNK_BYTES):
                ending, total = (ending + part)[-2:], total + len(part)
                if part.endswith(b"\n"):
                    break
        length = total - (len(ending) - len(ending.rstrip(b"\r\n")))
        if length <= max_bytes:
            yield number, first.rstrip(b"\r\n"), 0
        else:
            yield number, first[:max_bytes], length - max_bytes


class _RawReader(io.RawIOBase):
    """Any object with read(size) as a raw stream, so that io.BufferedReader can give it readline(size)."""

    def __init__(self, fileobj):
        self._fileobj = fileobj

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._fileobj.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def readable_lines(fileobj) -> BinaryIO:
    """`fileobj` itself when it is a Python binary stream (readline(size) in C), else the same bytes
    through an io.BufferedReader. Closing the buffer leaves `fileobj` open: its owner closes it."""
    if isinstance(fileobj, (io.BufferedIOBase, io.RawIOBase)):
        return fileobj
    return io.BufferedReader(_RawReader(fileobj), CHUNK_BYTES)
