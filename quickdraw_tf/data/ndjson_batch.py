"""A batch fast path for ndjson lines in Google's simplified layout: parse, validate and ink many at once.

`parse_simplified_batch(payloads, normalize)` takes ndjson lines exactly as `formats.read_source_records`
yields them (`SourceRecord.payload`) and returns, per line, either a `FastDrawing` or None. A FastDrawing
is a promise about the slow path on the same record:

  d = formats.parse_record(record)                      succeeds, with the same key_id, word,
                                                        countrycode, recognized and timestamp;
  d.word != ""                                          (the job's check_labelled passes);
  preprocess.drawing_data(d, normalize, simplify)       == fast.ink.tobytes(), for simplify True and False.

None means "not sure": the caller runs the slow path, which accepts or rejects the record with its reason.
So the fast path only ever takes the common case, and proves each line belongs to it:

  text     bytes, ASCII, no backslash (so no escapes: every string is its own bytes), shorter than
           max_record_bytes (pass the reader's: a line it cut at the cap, SourceRecord.skipped, is exactly
           that long, and the slow path rejects it as too_large);
  JSON     parsed by orjson (C). For ASCII text without escapes, orjson and Python's json give the same
           values wherever orjson gives an int, str, bool, list or dict; the checks below accept only those.
           Where the two differ (NaN/Infinity, integers past 64 bits, which orjson turns into floats,
           nesting deeper than Python's recursion limit, invalid UTF-8, a byte order mark) orjson fails or
           gives a float, or the line fails a check below, and it goes to the slow path;
  fields   only the six keys of Google's files, each at most once: the count of '"' in the line must be
           exactly the quotes of the keys and string values parsed (a repeated key, whose earlier value
           Python's json would have parsed too, or a string in the drawing shows up as extra quotes), and
           the count of "true"/"false" exactly recognized's (so no bool hides in the drawing); word,
           countrycode and timestamp strings, key_id a string of 1-19 digits or an int, in 0..2**63-1,
           recognized a bool, the word non-empty and one formats accepts (drawing.word_problem), the
           timestamp one formats.parse_timestamp reads to 1970 or later;
  drawing  a non-empty list of [xs, ys] strokes, xs and ys lists of equal, non-zero length, of ints in
           0..255, within limits' point caps, 2 points at least.

Such a drawing is not raw (preprocess.is_raw is False), so both simplify settings give ink.to_ink of its
strokes; that is computed here for the whole batch in one numpy pass, with the same float32 operations
per element as ink.to_ink, so the bytes are the same. Each FastDrawing.ink is a view of its rows in the
batch's one array.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import gc
import itertools
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
import orjson

from quickdraw_tf.data import formats, ink, limits
from quickdraw_tf.data.drawing import word_problem

_FIELDS = frozenset(("word", "countrycode", "timestamp", "recognized", "key_id", "drawing"))
_EPOCH = datetime.date(1970, 1, 1)
_CHUNK = 256  # lines parsed and checked together
_MAX_KEY_ID_DIGITS = 19  # 2**63 - 1 has 19 digits; longer strings of digits go to the slow path


class FastDrawing(NamedTuple):
    """A simplified drawing the slow path would accept, with its delta ink (float32 [n, 3])."""

    key_id: int
    word: str
    countrycode: str
    recognized: bool
    timestamp: int
    ink: np.ndarray


class _Candidate(NamedTuple):
    """A line whose fields passed; its drawing is checked with the rest of the batch."""

    index: int
    fields: tuple  # key_id, word, countrycode, recognized, timestamp
    strokes: object  # the "drawing" value as parsed


class _Strokes(NamedTuple):
    """The checked drawings of some candidates: values (uint8, each stroke's xs then ys, in order),
    points per stroke and strokes per drawing."""

    values: bytes
    lengths: list
    strokes_per_drawing: list


def parse_simplified_batch(
    payloads: Sequence[bytes], normalize: str, max_record_bytes: int = limits.MAX_RECORD_BYTES
) -> list[FastDrawing | None]:
    """Per payload, a FastDrawing (see the module docstring for what it promises) or None (slow path)."""
    if normalize not in ink.NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {ink.NORMALIZATIONS}, got {normalize!r}")
    out: list[FastDrawing | None] = [None] * len(payloads)
    # A chunk at a time: the parsed lines of a chunk (Python lists and ints) stay within the CPU's caches,
    # which is measurably faster than the same work on a few thousand lines at once.
    with collector_paused():
        for start in range(0, len(payloads), _CHUNK):
            candidates = []
            for index in range(start, min(start + _CHUNK, len(payloads))):
                candidate = _candidate(index, payloads[index], max_record_bytes)
                if candidate is not None:
                    candidates.append(candidate)
            candidates, strokes = _checked(candidates)
            if candidates:
                for candidate, rows in zip(candidates, _batch_ink(strokes, normalize), strict=True):
                    out[candidate.index] = FastDrawing(*candidate.fields, rows)
    return out


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block, back as it was after.

    Each parsed line is a few dozen new lists, so the collector runs every few lines and walks every
    object the process holds, again and again: half the parse time in a Beam worker (benchmarks/
    convert_bench.py). The parsed values hold no reference cycles, so reference counting alone frees
    them; nothing is left for the collector to find. The Beam job's ConvertFiles holds it around each
    whole batch (parse, outcomes, packing, spilling), which makes no cycles either; nested, it leaves
    the collector as the outer block found it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _candidate(index: int, payload: object, max_record_bytes: int) -> _Candidate | None:
    if type(payload) is not bytes or len(payload) >= max_record_bytes or not payload.isascii():
        return None
    if b"\\" in payload:
        return None
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict or not obj.keys() <= _FIELDS or "drawing" not in obj:
        return None
    word, key_id_value = obj.get("word"), obj.get("key_id")
    countrycode, recognized = obj.get("countrycode", ""), obj.get("recognized", True)
    if type(word) is not str or type(countrycode) is not str or type(recognized) is not bool:
        return None
    key_id = _key_id(key_id_value)
    if key_id is None or not _labelled(word):
        return None
    # Every '"' of the line must be a quote of a key or string value parsed: a repeated key (whose earlier
    # value Python's json would parse too) or a string inside the drawing (refused later) has more.
    strings = 1 + ("countrycode" in obj) + ("timestamp" in obj) + (type(key_id_value) is str)
    if payload.count(b'"') != 2 * (len(obj) + strings):
        return None
    # No bool in the drawing (bytes() in _checked_strokes would take True as 1): with no string but the
    # parsed ones, each literal true or false is one match, and recognized accounts for all of them.
    if payload.count(b"true") + payload.count(b"false") != ("recognized" in obj):
        return None
    strokes = obj["drawing"]
    if type(strokes) is not list or not strokes or type(strokes[0]) is not list or len(strokes[0]) != 2:
        return None  # a raw drawing (times: [xs, ys, ts]) is told here, not by failing the batch check
    timestamp = _timestamp(obj["timestamp"]) if "timestamp" in obj else 0
    if timestamp is None:
        return None
    return _Candidate(index, (key_id, word, countrycode, recognized, timestamp), strokes)


def _key_id(value: object) -> int | None:
    """key_id as formats reads it (a string of digits, or an int), if in 0..2**63-1; else None."""
    if type(value) is str:
        if 0 < len(value) <= _MAX_KEY_ID_DIGITS and value.isdigit():  # ASCII: isdigit means 0-9 only
            key_id = int(value)
        else:
            return None
    elif type(value) is int:
        key_id = value
    else:
        return None
    return key_id if 0 <= key_id <= formats.MAX_KEY_ID else None


@functools.lru_cache(maxsize=4096)
def _labelled(word: str) -> bool:
    """A word formats accepts (drawing.word_problem) and the job can learn (not empty)."""
    return word != "" and word_problem(word) is None


def _timestamp(value: object) -> int | None:
    """formats' whole seconds of a timestamp string (None if it refuses it or the time is before 1970)."""
    if type(value) is not str:
        return None
    seconds = _dataset_timestamp(value)
    if seconds is None:  # another layout: formats.parse_timestamp itself decides
        try:
            seconds = formats.parse_timestamp(value)
        except (ValueError, OverflowError):
            return None
    return seconds if seconds >= 0 else None


def _dataset_timestamp(value: str) -> int | None:
    """The datasets' own layout only, "2017-03-26 07:09:16.54707 UTC" (1-6 fraction digits), read as
    parse_timestamp reads it (its _TIMESTAMP_FAST branch: calendar.timegm of a valid datetime), in a few
    slices; None for anything else. ASCII only (the line is), so isdigit() means 0-9."""
    if not (25 <= len(value) <= 30 and value[10] == " " and value[19] == "." and value.endswith(" UTC")):
        return None
    if not (value[20:-4].isdigit() and value[13] == ":" and value[16] == ":"):
        return None
    hour, minute, second = value[11:13], value[14:16], value[17:19]
    if not (hour.isdigit() and minute.isdigit() and second.isdigit()):
        return None
    hour, minute, second = int(hour), int(minute), int(second)
    days = _days_since_epoch(value[:10])
    if days is None or hour > 23 or minute > 59 or second > 59:
        return None
    return days * 86400 + hour * 3600 + minute * 60 + second


@functools.lru_cache(maxsize=4096)
def _days_since_epoch(date: str) -> int | None:
    """Days from 1970-01-01 to a valid "YYYY-MM-DD" date (4-2-2 ASCII digits), else None."""
    year, month, day = date[0:4], date[5:7], date[8:10]
    if date[4] != "-" or date[7] != "-" or not (year.isdigit() and month.isdigit() and day.isdigit()):
        return None
    try:
        return (datetime.date(int(year), int(month), int(day)) - _EPOCH).days
    except ValueError:
        return None


def _checked(candidates: list[_Candidate]) -> tuple[list[_Candidate], _Strokes | None]:
    """The candidates whose drawings pass, and their strokes: checked for the whole batch at once and,
    when some drawing fails, half by half, so that one bad drawing costs a few more passes, not one per
    drawing."""
    if not candidates:
        return [], None
    strokes = _checked_strokes([candidate.strokes for candidate in candidates])
    if strokes is not None:
        return candidates, strokes
    if len(candidates) == 1:
        return [], None
    middle = len(candidates) // 2
    first, first_strokes = _checked(candidates[:middle])
    second, second_strokes = _checked(candidates[middle:])
    if first_strokes is None or second_strokes is None:
        return (first, first_strokes) if second_strokes is None else (second, second_strokes)
    return first + second, _Strokes(
        first_strokes.values + second_strokes.values,
        first_strokes.lengths + second_strokes.lengths,
        first_strokes.strokes_per_drawing + second_strokes.strokes_per_drawing,
    )


def _checked_strokes(drawings: list) -> _Strokes | None:
    """The drawings' strokes if EVERY drawing is a non-empty list of [xs, ys] lists of equal, non-zero
    length within limits' caps, of ints in 0..255 (bools: see _candidate), 2 points at least; else None.

    Each check is one C-level pass (map, set, bytes) over all drawings, strokes, arrays or values."""
    if not drawings or set(map(type, drawings)) != {list}:
        return None
    strokes_per_drawing = list(map(len, drawings))
    if min(strokes_per_drawing) == 0:
        return None
    strokes = list(itertools.chain.from_iterable(drawings))
    if set(map(type, strokes)) != {list} or set(map(len, strokes)) != {2}:
        return None
    arrays = list(itertools.chain.from_iterable(strokes))
    if set(map(type, arrays)) != {list}:
        return None
    array_lengths = list(map(len, arrays))
    lengths = array_lengths[0::2]
    if lengths != array_lengths[1::2] or min(lengths) == 0 or max(lengths) > limits.MAX_POINTS_PER_STROKE:
        return None
    ends = np.cumsum(strokes_per_drawing)
    points = np.add.reduceat(np.asarray(lengths, np.int64), ends - strokes_per_drawing)
    if points.min() < 2 or points.max() > limits.MAX_POINTS_PER_DRAWING:
        return None
    try:
        # Refuses floats, None, and ints outside 0..255 (in C). Bools it would take as 0 and 1: _candidate
        # lets no line with a bool in its drawing through.
        values = bytes(list(itertools.chain.from_iterable(arrays)))
    except (TypeError, ValueError):
        return None
    return _Strokes(values, lengths, strokes_per_drawing)


def _batch_ink(strokes: _Strokes, normalize: str) -> list[np.ndarray]:
    """ink.to_ink of every drawing's strokes, for all points at once (the same float32 operations)."""
    values = np.frombuffer(strokes.values, np.uint8)
    lengths = np.asarray(strokes.lengths, np.int64)
    strokes_per_drawing = np.asarray(strokes.strokes_per_drawing, np.int64)
    stroke_starts = np.cumsum(lengths) - lengths  # first point of each stroke
    stroke_of_point = np.repeat(np.arange(len(lengths)), lengths)
    # Stroke s's values are its xs then its ys, from 2 * stroke_starts[s]: point p's x is at
    # p + stroke_starts[s], its y `length` further on.
    x_at = np.arange(len(stroke_of_point)) + stroke_starts[stroke_of_point]
    points = np.empty((len(stroke_of_point), 3), np.float32)
    points[:, 0] = values[x_at]
    points[:, 1] = values[x_at + lengths[stroke_of_point]]
    points[:, 2] = 0.0
    points[stroke_starts + lengths - 1, 2] = 1.0
    # Per drawing: the points [first, last) and to_ink's lower corner and scale.
    drawing_points = np.add.reduceat(lengths, np.cumsum(strokes_per_drawing) - strokes_per_drawing)
    last = np.cumsum(drawing_points)
    first = last - drawing_points
    xy = points[:, :2]
    lower = np.minimum.reduceat(xy, first, axis=0)
    scale = np.maximum.reduceat(xy, first, axis=0) - lower
    if normalize == "uniform":
        scale = np.repeat(scale.max(axis=1, keepdims=True), 2, axis=1)
    scale[scale == 0] = 1.0
    xy[:] = (xy - np.repeat(lower, drawing_points, axis=0)) / np.repeat(scale, drawing_points, axis=0)
    xy[1:] -= xy[:-1].copy()  # across a drawing boundary too: those rows are not part of any ink
    return [points[a + 1 : b] for a, b in zip(first.tolist(), last.tolist(), strict=True)]
