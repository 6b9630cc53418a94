"""beam_jobs.spill: sorted runs on disk, merged per bucket; and the job's output does not depend on how
many runs its drawings were spilled in."""

from __future__ import annotations

import mmap
import os
import random

import numpy as np
import pytest

from beam_jobs import make_tfrecords, spill
from tests.sample import SAMPLE


def _records(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(rng.randint(0, 40)) for _ in range(n)]


def test_each_bucket_merges_sorted_over_runs(tmp_path):
    rng = random.Random(3)
    writer = spill.RunWriter(str(tmp_path), run_bytes=500)
    added: dict = {}
    runs = []
    for record in _records(rng, 400):
        bucket = ("shard", rng.choice(["train", "eval"]), rng.randrange(3))
        added.setdefault(bucket, []).append(record)
        runs.append(writer.add(bucket, record))
    runs.append(writer.flush())
    runs = [run for run in runs if run is not None]
    assert len(runs) > 5  # the size limit cut several runs
    for bucket, records in added.items():
        assert list(spill.merged(runs, bucket)) == sorted(records)
        assert spill.count(runs, bucket) == len(records)
    assert list(spill.merged(runs, ("shard", "test", 0))) == []


def test_runs_split_per_bucket_merge_as_the_whole_runs_in_any_order(tmp_path):
    """What a step keyed by bucket receives (each run's slice for its bucket, in no set order) merges to the
    same records as the whole runs."""
    rng = random.Random(5)
    writer = spill.RunWriter(str(tmp_path), run_bytes=400)
    runs = [writer.add(("shard", "train", rng.randrange(3)), record) for record in _records(rng, 300)]
    runs = [run for run in [*runs, writer.flush()] if run is not None]
    slices = [pair for run in runs for pair in spill.per_bucket(run)]
    rng.shuffle(slices)
    for bucket in {bucket for bucket, _ in slices}:
        mine = [run for key, run in slices if key == bucket]
        assert all(list(run.buckets) == [bucket] for run in mine)
        assert list(spill.merged(mine, bucket)) == list(spill.merged(runs, bucket))
        assert spill.count(mine, bucket) == spill.count(runs, bucket)


def test_byte_order_is_the_order_of_sorted_bytes():
    """Prefixes, zero bytes, ties past 8 and 16 bytes, copies and empty records: as sorted() has them."""
    rng = random.Random(11)
    for alphabet in (b"\x00\x01", b"ab\x00", bytes(range(256))):
        for _ in range(50):
            sizes = [rng.randint(0, 30) for _ in range(rng.randint(0, 40))]
            records = [bytes(rng.choice(alphabet) for _ in range(size)) for size in sizes]
            records += [rng.choice(records) for _ in range(3)] if records else []
            buffer, starts = bytearray(b"\xff" * rng.randint(0, 3)), []
            for record in records:  # other bytes between the records, which must not be read as theirs
                starts.append(len(buffer))
                buffer += record + b"\xff" * rng.randint(0, 3)
            order = spill.byte_order(
                np.frombuffer(bytes(buffer), np.uint8),
                np.array(starts, np.int64),
                np.array([len(record) for record in records], np.int64),
            )
            assert [records[i] for i in order] == sorted(records)


def test_a_record_larger_than_the_buffer_gets_a_run_of_its_own(tmp_path):
    writer = spill.RunWriter(str(tmp_path), run_bytes=100)  # a buffer of 200 bytes
    records = [b"small", b"x" * 1000, b"also small", b"y" * 300]
    runs = [writer.add(("shard", "train", 0), record) for record in records] + [writer.flush()]
    runs = [run for run in runs if run is not None]
    first_two = [list(spill.merged([run], ("shard", "train", 0))) for run in runs[:2]]
    assert first_two == [[b"small"], [b"x" * 1000]]
    assert list(spill.merged(runs, ("shard", "train", 0))) == sorted(records)


class _AdvisedMap(mmap.mmap):
    advised: list = []

    def madvise(self, option, *args):
        self.advised.append(option)
        return super().madvise(option, *args)


def test_one_buffer_serves_every_run_and_gives_its_pages_back(tmp_path):
    """Memory does not pile up over runs: the same map is written over, its pages returned at each flush."""
    writer = spill.RunWriter(str(tmp_path), run_bytes=64)
    writer._buffer = buffer = _AdvisedMap(-1, 128)
    runs = [writer.add(("shard", "eval", 0), bytes([i]) * 20) for i in range(40)]
    assert writer._buffer is buffer
    assert _AdvisedMap.advised == [mmap.MADV_DONTNEED] * sum(run is not None for run in runs) != []


def test_more_runs_than_the_fan_in_merge_in_rounds(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "FAN_IN", 3)
    rng = random.Random(5)
    records = _records(rng, 50)
    runs = []
    for record in records:
        writer = spill.RunWriter(str(tmp_path))
        writer.add(("shard", "train", 0), record)
        runs.append(writer.flush())
    assert list(spill.merged(runs, ("shard", "train", 0))) == sorted(records)


def test_records_longer_than_the_read_buffer_come_back_whole(tmp_path):
    big = [b"a" * 200_000, b"b" * 70_000, b""]
    writer = spill.RunWriter(str(tmp_path))
    for record in big:
        writer.add(("rejected", 0), record)
    run = writer.flush()
    for read_bytes in (8192, 65536, 1 << 20):
        assert list(spill.read_bucket(run, ("rejected", 0), read_bytes)) == sorted(big)


def test_a_merge_reads_the_same_bytes_ahead_however_many_runs(tmp_path, monkeypatch):
    read_sizes = []
    read_bucket = spill.read_bucket
    monkeypatch.setattr(
        spill, "read_bucket", lambda run, bucket, n: read_sizes.append(n) or read_bucket(run, bucket, n)
    )
    for num_runs in (1, 4, 100):
        writer, runs = spill.RunWriter(str(tmp_path)), []
        for i in range(num_runs):
            writer.add(("shard", "eval", 1), i.to_bytes(2, "big"))
            runs.append(writer.flush())
        read_sizes.clear()
        assert list(spill.merged(runs, ("shard", "eval", 1))) == [
            i.to_bytes(2, "big") for i in range(num_runs)
        ]
        assert len(read_sizes) == num_runs
        assert sum(read_sizes) <= max(spill._MERGE_READ_BYTES, num_runs * spill._MIN_READ_BYTES)


def test_a_cut_run_is_an_error_not_a_short_read(tmp_path):
    writer = spill.RunWriter(str(tmp_path))
    writer.add(("rejected", 0), b"x" * 100)
    run = writer.flush()
    offset, length, count = run.buckets[("rejected", 0)]
    cut = spill.Run(run.path, {("rejected", 0): (offset, length - 1, count)})
    with pytest.raises(ValueError, match="ends inside a record"):
        list(spill.read_bucket(cut, ("rejected", 0)))


def test_flush_of_nothing_writes_nothing(tmp_path):
    assert spill.RunWriter(str(tmp_path)).flush() is None
    assert os.listdir(tmp_path) == []


@pytest.mark.integration
def test_many_small_runs_give_the_same_output_as_one(tmp_path, monkeypatch):
    """Every drawing in its own run or all in one: the same shards, rejections and stats, no spill left."""
    inputs = ",".join(os.path.join(SAMPLE, kind, "*", "*.ndjson") for kind in ("raw", "simplified"))
    argv = [f"--input={inputs}", "--num_shards=3", "--train_per_class=40", "--eval_per_class=5"]
    make_tfrecords.run([*argv, f"--output_dir={tmp_path / 'one'}"])
    monkeypatch.setattr(spill, "RUN_BYTES", 1)  # a run per record
    make_tfrecords.run([*argv, f"--output_dir={tmp_path / 'many'}"])
    names = sorted(os.listdir(tmp_path / "one"))
    assert names == sorted(os.listdir(tmp_path / "many")) and spill.SPILL_DIR not in names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "many" / name).read_bytes(), name


def _run_sizes(writer: spill.RunWriter, records: int) -> list[int]:
    """Adds `records` 6-byte records (10 bytes framed) to one bucket; the bytes of each run written."""
    bucket = ("shard", "train", 0)
    runs = [writer.add(bucket, b"abcdef") for _ in range(records)]
    return [run.buckets[bucket][1] for run in runs if run is not None]


def test_runs_end_sooner_by_what_the_process_grew_after_the_first(tmp_path, monkeypatch):
    """The buffer gives back what the rest of the worker grew since its first run, up to 3/4 of it."""
    memory = {"now": 5000}
    monkeypatch.setattr(spill, "private_memory", lambda: memory["now"])
    writer = spill.RunWriter(str(tmp_path), run_bytes=1280)  # its memory read every 10 bytes
    assert set(_run_sizes(writer, 640)) == {1280}
    memory["now"] = 5300
    assert _run_sizes(writer, 490)[1:] == [980] * 4
    memory["now"] = 50_000  # grown past the budget: runs keep a quarter of it
    assert set(_run_sizes(writer, 320)[1:]) == {320}
    memory["now"] = 4000  # shrunk below the first run's: the whole budget again
    assert _run_sizes(writer, 640)[1:] == [1280] * 4


def test_without_proc_the_budget_is_the_record_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "private_memory", lambda: None)
    assert set(_run_sizes(spill.RunWriter(str(tmp_path), run_bytes=1280), 1280)) == {1280}


@pytest.mark.skipif(spill.private_memory() is None, reason="reads /proc/self/status (Linux)")
def test_private_memory_counts_the_heap_but_not_the_buffer(tmp_path):
    writer = spill.RunWriter(str(tmp_path), run_bytes=64 << 20)
    record = os.urandom(1 << 10)
    before = spill.private_memory()
    for _ in range(8 << 10):  # 8 MB of records in the buffer
        writer.add(("rejected", 0), record)
    buffered = spill.private_memory()
    # 40 MB of bytes on the heap, every page written. Above glibc's largest mmap threshold (32 MiB), they
    # are fresh pages whatever the process freed before: a smaller block can reuse pages already resident
    # in a long-lived test process, and count for less than its size.
    heap = b"\x01" * (40 << 20)
    assert buffered - before < 2 << 20 < (40 << 20) - (1 << 20) < spill.private_memory() - buffered
    del heap
