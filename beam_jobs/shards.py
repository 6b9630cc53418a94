"""Writing the output shards: drop duplicates, apply the caps, encode and write.

Split and shard depend on the key_id only, so every copy of a key_id lands in the same shard's bucket,
and the merged bucket (spill.merged) yields them next to each other, in rank order (key_hash, key_id).
A shard is read twice: tallies.shard_tallies counts its drawings per (split, word), which give the class
list and each class's cap threshold (tallies.CapPlan, joined to every shard), and WriteShard writes the
drawings within their caps, rejecting duplicates and unknown classes.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs import outputs, packed, records, spill
from beam_jobs.prepare import FACTS, rejected_bucket, shard_bucket
from quickdraw_tf.data import layout


def key_groups(runs: Sequence[spill.Run], split: str, index: int) -> Iterator[list[bytes]]:
    """The packed candidates of a shard, grouped by key_id, in rank order."""
    merged = spill.merged(runs, shard_bucket(split, index))
    for _, group in itertools.groupby(merged, key=packed.packed_rank):
        yield list(group)


def winner_and_duplicates(group: list[bytes]) -> tuple[tuple, records.Candidate, list[records.Candidate]]:
    ranking, first = packed.unpack_candidate(group[0])
    if len(group) == 1:
        return ranking, first, []
    winner, duplicates = records.choose_kept([first] + [packed.unpack_candidate(p)[1] for p in group[1:]])
    return ranking, winner, duplicates


def within_cap(ranking: tuple[float, int], threshold: tuple[float, int] | None) -> bool:
    """Whether a drawing of this rank is kept by its (split, word)'s cap threshold (tallies.CapPlan)."""
    return threshold is None or ranking <= threshold


# ---------------------------------------------------------------------------------------------------
# Writing a shard


class WriteShard(beam.DoFn):
    """(("shard", split, index), {"runs": [spill.Run], "plan": [tallies.CapPlan]}) -> (WRITTEN, the shard
    file's name) and (FACTS, ("shard", (split, index), (count, bytes, {word: count}))).

    Rejections (duplicates, unknown classes) are spilled as a run, emitted (bucket, spill.Run) per rejected
    file, and counted (FACTS), like the first step's, so they reach the rejected-*.ndjson files in the same
    order.
    """

    def __init__(self, output_dir: str, spill_dir: str, num_shards: int, kind: str):
        self._output_dir = output_dir
        self._spill_dir = spill_dir
        self._num_shards = num_shards
        self._kind = kind

    def process(self, element):
        (_, split, index), inputs = element
        (plan,) = inputs["plan"]
        runs = inputs["runs"]
        class_index = {word: i for i, word in enumerate(plan.classes)}
        thresholds = plan.thresholds
        rejects = spill.RunWriter(self._spill_dir)
        reasons: Counter = Counter()
        rejected_runs: list[spill.Run] = []
        kept = self._kept(runs, split, index, class_index, thresholds, (rejects, reasons, rejected_runs))
        name = layout.shard_name(split, index, self._num_shards)
        per_word: Counter = Counter()
        examples = (
            records.encode(candidate, class_index[candidate.word], self._kind)
            for candidate in _counted(kept, per_word)
        )
        num_bytes = outputs.write_records(FileSystems.join(self._output_dir, name), examples)
        count = sum(per_word.values())
        Metrics.counter(records.COUNTER_NAMESPACE, "written").inc(count)
        yield outputs.WRITTEN, name
        yield FACTS, ("shard", (split, index), (count, num_bytes, dict(per_word)))
        rejected_runs.append(rejects.flush())
        for run in filter(None, rejected_runs):
            yield from spill.per_bucket(run)
        for reason, n in sorted(reasons.items()):
            yield FACTS, ("rejected", reason, n)

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
        runs.append(writer.add(bucket, packed.pack_rejection(entry)))


def _counted(candidates: Iterable[records.Candidate], per_word: Counter) -> Iterator[records.Candidate]:
    for candidate in candidates:
        per_word[candidate.word] += 1
        yield candidate
