"""absl flags derived from dataclass fields, so that a setting is declared ONCE: a field with its default
and its help text. The __main__ module defines the flags from the dataclass and builds the dataclass
back from the parsed values; a library caller (a benchmark, a test) reads a flagfile into the dataclass
without absl's global FLAGS.

    train_steps: int = setting(1000, "Total optimizer steps (a restart continues to it).")

A field is a flag when its metadata has "help" (setting() puts it there); a field holding a nested
dataclass (TrainConfig.input) contributes its own fields' flags, under their own names. The flag's type
follows the field's: bool, int, float, str (an enum with metadata "choices"), tuple[int, ...] (a comma
separated list), dict (a repeatable string flag turned into the dict by metadata "parse"). Metadata
"flag_default" gives the flag another default than the field's (or one where the field has none).
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from absl import flags

# The flags define_flags defines belong to its caller (they show in that __main__ module's --help).
flags.disclaim_key_flags()

T = typing.TypeVar("T")


def setting(default: Any = dataclasses.MISSING, help: str = "", **metadata: Any) -> Any:
    """A dataclass field that is also a flag: its default (a dict default is copied per instance), its
    help text, and any of the metadata above."""
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata={"help": help, **metadata})
    return dataclasses.field(default=default, metadata={"help": help, **metadata})


def flag_fields(config_class: type) -> Iterator[tuple[dataclasses.Field, Any]]:
    """(field, its type) of every flag of config_class, nested dataclasses' included."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if dataclasses.is_dataclass(hints[field.name]):
            yield from flag_fields(hints[field.name])
        elif "help" in field.metadata:
            yield field, hints[field.name]


def define_flags(config_class: type, flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one flag per flag field of config_class (see the module docstring) in flag_values."""
    for field, kind in flag_fields(config_class):
        default = field.metadata.get("flag_default", _field_default(field))
        args = dict(name=field.name, help=field.metadata["help"], flag_values=flag_values)
        if kind is bool:
            flags.DEFINE_bool(default=default, **args)
        elif kind is int:
            flags.DEFINE_integer(default=default, **args)
        elif kind is float:
            flags.DEFINE_float(default=default, **args)
        elif kind is str and "choices" in field.metadata:
            flags.DEFINE_enum(default=default, enum_values=field.metadata["choices"], **args)
        elif kind is str:
            flags.DEFINE_string(default=default, **args)
        elif typing.get_origin(kind) is tuple:
            flags.DEFINE_list(default=[str(value) for value in default], **args)
        elif kind is dict and "parse" in field.metadata:
            flags.DEFINE_multi_string(default=list(default or []), **args)
        else:
            raise TypeError(f"{config_class.__name__}.{field.name}: no flag type for {kind}")


def config_from_flags(config_class: type[T], flag_values: flags.FlagValues = flags.FLAGS, **overrides) -> T:
    """The config_class instance the PARSED flag_values describe; `overrides` (config_class's own field
    names) replace flag values, fields that are not flags keep their defaults. A bad value raises
    ValueError."""
    return _build(config_class, lambda name: getattr(flag_values, name), overrides)


def config_from_flagfile(config_class: type[T], path: str, **overrides) -> T:
    """The config_class instance that `--flagfile=path` describes (plus `overrides`), parsed by absl into a
    private FlagValues: absl's global FLAGS, what a __main__ module parses, is neither read nor changed.
    Raises flags.Error for a missing file or an unknown or bad flag in it."""
    flag_values = flags.FlagValues()
    define_flags(config_class, flag_values)
    flag_values(["config_from_flagfile", f"--flagfile={path}"])
    return config_from_flags(config_class, flag_values, **overrides)


def _build(config_class: type[T], flag_value: Callable[[str], Any], overrides: Mapping[str, Any]) -> T:
    hints = typing.get_type_hints(config_class)
    values = {}
    for field in dataclasses.fields(config_class):
        kind = hints[field.name]
        if field.name in overrides:
            values[field.name] = overrides[field.name]
        elif dataclasses.is_dataclass(kind):
            values[field.name] = _build(kind, flag_value, {})
        elif "help" in field.metadata:
            values[field.name] = _field_value(field, kind, flag_value(field.name))
    unknown = set(overrides) - set(values)
    if unknown:
        raise TypeError(f"{config_class.__name__} has no field(s) {', '.join(sorted(unknown))}")
    return config_class(**values)


def _field_value(field: dataclasses.Field, kind: Any, value: Any) -> Any:
    if typing.get_origin(kind) is tuple:
        (item, _) = typing.get_args(kind)  # tuple[int, ...]
        return tuple(item(v) for v in value)
    if kind is dict:
        return field.metadata["parse"](value)
    return value


def _field_default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def flagfile_names(argv: list[str]) -> list[str]:
    """The --flagfile values on the command line, in order (absl reads them before main runs).

    Takes --flagfile=F, -flagfile=F and --flagfile F; stops at "--", after which absl parses nothing.
    """
    names, args = [], iter(argv[1:])
    for arg in args:
        if arg == "--":
            break
        name, has_value, value = arg.partition("=")
        if name in ("--flagfile", "-flagfile"):
            names.append(value if has_value else next(args, ""))
    return names


def default_model_dir(argv: list[str], model: str) -> str:
    """runs/<stem of the last --flagfile> (configs/rnn.flags -> runs/rnn), else runs/<model name>."""
    names = [name for name in flagfile_names(argv) if name]
    stem = os.path.splitext(os.path.basename(names[-1]))[0] if names else model
    return os.path.join("runs", stem)
