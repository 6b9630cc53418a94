"""The text formats: ndjson (simplified or raw, one JSON object per line) and Kaggle's CSV layouts."""

from __future__ import annotations

import calendar
import csv
import datetime
import json
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO, TextIO

from quickdraw_tf.data import limits
from quickdraw_tf.data.drawing import Drawing, InvalidRecord
from quickdraw_tf.data.formats.check import validate
from quickdraw_tf.data.formats.records import (
    MAX_KEY_ID,
    Format,
    SourceRecord,
    json_type,
    require_strokes,
    short,
)

_CSV_TRAIN_COLUMNS = ("countrycode", "drawing", "key_id", "recognized", "timestamp", "word")
_CSV_TEST_COLUMNS = ("key_id", "countrycode", "drawing")
_TIMESTAMP_LAYOUTS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S")
# What both layouts accept in their most common form (ASCII digits, 2-digit fields, 1-6 fraction digits).
_TIMESTAMP_FAST = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,6})?"
)


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


def _parse_ndjson(record: SourceRecord) -> Drawing:
    fields = _json_value(_utf8(record.payload, "invalid_json", "the line"), "the line")
    if not isinstance(fields, dict):
        raise InvalidRecord("not_an_object", f"the line is a JSON {json_type(fields)}, not an object")
    return validate(_drawing_from_fields(fields))


def _parse_csv(record: SourceRecord) -> Drawing:
    text = _utf8(record.payload, "invalid_csv", "the CSV line")
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as error:
        raise InvalidRecord("invalid_csv", f"unreadable CSV line: {error}") from None
    cells = rows[0] if len(rows) == 1 else []
    if "drawing" in cells:
        raise InvalidRecord("invalid_csv", f"unexpected header {short.repr(text)}: not a Kaggle layout")
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


def _drawing_from_fields(fields: dict) -> Drawing:
    """A Drawing from ndjson/CSV fields; word, key_id and drawing are required, the rest have defaults."""
    for name in ("word", "key_id", "drawing"):
        if name not in fields:
            raise InvalidRecord("missing_field", f"no {name!r} field")
    if not isinstance(fields["drawing"], list):
        raise InvalidRecord(
            "bad_field", f"drawing is a JSON {json_type(fields['drawing'])}, not an array of strokes"
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
        raise InvalidRecord("bad_field", f"{name} is a JSON {json_type(value)}, not a string")
    return value


def _key_id(value: object) -> int:
    # The datasets write key_id as a string of digits; a plain JSON integer is accepted too.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        # int() refuses strings of over 4300 digits; anything past 20 digits is out of range anyway.
        key_id = int(value) if len(value) <= 20 else MAX_KEY_ID + 1
    elif type(value) is int:
        key_id = value
    else:
        raise InvalidRecord("bad_field", f"key_id {short.repr(value)} is not a string of digits")
    if not 0 <= key_id <= MAX_KEY_ID:
        raise InvalidRecord("bad_field", f"key_id {short.repr(key_id)} does not fit in 0..2**63-1")
    return key_id


def _recognized(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # Kaggle CSV writes True/False
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise InvalidRecord("bad_field", f"recognized {short.repr(value)} is not true or false")


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
    raise ValueError(f"timestamp {short.repr(text)} is not like '2017-03-28 00:43:12.42591 UTC'")


def format_timestamp(seconds: int) -> str:
    """The datasets' "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, no suffix); the fraction is always 0."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _timestamp(value: object) -> int:
    if not isinstance(value, str):
        raise InvalidRecord("bad_field", f"timestamp is a JSON {json_type(value)}, not a string")
    try:
        return parse_timestamp(value)
    except ValueError as error:
        raise InvalidRecord("bad_field", str(error)) from None


def _compact_json(value: object, drawing: Drawing) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as error:  # NaN or infinity: not JSON
        raise ValueError(f"drawing {drawing.key_id}: {error}") from None


def write_ndjson(drawings: Iterable[Drawing], fileobj: TextIO) -> None:
    """The simplified-ndjson layout; raw drawings keep their t arrays. Timestamps get a ".000000" fraction."""
    for drawing in drawings:
        require_strokes(drawing)
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
        require_strokes(drawing)
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


FORMATS = {
    "ndjson": Format((".ndjson", ".jsonl", ".json"), _split_ndjson, _parse_ndjson),
    "csv": Format((".csv",), _split_csv, _parse_csv),
}
