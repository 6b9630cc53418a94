"""Per-class caps: count each shard's drawings per (split, word), then find what each cap keeps.

Caps keep the drawings of lowest rank (key_hash, key_id) of each (split, word). A shard's merged bucket
yields its drawings in rank order, duplicates side by side (shards.key_groups), so ShardTallies counts a
shard's distinct drawings per word and its `cap` smallest ranks are simply the first ones. Those ranks go
to a small tally file in the spill directory; only the counts and the files' byte ranges travel through
Beam (one element per shard, gathered into one for PlanCaps). PlanCaps then sums the counts and, for
each (split, word) over its cap, reads back that word's ranks from each shard's tally file (at most a
cap's worth each): memory for one word's candidates at a time, whatever the number of drawings read or
of classes capped.
"""

from __future__ import annotations

import array
import contextlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs import packed, spill
from beam_jobs.shards import key_groups, winner_and_duplicates

# A rank as a numpy record (16 bytes; sorted on both fields, it orders as (key_hash, key_id) tuples do).
RANK = np.dtype([("hash", "<f8"), ("key_id", "<i8")])
_RANK_ORDER = ("hash", "key_id")


class ShardTally(NamedTuple):
    """A shard's distinct drawings per word, {word: (count, index of its first rank in the file, number of
    ranks)}, and the tally file holding, word after word, each word's smallest ranks (RANK records,
    ascending)."""

    split: str
    path: str
    words: dict


class CapPlan(NamedTuple):
    """The class list, and per (split, known word): (distinct drawings, largest rank kept or None when
    all fit the cap)."""

    classes: list
    thresholds: dict


def shard_tallies(
    key: tuple[str, int], runs: Sequence[spill.Run], spill_dir: str, caps: dict[str, int]
) -> Iterator[ShardTally]:
    """The ShardTally of one (split, index) shard; its smallest caps[split] ranks per word are written."""
    split, index = key
    n = caps[split]
    counts: Counter = Counter()
    hashes: dict[str, array.array] = defaultdict(lambda: array.array("d"))
    key_ids: dict[str, array.array] = defaultdict(lambda: array.array("q"))
    for group in key_groups(runs, split, index):
        if len(group) == 1:  # no duplicate: only the word and the rank are needed
            (key_hash, key_id), word = packed.packed_key(group[0]), packed.packed_word(group[0])
        else:
            (key_hash, key_id), winner, _ = winner_and_duplicates(group)
            word = winner.word
        counts[word] += 1
        if counts[word] <= n:  # the stream is in rank order: the first n are the smallest
            hashes[word].append(key_hash)
            key_ids[word].append(key_id)
    path = FileSystems.join(spill_dir, f"tally-{split}-{index}-{uuid.uuid4().hex}")
    words, offset = {}, 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
        for word in sorted(counts):
            ranks = np.empty(len(hashes[word]), RANK)
            ranks["hash"], ranks["key_id"] = hashes.pop(word), key_ids.pop(word)
            out.write(ranks.tobytes())
            words[word] = (counts[word], offset, len(ranks))
            offset += len(ranks)
    yield ShardTally(split, path, words)


def tally_shard(element: tuple, spill_dir: str, caps: dict[str, int]) -> Iterator[ShardTally]:
    """ShardTallies: (("shard", split, index), {"runs": [spill.Run]}) -> the shard's ShardTally."""
    (_, split, index), inputs = element
    return shard_tallies((split, index), inputs["runs"], spill_dir, caps)


def plan_of(gathered: dict, caps: dict[str, int], given_classes: Sequence[str] | None) -> CapPlan:
    """PlanCaps: {"tallies": [every ShardTally]} -> the CapPlan (plan_caps)."""
    return plan_caps(gathered["tallies"], caps, given_classes)


def plan_caps(
    tallies: Iterable[ShardTally], caps: dict[str, int], given_classes: Sequence[str] | None
) -> CapPlan:
    """The classes (the given list, or the sorted distinct words) and each known (split, word)'s cap
    threshold. Words outside the class list get none: their drawings are rejected, not capped."""
    tallies = list(tallies)
    counts: Counter = Counter()
    for tally in tallies:
        for word, (count, _, _) in tally.words.items():
            counts[tally.split, word] += count
    classes = sorted({word for _, word in counts}) if given_classes is None else list(given_classes)
    known = set(classes)
    over = {key for key, count in counts.items() if key[1] in known and count > caps[key[0]]}
    largest = _largest_kept(tallies, over, caps)
    thresholds = {key: (count, largest.get(key)) for key, count in sorted(counts.items()) if key[1] in known}
    return CapPlan(classes, thresholds)


def _largest_kept(tallies: list[ShardTally], over: set, caps: dict[str, int]) -> dict:
    """{(split, word): the caps[split]-th smallest rank} for the (split, word)s in `over`.

    One word at a time, from its ranks in each of its split's tally files (at most a cap's worth per
    shard): memory for one word's candidates, whatever the number of classes over their cap. The split's
    files stay open while its words are read (opened per read beyond spill.FAN_IN files)."""
    largest = {}
    for split in sorted({split for split, _ in over}):
        split_tallies = [tally for tally in tallies if tally.split == split]
        with contextlib.ExitStack() as stack:
            keep_open = len(split_tallies) <= spill.FAN_IN
            files = [stack.enter_context(_open(tally.path)) if keep_open else None for tally in split_tallies]
            for word in sorted(word for over_split, word in over if over_split == split):
                parts = [
                    _read_ranks(tally, word, f)
                    for tally, f in zip(split_tallies, files, strict=True)
                    if word in tally.words
                ]
                ranks = np.sort(np.concatenate(parts), order=_RANK_ORDER)
                rank = ranks[caps[split] - 1]
                largest[split, word] = float(rank["hash"]), int(rank["key_id"])
    return largest


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _read_ranks(tally: ShardTally, word: str, f=None) -> np.ndarray:
    """The word's ranks in the tally file, from the open file `f` or by opening it."""
    _, offset, n = tally.words[word]
    if f is None:
        with _open(tally.path) as f:
            return _read_ranks(tally, word, f)
    f.seek(offset * RANK.itemsize)
    return np.frombuffer(f.read(n * RANK.itemsize), RANK)


def over_cap_facts(plan: CapPlan, caps: dict[str, int]) -> Iterator[tuple]:
    """The stats facts of how many drawings each known (split, word)'s cap dropped (0 included)."""
    for (split, word), (count, _) in plan.thresholds.items():
        yield "over_cap", (split, word), max(0, count - caps[split])
