"""Sorted runs on disk: how the job brings each shard's records together without holding them in memory.

A worker converting files buffers packed records (packed.pack_candidate / pack_rejection) per bucket
— a (split, shard) of the output, or a rejected-*.ndjson file — and, whenever the buffer is full and at
the end of its bundle, writes one *run*: a file holding each bucket's records sorted, back to back. Only
the run's description (its path and each bucket's byte range) travels through Beam, one element per
bucket (per_bucket), grouped by bucket for the step that reads it. That step merges the bucket's ranges
of every run (heapq.merge over sequential reads), so its memory is a read buffer per run, whatever the
size of the input: no runner's shuffle ever sees a drawing. This is the external merge sort of a
runner's shuffle, done in the output's staging directory through Beam's FileSystems (a local or shared
directory, or gs:// on Dataflow): every worker must see it. Runs of bundles that are retried are never
described by a committed output, so they are simply not read; the whole spill directory is deleted
before the output is published.
"""

from __future__ import annotations

import array
import heapq
import itertools
import mmap
import struct
import uuid
from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SPILL_DIR = ".spill"
RUN_BYTES = 32 << 20  # memory for buffered records, over the worker's own after its first run
_BUDGET_CHECKS = 128  # times per run that a writer reads its process's memory (~40 us each)
_LENGTH = struct.Struct("<I")
# What a merge reads ahead, shared by the runs it merges: the same memory for 4 runs or 128.
_MERGE_READ_BYTES = 1 << 20
_MIN_READ_BYTES = 1 << 13
_RECORDS_PER_WRITE = 64
FAN_IN = 128  # runs merged at once


class Run(NamedTuple):
    """A run file and, per bucket, (byte offset, byte length, number of records) of its sorted records."""

    path: str
    buckets: dict


class RunWriter:
    """Collects packed records per bucket; flush() writes them as one run, each bucket sorted.

    The records are framed (length, bytes) into one anonymous memory map that is written over from run to
    run, and a bucket holds only where its records start: a Python bytes object per record, freed at each
    flush among the parser's short-lived objects, left the heap larger after every run. Only the pages
    written count (a writer that sees a few records costs a few pages), and each flush hands them back,
    so the steps after the last run do not stack their memory on top of it.

    run_bytes is a memory budget, not a count of record bytes: what the buffer may take on top of the
    process's own memory as it was after the first run. Over a long conversion that memory still creeps
    up by a few MB (millions of short-lived objects fragment the allocators' arenas: Python's went from
    47 to 49 arenas of 1 MiB over a 1M-drawing run), so the writer looks at its process's private memory
    (private_memory) 128 times a run and ends the run as much sooner. A worker's peak then stays where
    its first run put it, whether it reads 100,000 drawings or ten million.
    """

    def __init__(self, spill_dir: str, run_bytes: int | None = None):
        self._spill_dir = spill_dir
        self._run_bytes = RUN_BYTES if run_bytes is None else run_bytes
        # A flush comes once the records pass run_bytes, so the last one written may end past it.
        self._buffer = mmap.mmap(-1, 2 * self._run_bytes)
        self._end = 0
        self._starts: dict = {}  # bucket -> array of where its framed records start in the buffer
        self._check_every = max(1, self._run_bytes // _BUDGET_CHECKS)
        self._next_check = self._check_every
        self._limit = self._run_bytes  # a run is written once the buffer reaches this many bytes
        self._settled: int | None = None  # the process's own memory after the first run

    def add(self, bucket, packed: bytes) -> Run | None:
        """Adds a record; returns the Run written to make room for it or once the buffer is full, or None."""
        start, end = self._end, self._end + _LENGTH.size + len(packed)
        run = None
        if end > len(self._buffer):
            run, start, end = self._make_room(end - start)
        buffer = self._buffer
        _LENGTH.pack_into(buffer, start, len(packed))
        buffer[start + _LENGTH.size : end] = packed
        self._end = end
        starts = self._starts.get(bucket)
        if starts is None:
            starts = self._starts[bucket] = array.array("Q")
        starts.append(start)
        if run is None and end >= self._next_check:
            self._next_check = end + self._check_every
            self._limit = self._run_bytes - self._grown()
        if run is None and end >= self._limit:
            run = self.flush()
        return run

    def _grown(self) -> int:
        """How much the process's own memory (not the buffer's) grew since the first run, at most 3/4 of
        the budget, so that runs stay large enough to merge cheaply even if something else leaks."""
        if self._settled is None:  # no reference yet: nothing to read /proc for
            return 0
        now = private_memory()
        if now is None:
            return 0
        return min(max(0, now - self._settled), 3 * self._run_bytes // 4)

    def _make_room(self, size: int) -> tuple[Run | None, int, int]:
        """Flushes what is buffered; a record larger than the buffer gets a buffer (and a run) of its own."""
        run = self.flush()
        if size > len(self._buffer):
            self._buffer = mmap.mmap(-1, size)
        return run, 0, size

    def flush(self) -> Run | None:
        if not self._starts:
            return None
        path = FileSystems.join(self._spill_dir, f"run-{uuid.uuid4().hex}")
        buckets, offset = {}, 0
        view = memoryview(self._buffer)
        try:
            with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
                for bucket in sorted(self._starts):
                    starts, ends = self._sorted_frames(self._starts[bucket])
                    length = _write_in_order(out, view, starts, ends)
                    buckets[bucket] = (offset, length, len(starts))
                    offset += length
        finally:
            view.release()
        # The pages go back to the system (and come back zeroed as they are written): between runs and
        # after the last, the steps that follow use that memory.
        self._buffer.madvise(mmap.MADV_DONTNEED)
        self._starts, self._end = {}, 0
        self._next_check = self._check_every
        if self._settled is None:
            self._settled = private_memory()
        return Run(path, buckets)

    def _sorted_frames(self, frame_starts: array.array) -> tuple[np.ndarray, np.ndarray]:
        """Where each framed record of a bucket starts and ends in the buffer, in the records' byte order."""
        data = np.frombuffer(self._buffer, dtype=np.uint8, count=self._end)
        starts = np.frombuffer(frame_starts, dtype=np.uint64).astype(np.int64)
        lengths = _read_lengths(data, starts)
        order = byte_order(data, starts + _LENGTH.size, lengths)
        starts = starts[order]
        return starts, starts + _LENGTH.size + lengths[order]


def private_memory() -> int | None:
    """This process's resident memory but for shared anonymous maps (RunWriter's buffer is one): the Python
    and C heaps, thread stacks, the pages of code and files it has touched. None where /proc does not say."""
    try:
        with open("/proc/self/status", "rb") as f:
            status = f.read()
    except OSError:
        return None
    fields = dict(line.split(b":", 1) for line in status.splitlines() if line.startswith(b"Rss"))
    try:  # in kB; RssAnon and RssFile since Linux 4.5
        return (int(fields[b"RssAnon"].split()[0]) + int(fields[b"RssFile"].split()[0])) * 1024
    except (KeyError, IndexError, ValueError):
        return None


def _read_lengths(data: np.ndarray, frame_starts: np.ndarray) -> np.ndarray:
    """The little-endian length in front of each framed record, a byte at a time (see _words)."""
    lengths = np.zeros(len(frame_starts), dtype=np.int64)
    for k in range(_LENGTH.size):
        lengths |= data[frame_starts + k].astype(np.int64) << (8 * k)
    return lengths


def byte_order(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The order in which sorted() would put the records data[starts[i] : starts[i] + lengths[i]].

    Without copying a record: the records are sorted on their first 8 bytes (as a big-endian number,
    with how many of the 8 they have), then the records still tied on their next 8, and so on; packed
    candidates are all told apart by their rank (the first 16 bytes), so most buckets take one pass.
    """
    order = np.arange(len(starts))
    tied = order.copy()  # the positions of `order` whose records are equal so far to a neighbour's
    tie = np.zeros(len(starts), dtype=np.int64)  # per tied position, which tie it belongs to
    depth = 0
    while tied.size > 1:
        records = order[tied]
        have = np.clip(lengths[records] - depth, 0, 8)
        words = _words(data, starts[records] + depth, have)
        by_key = np.lexsort((have, words, tie))
        records, have, words, tie = records[by_key], have[by_key], words[by_key], tie[by_key]
        order[tied] = records
        new = np.ones(len(records), dtype=bool)
        new[1:] = (tie[1:] != tie[:-1]) | (words[1:] != words[:-1]) | (have[1:] != have[:-1])
        tie = np.cumsum(new)
        # Still tied: a record that shares its key so far with another, and has more bytes to compare.
        still = (np.bincount(tie)[tie] > 1) & (have == 8)
        tied, tie = tied[still], tie[still]
        depth += 8
    return order


def _words(data: np.ndarray, offsets: np.ndarray, have: np.ndarray) -> np.ndarray:
    """The 8 bytes at each offset as big-endian numbers, the bytes past `have` read as zeros.

    A byte column at a time: a flush sorts while its buffer is full, and (records x 8) index arrays of a
    large bucket would add to that moment's memory."""
    words = np.zeros(len(offsets), dtype=np.uint64)
    last = max(len(data) - 1, 0)
    for k in range(8):
        inside = have > k
        if len(data) and inside.any():
            column = np.where(inside, data[np.minimum(offsets + k, last)], 0).astype(np.uint64)
            words |= column << np.uint64(56 - 8 * k)
    return words


def _write_in_order(out, view: memoryview, starts: np.ndarray, ends: np.ndarray) -> int:
    """Writes the framed records view[start:end] in the order given, a few dozen at a time; their bytes.

    A flush writes while its buffer is full, so what it copies to write (~70 KB) adds to the worker's peak
    memory; a few dozen records at a time cost as little as that and write nearly as fast as hundreds."""
    for i in range(0, len(starts), _RECORDS_PER_WRITE):
        chunk = slice(i, i + _RECORDS_PER_WRITE)
        spans = zip(starts[chunk].tolist(), ends[chunk].tolist(), strict=True)
        out.write(b"".join([view[start:end] for start, end in spans]))
    return int((ends - starts).sum())


def _write_framed(out, records: Iterable[bytes]) -> tuple[int, int]:
    """Writes each record after its length; returns (bytes written, records written).

    A few dozen records per write: one join of a whole bucket (a train shard's can be several MB) would be
    a big allocation at every merge round, which the allocator then keeps."""
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


def per_bucket(run: Run) -> Iterator[tuple]:
    """(bucket, the run as that bucket's reader sees it) for each bucket of the run: the steps that read a
    bucket receive its runs grouped by bucket (beam_jobs.joins), each with only its own byte range."""
    for bucket, span in run.buckets.items():
        yield bucket, Run(run.path, {bucket: span})


def count(runs: Iterable[Run], bucket) -> int:
    return sum(run.buckets[bucket][2] for run in runs if bucket in run.buckets)


def remove(spill_dir: str) -> None:
    if FileSystems.exists(spill_dir):
        FileSystems.delete([spill_dir])
