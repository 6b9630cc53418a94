"""The steps per output shard: drop duplicates, tally per class, cap, encode and write.

Split and shard depend on the key_id only, so every copy of a key_id lands in the same shard's bucket,
and the merged bucket (spill.merged) yields them next to each other, in rank order (key_hash, key_id).
A shard is read twice: ShardTallies counts its drawings per (split, word) with their smallest ranks —
merged over shards these give the class list and each class's cap threshold, as side inputs — and
WriteShard writes the drawings within their caps, rejecting duplicates and unknown classes.
"""

from __future__ import annotations

import array
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import outputs, records, spill
from beam_jobs.prepare import FACTS, rejected_bucket, shard_bucket
from quickdraw_tf import layout

REJECTED_RUNS = "rejected_runs"


def key_groups(runs: Sequence[spill.Run], split: str, index: int) -> Iterator[list[bytes]]:
    """The packed candidates of a shard, grouped by key_id, in rank order."""
    merged = spill.merged(runs, shard_bucket(split, index))
    for _, group in itertools.groupby(merged, key=records.packed_rank):
        yield list(group)


def winner_and_duplicates(group: list[bytes]) -> tuple[tuple, records.Candidate, list[records.Candidate]]:
    ranking, first = records.unpack_candidate(group[0])
    if len(group) == 1:
        return ranking, first, []
    winner, duplicates = records.choose_kept([first] + [records.unpack_candidate(p)[1] for p in group[1:]])
    return ranking, winner, duplicates


# ---------------------------------------------------------------------------------------------------
# Tallies and caps


# Ranks in tallies are numpy records (16 bytes each, sorted as (key_hash, key_id) tuples are): a tally can
# hold up to a cap's worth of ranks per class and shard, and Python tuples would take six times the memory.
RANK = np.dtype([("hash", "<f8"), ("key_id", "<i8")])


def shard_tallies(key: tuple[str, int], runs: Sequence[spill.Run], n: int) -> Iterator[tuple]:
    """A shard's ((split, word), (count, its n smallest ranks: an ascending RANK array)), one per word."""
    split, index = key
    counts: Counter = Counter()
    hashes: dict[str, array.array] = {}
    key_ids: dict[str, array.array] = {}
    for group in key_groups(runs, split, index):
        if len(group) == 1:  # no duplicate: only the word and the rank are needed
            (key_hash, key_id), word = records.packed_key(group[0]), records.packed_word(group[0])
        else:
            (key_hash, key_id), winner, _ = winner_and_duplicates(group)
            word = winner.word
        counts[word] += 1
        if counts[word] <= n:  # the stream is in rank order: the first n are the smallest
            hashes.setdefault(word, array.array("d")).append(key_hash)
            key_ids.setdefault(word, array.array("q")).append(key_id)
    for word, count in counts.items():
        ranks = np.empty(len(hashes[word]), RANK)
        ranks["hash"], ranks["key_id"] = hashes.pop(word), key_ids.pop(word)
        yield (split, word), (count, ranks)


class MergeTallies(beam.CombineFn):
    """(count, ascending smallest ranks) partials -> their sum and the `n` smallest ranks overall."""

    def __init__(self, n: int):
        self._n = n

    def create_accumulator(self):
        return 0, np.zeros(0, RANK)

    def _merge(self, tallies):
        tallies = list(tallies)
        count = sum(count for count, _ in tallies)
        ranks = np.sort(np.concatenate([ranks for _, ranks in tallies]), order=("hash", "key_id"))
        return count, ranks[: self._n]

    def add_input(self, accumulator, tally):
        return self._merge([accumulator, tally])

    def merge_accumulators(self, accumulators):
        return self._merge(accumulators)

    def extract_output(self, accumulator):
        return accumulator


def over_cap_threshold(count: int, smallest: np.ndarray, cap: int) -> tuple[float, int] | None:
    """The largest rank a (split, class) keeps, or None when all `count` of its drawings fit the cap."""
    if count <= cap:
        return None
    largest = smallest[cap - 1]
    return float(largest["hash"]), int(largest["key_id"])


def over_cap_fact(threshold: tuple, caps: dict[str, int]) -> tuple:
    """A CapThresholds element -> the stats fact of how many drawings its cap dropped."""
    (split, word), (count, _) = threshold
    return "over_cap", (split, word), max(0, count - caps[split])


def within_cap(ranking: tuple[float, int], threshold: tuple[float, int] | None) -> bool:
    return threshold is None or ranking <= threshold


class Classes(beam.PTransform):
    """The class list as a one-element PCollection: the given one, or the sorted distinct words."""

    def __init__(self, given: Sequence[str] | None):
        super().__init__()
        self._given = None if given is None else list(given)

    def expand(self, tallies):
        if self._given is not None:
            return tallies.pipeline | "Given" >> beam.Create([self._given])
        return (
            tallies
            | "Words" >> beam.Map(lambda tally: tally[0][1])
            | "Distinct" >> beam.Distinct()
            | "Collect" >> beam.combiners.ToList()
            | "Sort" >> beam.Map(sorted)
        )


class CapThresholds(beam.PTransform):
    """Shard tallies -> ((split, word), (count, largest rank kept or None if all fit)), known words only
    (the winners of other words are rejected, not capped)."""

    def __init__(self, caps: dict[str, int], class_index):
        super().__init__()
        self._caps = dict(caps)
        self._class_index = class_index

    def expand(self, tallies):
        caps = self._caps
        return (
            tallies
            | "KnownWords" >> beam.Filter(lambda tally, known: tally[0][1] in known, self._class_index)
            | "MergeTallies" >> beam.CombinePerKey(MergeTallies(max(caps.values())))
            | "Thresholds"
            >> beam.MapTuple(
                lambda key, tally: (key, (tally[0], over_cap_threshold(tally[0], tally[1], caps[key[0]])))
            )
        )


# ---------------------------------------------------------------------------------------------------
# Writing a shard


class WriteShard(beam.DoFn):
    """(split, index) -> ((split, index), count, bytes, {word: count}) of the shard file written.

    Rejections (duplicates, unknown classes) are spilled as a run (REJECTED_RUNS output) and counted
    (FACTS), like the first step's, so they reach the rejected-*.ndjson files in the same order.
    """

    def __init__(self, output_dir: str, spill_dir: str, num_shards: int, kind: str):
        self._output_dir = output_dir
        self._spill_dir = spill_dir
        self._num_shards = num_shards
        self._kind = kind

    def process(self, key, runs, class_index: dict, thresholds: dict):
        split, index = key
        rejects = spill.RunWriter(self._spill_dir)
        reasons: Counter = Counter()
        rejected_runs: list[spill.Run] = []
        kept = self._kept(runs, split, index, class_index, thresholds, (rejects, reasons, rejected_runs))
        path = FileSystems.join(self._output_dir, layout.shard_name(split, index, self._num_shards))
        per_word: Counter = Counter()
        examples = (
            records.encode(candidate, class_index[candidate.word], self._kind)
            for candidate in _counted(kept, per_word)
        )
        num_bytes = outputs.write_records(path, examples)
        count = sum(per_word.values())
        Metrics.counter(records.COUNTER_NAMESPACE, "written").inc(count)
        yield key, count, num_bytes, dict(per_word)
        rejected_runs.append(rejects.flush())
        for run in filter(None, rejected_runs):
            yield beam.pvalue.TaggedOutput(REJECTED_RUNS, run)
        for reason, n in sorted(reasons.items()):
            yield beam.pvalue.TaggedOutput(FACTS, ("rejected", reason, n))

    def _kept(self, runs, split, index, class_index, thresholds, rejected) -> Iterator:
        """The shard's winners within their caps, in rank order; the rejections go to `rejected`."""
        for group in key_groups(runs, split, index):
            ranking, winner, duplicates = winner_and_duplicates(group)
            for duplicate in duplicates:
                self._reject(records.duplicate_rejection(duplicate, winner), *rejected)
            if winner.word not in class_index:
                self._reject(records.unknown_class_rejection(winner), *rejected)
            elif within_cap(ranking, thresholds[(split, winner.word)][1]):
                yield winner

    def _reject(self, entry: dict, writer: spill.RunWriter, reasons: Counter, runs: list) -> None:
        reasons[entry["reason"]] += 1
        bucket = rejected_bucket(records.rejected_file_of(entry, self._num_shards))
        runs.append(writer.add(bucket, records.pack_rejection(entry)))


def _counted(candidates: Iterable[records.Candidate], per_word: Counter) -> Iterator[records.Candidate]:
    for candidate in candidates:
        per_word[candidate.word] += 1
        yield candidate
