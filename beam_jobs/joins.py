"""Keyed joins in place of side inputs and tagged outputs: dataflow that every Beam runner executes alike.

The job's steps hand each other small descriptions (spill runs, shard tallies, the cap plan, counts). Side
inputs and multi-output DoFns are where runners differ: Beam's DaskRunner gives every output of a DoFn to
each of its consumers, tags or not, and computes a side input again, its producers included, for the tasks
that read it (ConvertFiles would run twice). A GroupByKey and a Flatten mean the same on every runner. So a
step emits (key, value) pairs on its one output, and a step that needs values from several places receives
them grouped by its own key:

    {"runs": converted, "plan": plans} | "ShardInputs" >> JoinOnKeys(shard_keys)
        -> (key, {"runs": [...], "plan": [...]}) once for each shard key, lists possibly empty
    {"facts": (a, b), "classes": classes} | "CollectFacts" >> Gather()
        -> one {"facts": [...], "classes": [...]} (unkeyed inputs)

The values of a key come in no particular order on any runner: the steps give the same bytes whatever
their order (merges of sorted runs, sums of counts).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.pvalue import PCollection

# JoinOnKeys' own input: every key once, so that a key without values still has its element.
_KEYS = "__keys__"


class JoinOnKeys(beam.PTransform):
    """{name: PCollection of (key, value) pairs, or a tuple of them} -> (key, {name: [values]}), exactly
    once for each of `keys`. Pairs whose key is not one of `keys` are left out."""

    def __init__(self, keys: Sequence[Hashable]):
        super().__init__()
        self._keys = list(keys)

    # expand's annotations are left out: Beam reads them as type hints, and a dict input is not one it knows.
    def expand(self, named):
        wanted = frozenset(self._keys)
        keys = [(key, None) for key in self._keys]
        tagged = {_KEYS: _pipeline(named) | "Keys" >> beam.Create(keys, reshuffle=False)}
        for name, pcolls in named.items():
            tagged[name] = _flattened(pcolls, name) | f"Select {name}" >> beam.Filter(_key_in, wanted)
        return tagged | "Group" >> beam.CoGroupByKey() | "Lists" >> beam.Map(_lists, tuple(named))


class Gather(beam.PTransform):
    """{name: PCollection, or a tuple of them} -> one element {name: [every value]} (lists possibly empty)."""

    def expand(self, named):
        keyed = {
            name: _flattened(pcolls, name) | f"Key {name}" >> beam.Map(_keyed, None)
            for name, pcolls in named.items()
        }
        return keyed | "Join" >> JoinOnKeys([None]) | "Values" >> beam.Map(_value)


def select(key: Hashable) -> beam.PTransform:
    """The values of the (key, value) pairs whose key is `key`."""
    return beam.FlatMap(_values_of, key)


def to_each(value, keys: Iterable[Hashable]) -> Iterator[tuple]:
    """(key, value) for each key: one value for every key of a join (the cap plan to every shard)."""
    for key in keys:
        yield key, value


def _pipeline(named: dict) -> beam.Pipeline:
    first = next(iter(named.values()))
    return (first[0] if isinstance(first, tuple) else first).pipeline


def _flattened(pcolls, name: str) -> PCollection:
    if isinstance(pcolls, tuple):
        return pcolls | f"Flatten {name}" >> beam.Flatten()
    return pcolls


def _key_in(pair: tuple, wanted: frozenset) -> bool:
    return pair[0] in wanted


def _lists(pair: tuple, names: tuple) -> tuple:
    key, grouped = pair
    return key, {name: list(grouped[name]) for name in names}


def _keyed(value, key) -> tuple:
    return key, value


def _value(pair: tuple):
    return pair[1]


def _values_of(pair: tuple, key) -> Iterator:
    if pair[0] == key:
        yield pair[1]
