"""benchmarks.convert_memory and benchmarks.process_memory: the replicated input, the RSS sampler, the slopes.

Inputs come from the embedded sample (data/sample/simplified), never from ../shared.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import tempfile

import pytest

from benchmarks import convert_memory, process_memory
from tests.sample import SAMPLE

SAMPLE_GLOB = os.path.join(SAMPLE, "simplified", "*", "*.ndjson")


def without_key_id(record: dict) -> str:
    return json.dumps({k: v for k, v in record.items() if k != "key_id"}, sort_keys=True)


def test_replication_keeps_real_drawings_with_new_distinct_key_ids(tmp_path):
    source = convert_memory.read_by_word(SAMPLE_GLOB)
    originals = {without_key_id(r) for records in source.values() for r in records}
    original_ids = {r["key_id"] for records in source.values() for r in records}
    num = 2 * sum(len(records) for records in source.values()) + 7  # every drawing used twice or more
    paths = convert_memory.build_input(SAMPLE_GLOB, str(tmp_path), num, files_per_word=3, seed=1)

    assert len(paths) == 3 * len(source)
    written = []
    for path in paths:
        word = os.path.basename(path).rsplit("-", 1)[0]
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                assert record["word"] == word
                assert list(record) == list(source[word][0])  # same fields, same order
                written.append(record)
    assert len(written) == num
    assert all(without_key_id(r) in originals for r in written)  # a real drawing, unchanged but for key_id
    ids = [r["key_id"] for r in written]
    assert len(set(ids)) == num and not set(ids) & original_ids
    assert all(isinstance(i, str) and len(i) == 16 and i.isdigit() for i in ids)
    per_word = {len([r for r in written if r["word"] == w]) for w in source}
    assert max(per_word) - min(per_word) <= 1  # equally many per word


def test_replication_is_seeded(tmp_path):
    def contents(seed: int, name: str) -> list[bytes]:
        out = tmp_path / name
        out.mkdir()
        paths = convert_memory.build_input(SAMPLE_GLOB, str(out), 50, files_per_word=2, seed=seed)
        return [open(p, "rb").read() for p in paths]

    first = contents(3, "a")
    assert first == contents(3, "b")
    assert first != contents(4, "c")


def test_source_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="matches no drawing"):
        convert_memory.build_input(str(tmp_path / "*.ndjson"), str(tmp_path), 10)


ALLOCATING_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "b = bytearray(50_000_000); import time; time.sleep(1.5)"])
child.wait()
"""


@pytest.mark.integration
def test_sampler_sums_the_parent_and_its_child(tmp_path):
    # The parent allocates nothing big; its child holds 50 MB (bytearray zero-fills, so the pages are
    # resident). The tree's peak is at least the child's 50 MB plus the parent's own interpreter.
    measured = process_memory.measure(
        [sys.executable, "-c", ALLOCATING_CHILD], str(tmp_path / "log"), interval=0.05
    )
    assert measured.returncode == 0
    assert measured.samples > 5
    assert measured.peak_tree_rss >= 50_000_000 + 5_000_000
    # wait4 sees the largest process of the tree (the child), not the sum, and not this big pytest
    # process's RSS (which a child started from here would inherit as its ru_maxrss)
    assert 50_000_000 <= measured.maxrss < measured.peak_tree_rss
    # each process's own peak: the command (the launcher's child) and its child, which holds the 50 MB
    parent, child = measured.processes
    assert child.parent == parent.pid and "bytearray" in child.command
    assert child.peak_rss >= 50_000_000 > parent.peak_rss


@pytest.mark.integration
def test_sampler_stops_a_tree_over_the_limit(tmp_path):
    measured = process_memory.measure(
        [sys.executable, "-c", ALLOCATING_CHILD.replace("1.5", "30")],
        str(tmp_path / "log"),
        interval=0.05,
        limit=40_000_000,
    )
    assert measured.over_limit
    assert measured.returncode != 0
    assert measured.wall_s < 20


def test_a_command_past_its_time_limit_is_stopped(tmp_path):
    measured = process_memory.measure(
        [sys.executable, "-c", "import time; time.sleep(60)"], str(tmp_path / "log"), time_limit=1.0
    )
    assert measured.timed_out and not measured.over_limit
    assert measured.returncode != 0
    assert measured.wall_s < 20


def test_each_process_of_a_run_gets_its_role():
    peak = process_memory.ProcessPeak
    rows = convert_memory.process_roles(
        [
            peak(10, 1, "python -m beam_jobs.make_tfrecords --runner=DaskRunner", 300_000_000),
            peak(11, 10, "python -c from multiprocessing.spawn import spawn_main; spawn_main(", 200_000_000),
            peak(12, 10, "python -c from multiprocessing.resource_tracker import main;main(5)", 9_000_000),
            peak(13, 10, "python -m beam_jobs.sdk_worker", 150_000_000),
            peak(14, 10, "/bin/sh -c python -m beam_jobs.sdk_worker", 2_000_000),
        ]
    )
    assert [row["role"] for row in rows] == ["job", "worker", "other", "worker", "other"]
    assert rows[1]["peak_rss_mb"] == 200


def test_least_squares_slope_on_known_numbers():
    assert convert_memory.least_squares_slope([(0, 1.0), (1, 3.0), (2, 5.0)]) == pytest.approx(2.0)
    # not on one line: slope of the fitted line is 1.5 ((x - 1) . (y - 2) / (x - 1)^2 = 3 / 2)
    assert convert_memory.least_squares_slope([(0, 0.0), (1, 3.0), (2, 3.0)]) == pytest.approx(1.5)
    assert convert_memory.least_squares_slope([(5, 1.0), (5, 2.0)]) is None


def row(workers: int, kept: int | None, peak: int, over_limit: bool = False) -> dict:
    return {"label": f"job x{workers}", "kept": kept, "peak_tree_rss": peak, "over_limit": over_limit}


def test_slopes_per_worker_count():
    rows = [
        row(1, 100_000, 1_000_000_000),
        row(1, 300_000, 2_400_000_000),
        row(1, 1_000_000, 7_300_000_000),
        row(2, 100_000, 2_000_000_000),
        row(2, 300_000, 2_300_000_000),
        row(2, 1_000_000, 0, over_limit=True),  # stopped at the limit: no figure
        row(2, None, 500_000_000),  # failed: nothing kept
    ]
    fitted = convert_memory.slopes(rows)
    assert fitted["job x1"]["from_smallest"] == {
        300_000: pytest.approx(7000.0),
        1_000_000: pytest.approx(7000.0),
    }
    assert fitted["job x1"]["least_squares"] == pytest.approx(7000.0)
    assert fitted["job x2"]["from_smallest"] == {300_000: pytest.approx(1500.0)}
    assert fitted["job x2"]["least_squares"] == pytest.approx(1500.0)


@pytest.mark.integration
def test_benchmark_end_to_end_on_the_sample(tmp_path, monkeypatch):
    """A tiny run (two subprocesses): the tutorial loop and the job (the capped run) over 300 drawings."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where main makes its temporary directory
    output = tmp_path / "results.json"
    results = convert_memory.main(
        [
            "--sizes=300",
            "--modes=tutorial",
            f"--source={SAMPLE_GLOB}",
            "--files_per_word=2",
            f"--output={output}",
        ]
    )
    assert json.loads(output.read_text()) == json.loads(json.dumps(results))
    assert results["input_mb"][300] > 0
    by_name = {r["name"]: r for r in results["runs"]}
    assert set(by_name) == {"tutorial-300", "capped-300"}
    for run in by_name.values():
        assert run["returncode"] == 0, run.get("log_tail")
        assert run["kept"] == 300  # 10 words x 30: under every cap, so every drawing is written
        assert run["peak_tree_rss"] > 100_000_000  # Python with TensorFlow or Beam imported
        assert 0 < run["maxrss"] < run["peak_tree_rss"] * 1.5  # the command's own peak, not inherited
    assert by_name["tutorial-300"]["import_rss_mb"] > 50
    assert not glob.glob(os.path.join(str(tmp_path), "convert_memory-*"))  # removed without --keep
