"""The job's first step: read files, prepare every record, spill candidates and rejections as sorted runs.

One DoFn element is one input file, so Beam's per-element cost is paid per file, not per drawing.
Records are prepared in batches: simplified ndjson lines go through the vectorized parser
(quickdraw_tf.data.ndjson_batch) and anything it does not vouch for through the exact per-record path
(records.prepare), which gives the same result for every line the fast path accepts (tested).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator, Sequence

import apache_beam as beam

from beam_jobs import packed, records, spill
from quickdraw_tf.data import formats, ndjson_batch, splits

# Records parsed together by the fast path. A batch in flight is ~3 KB a drawing (lines, parsed values,
# outcomes): 128 keep it under half a MB; 128, 256 and 1024 parse at the same speed (41 us a record).
BATCH_RECORDS = 128
FACTS = "facts"  # the key of the steps' counts: (FACTS, ("read" | "unrecognized" | "rejected", key, count))


def shard_bucket(split: str, index: int) -> tuple:
    return ("shard", split, index)


def rejected_bucket(index: int) -> tuple:
    return ("rejected", index)


class Placement:
    """Where a drawing goes: split and shard from one sha256 of its key_id (quickdraw_tf.data.splits)."""

    def __init__(self, eval_fraction: float, test_fraction: float, num_shards: int):
        self._fractions = (eval_fraction, test_fraction)
        self._num_shards = num_shards

    def __call__(self, key_id: int) -> tuple[float, tuple]:
        key_hash, shard = splits.key_hash_and_shard(key_id, self._num_shards)
        return key_hash, shard_bucket(splits.assign_split(key_hash, *self._fractions), shard)


class ConvertFiles(beam.DoFn):
    """(path, format) -> (bucket, spill.Run) for each bucket of each run written (spill.per_bucket), and
    (FACTS, (what, key, count)): counts of what was read. One output (beam_jobs.joins says why)."""

    def __init__(self, config, spill_dir: str):
        self._config = config
        self._spill_dir = spill_dir
        self._place = Placement(config.eval_fraction, config.test_fraction, config.num_shards)

    def setup(self):
        self._writer = spill.RunWriter(self._spill_dir)  # its buffer serves every bundle

    def start_bundle(self):
        self._facts: Counter = Counter()

    def process(self, path_and_format: tuple[str, str]) -> Iterator:
        source_records = records.read_file(path_and_format, self._config.max_record_bytes)
        while batch := list(itertools.islice(source_records, BATCH_RECORDS)):
            self._facts["read", ""] += len(batch)
            # Thousands of short-lived objects a batch, none in a cycle (see ndjson_batch.collector_paused).
            with ndjson_batch.collector_paused():
                runs = [self._add(outcome) for outcome in prepare_batch(batch, self._config)]
            for run in filter(None, runs):
                yield from spill.per_bucket(run)

    def finish_bundle(self):
        run = self._writer.flush()
        pairs = list(spill.per_bucket(run)) if run is not None else []
        pairs += [(FACTS, (what, key, value)) for (what, key), value in sorted(self._facts.items())]
        for pair in pairs:
            yield beam.transforms.window.GlobalWindows.windowed_value(pair)

    def _add(self, outcome) -> spill.Run | None:
        if outcome is None:
            self._facts["unrecognized", ""] += 1
            return None
        if isinstance(outcome, dict):
            self._facts["rejected", outcome["reason"]] += 1
            bucket = rejected_bucket(records.rejected_file_of(outcome, self._config.num_shards))
            return self._writer.add(bucket, packed.pack_rejection(outcome))
        key_hash, bucket = self._place(outcome.key_id)
        return self._writer.add(bucket, packed.pack_candidate(outcome, key_hash))


def prepare_batch(batch: Sequence[formats.SourceRecord], config) -> list:
    """records.prepare of every record (Candidate, rejection dict or None), the fast path where it can."""
    fast_rows = [i for i, record in enumerate(batch) if record.format == "ndjson" and not record.skipped]
    payloads = [batch[i].payload for i in fast_rows]
    fast = ndjson_batch.parse_simplified_batch(payloads, config.normalize, config.max_record_bytes)
    done = dict(zip(fast_rows, fast, strict=True))
    outcomes = []
    for i, record in enumerate(batch):
        drawing = done.get(i)
        if drawing is None:
            outcomes.append(
                records.prepare(record, config.normalize, config.simplify, config.recognized_only)
            )
        elif config.recognized_only and not drawing.recognized:
            outcomes.append(None)
        else:
            outcomes.append(_fast_candidate(record, drawing))
    return outcomes


def _fast_candidate(record: formats.SourceRecord, drawing) -> records.Candidate:
    return records.Candidate(
        key_id=drawing.key_id,
        word=drawing.word,
        origin=records.origin_of(record),
        original=bytes(record.payload),
        data=drawing.ink.tobytes(),
        countrycode=drawing.countrycode,
        recognized=drawing.recognized,
        timestamp=drawing.timestamp,
    )
