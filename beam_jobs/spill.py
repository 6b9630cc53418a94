"""Sorted runs on disk: how the job brings each shard's records together without holding them in memory.

A worker converting files buffers packed records (packed.pack_candidate / pack_rejection) per bucket
— a (split, shard) of the output, or a rejected-*.ndjson file — and, whenever the buffer is full and at
the end of its bundle, writes one *run*: a file holding each bucket's records sorted, back to back. Only
the run's description (its path and each bucket's byte range) travels through Beam. A step that writes
a bucket then merges that bucket's ranges of every run (heapq.merge over sequential reads), so its
memory is a read buffer per run, whatever the size of the input: DirectRunner's in-memory shuffle
never sees a drawing. This is the external merge sort of a runner's shuffle, done in the output's
staging directory through Beam's FileSystems (a local directory, or gs:// on Dataflow). Runs of bundles
that are retried are never described by a committed output, so they are simply not read; the whole
spill directory is deleted before the output is published.
"""

from __future__ import annotations

import heapq
import itertools
import struct
import uuid
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SPILL_DIR = ".spill"
RUN_BYTES = 32 << 20  # buffered record bytes per worker before a run is written
_LENGTH = struct.Struct("<I")
# What a merge reads ahead, shared by the runs it merges: the same memory for 4 runs or 128.
_MERGE_READ_BYTES = 1 << 20
_MIN_READ_BYTES = 1 << 13
_RECORDS_PER_WRITE = 256
FAN_IN = 128  # runs merged at once


class Run(NamedTuple):
    """A run file and, per bucket, (byte offset, byte length, number of records) of its sorted records."""

    path: str
    buckets: dict


class RunWriter:
    """Collects packed records per bucket; flush() writes them as one run, each bucket sorted."""

    def __init__(self, spill_dir: str, run_bytes: int | None = None):
        self._spill_dir = spill_dir
        self._run_bytes = RUN_BYTES if run_bytes is None else run_bytes
        self._buckets: dict = {}
        self._size = 0

    def add(self, bucket, packed: bytes) -> Run | None:
        """Adds a record; returns the Run written when the buffer went over its size, else None."""
        self._buckets.setdefault(bucket, []).append(packed)
        self._size += len(packed)
        return self.flush() if self._size >= self._run_bytes else None

    def flush(self) -> Run | None:
        if not self._buckets:
            return None
        path = FileSystems.join(self._spill_dir, f"run-{uuid.uuid4().hex}")
        buckets, offset = {}, 0
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            for bucket in sorted(self._buckets):
                length, count = _write_framed(out, sorted(self._buckets[bucket]))
                buckets[bucket] = (offset, length, count)
                offset += length
        self._buckets, self._size = {}, 0
        return Run(path, buckets)


def _write_framed(out, records: Iterable[bytes]) -> tuple[int, int]:
    """Writes each record after its length; returns (bytes written, records written).

    A few hundred records per write: one join of a whole bucket (a train shard's can be several MB) would be
    a big allocation at every flush, which the allocator then keeps, on top of the buffer."""
    written = count = 0
    records = iter(records)
    while chunk := list(itertools.islice(records, _RECORDS_PER_WRITE)):
        data = b"".join(part for record in chunk for part in (_LENGTH.pack(len(record)), record))
        out.write(data)
        written += len(data)
        count += len(chunk)
    return written, count


def read_bucket(run: Run, bucket, read_bytes: int = _MERGE_READ_BYTES) -> Iterator[bytes]:
    """The records of one bucket of one run, in their sorted order, read sequentially, read_bytes at once."""
    if bucket not in run.buckets:
        return
    offset, length, _ = run.buckets[bucket]
    with FileSystems.open(run.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.seek(offset)
        pending, left = b"", length
        while left or pending:
            if left:
                chunk = f.read(min(read_bytes, left))
                left -= len(chunk)
                pending += chunk
            start = 0
            while start + _LENGTH.size <= len(pending):
                (size,) = _LENGTH.unpack_from(pending, start)
                end = start + _LENGTH.size + size
                if end > len(pending):
                    break
                yield pending[start + _LENGTH.size : end]
                start = end
            pending = pending[start:]
            if not left and pending:
                raise ValueError(f"run {run.path}: bucket {bucket!r} ends inside a record")


def merged(runs: Iterable[Run], bucket) -> Iterator[bytes]:
    """Every record of `bucket` over all runs, in byte order.

    At most FAN_IN runs are read at once (open files): beyond that, groups of runs are first merged
    into one run each, in the directory of the first.
    """
    runs = [run for run in runs if bucket in run.buckets]
    while len(runs) > FAN_IN:
        runs = [_merge_into_run(runs[i : i + FAN_IN], bucket) for i in range(0, len(runs), FAN_IN)]
    return _merge(runs, bucket)


def _merge(runs: list[Run], bucket) -> Iterator[bytes]:
    read_bytes = max(_MIN_READ_BYTES, _MERGE_READ_BYTES // max(1, len(runs)))
    return heapq.merge(*(read_bucket(run, bucket, read_bytes) for run in runs))


def _merge_into_run(runs: list[Run], bucket) -> Run:
    path = FileSystems.join(FileSystems.split(runs[0].path)[0], f"merged-{uuid.uuid4().hex}")
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
        length, count = _write_framed(out, _merge(runs, bucket))
    return Run(path, {bucket: (0, length, count)})


def count(runs: Iterable[Run], bucket) -> int:
    return sum(run.buckets[bucket][2] for run in runs if bucket in run.buckets)


def remove(spill_dir: str) -> None:
    if FileSystems.exists(spill_dir):
        FileSystems.delete([spill_dir])
