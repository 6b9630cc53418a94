"""JSON read into a dataclass with every field's type checked: what a run directory's config.json and
preprocessing.json go through before anything uses them (training/run_dir.py), so that a hand-edited
or hostile file is one line saying which field is wrong, never a traceback or a silently wrong model.

The field types are the dataclass's own annotations: bool (JSON true/false only), int (a JSON integer,
not a boolean, within int64), float (a finite number), str, tuple[int, ...] (a JSON array of integers),
dict (a JSON object of string keys whose values are numbers, booleans, strings or arrays of those),
`X | None`, and nested dataclasses. Ranges are the dataclass's own __post_init__ checks, which run
when it is built. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Any

MAX_FILE_BYTES = 1 << 20  # a run's config.json is ~1 kB
_INT64 = 2**63 - 1
_SCALARS = (bool, int, float, str)


class JsonFieldError(ValueError):
    """A JSON file or value that does not fit its dataclass: a one-line message naming the field."""


def parse(data: bytes, where: str) -> object:
    """The JSON value of a file's bytes (read no further than MAX_FILE_BYTES + 1 by the caller)."""
    if len(data) > MAX_FILE_BYTES:
        raise JsonFieldError(f"{where} is over {MAX_FILE_BYTES:,} bytes: not a file this project wrote")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:  # RecursionError: arrays nested thousands deep
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise JsonFieldError(f"{where} is not JSON ({first_line})") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def build(cls: type, values: object, where: str, ignore_unknown: bool = False) -> Any:
    """cls(**values) once every field's type is checked; JsonFieldError for a missing, unknown (unless
    `ignore_unknown`) or mistyped field, or for a value the dataclass's own checks refuse."""
    if not isinstance(values, dict):
        raise JsonFieldError(f"{where} is a JSON {_json_type(values)}, not an object")
    hints = typing.get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown and not ignore_unknown:
        raise JsonFieldError(f"{where}: unknown field {unknown[0]!r}")
    checked = {}
    for name, field in fields.items():
        if name in values:
            checked[name] = _checked(hints[name], values[name], f"{where}: {name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise JsonFieldError(f"{where}: field {name!r} is missing")
    try:
        return cls(**checked)
    except (ValueError, TypeError) as error:
        raise JsonFieldError(f"{where}: {error}") from None


def _checked(kind: Any, value: object, where: str) -> object:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (kind,) = [arg for arg in args if arg is not type(None)]
        return _checked(kind, value, where)
    if dataclasses.is_dataclass(kind):
        return build(kind, value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise _wrong(where, "an array", value)
        return tuple(_checked(args[0], item, f"{where}[{index}]") for index, item in enumerate(value))
    if kind is dict:
        return _checked_mapping(value, where)
    return _scalar(kind, value, where)


def _scalar(kind: type, value: object, where: str) -> object:
    if kind is bool:
        if not isinstance(value, bool):
            raise _wrong(where, "true or false", value)
        return value
    if kind is int:
        if type(value) is not int or abs(value) > _INT64:
            raise _wrong(where, "an integer", value)
        return value
    if kind is float:
        if type(value) not in (int, float) or not math.isfinite(value):
            raise _wrong(where, "a finite number", value)
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise _wrong(where, "a string", value)
        return value
    raise TypeError(f"{where}: no JSON check for {kind}")


def _checked_mapping(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise _wrong(where, "an object", value)
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        if not all(isinstance(x, _SCALARS) and not (isinstance(x, float) and not math.isfinite(x)) for x in items):
            raise _wrong(f"{where}.{key}", "a number, boolean, string or an array of those", item)
    return dict(value)


def _wrong(where: str, expected: str, value: object) -> JsonFieldError:
    shown = repr(value)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return JsonFieldError(f"{where} must be {expected}, got {shown} (a JSON {_json_type(value)})")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)
