"""make_tfrecords' output is whole or absent, never mixed: re-runs into a used directory, a run killed with
kill -9, concurrent runs, --overwrite's limits."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from beam_jobs import atomic_output, make_tfrecords, tfds_metadata
from quickdraw_tf.data import layout
from quickdraw_tf.training import input_pipeline
from tests.sample import REPO, SAMPLE

# 250 real drawings of 10 classes, "The Eiffel Tower" among them: a small, quick input.
INPUT = os.path.join(SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset", "*.ndjson")
EVAL = input_pipeline.InputConfig(batch_size=64, bucket_boundaries=(), shuffle_buffer=10)


def convert(output_dir, *extra: str) -> int:
    """make_tfrecords' exit status, run in this process."""
    return make_tfrecords.main(
        ["--runner=DirectRunner", f"--input={INPUT}", f"--output_dir={output_dir}", *extra]
    )


def count(data_dir, split: str) -> int:
    return sum(len(labels) for _, labels in input_pipeline.make_dataset(str(data_dir), split, EVAL, False))


def leftovers(output_dir) -> list[str]:
    return glob.glob(os.path.join(os.path.dirname(output_dir), f".{os.path.basename(output_dir)}.*-*"))


@pytest.mark.integration
def test_rerun_with_other_num_shards_is_refused_then_overwrite_replaces_whole(tmp_path, capsys):
    out = tmp_path / "out"
    assert convert(out, "--num_shards=2") == 0
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    capsys.readouterr()
    assert convert(out, "--num_shards=3") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"--output_dir {out} is not empty" in error and "--overwrite" in error
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before  # untouched

    assert convert(out, "--num_shards=3", "--overwrite") == 0
    assert sorted(os.listdir(out)) == sorted(
        [layout.shard_name(split, i, 3) for split in layout.SPLITS for i in range(3)]
        + [layout.rejected_name(i, 3) for i in range(3)]
        + ["classes.txt", "stats.json", "manifest.json", "dataset_info.json", "features.json"]
    )
    stats = layout.check_data_dir(str(out), tf.io.gfile)[2]
    assert count(out, "train") == stats["written_per_split"]["train"] > 0
    assert not leftovers(out)
    assert "The Eiffel Tower" in input_pipeline.read_classes(str(out))


@pytest.mark.integration
def test_overwrite_refuses_a_directory_holding_other_files(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert convert(out, "--overwrite") == 2
    assert "would delete" in capsys.readouterr().err and (out / "notes.txt").read_text() == "mine"


@pytest.mark.integration
def test_concurrent_run_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output.claim(str(out), overwrite=False) as staging:  # another run, in progress
            assert convert(out) == 2
            error = capsys.readouterr().err
            assert error.count("\n") == 1 and f"another make_tfrecords run is writing {out}" in error
            assert os.listdir(staging) == [] and not out.exists()
            raise KeyboardInterrupt  # the other run is interrupted: it publishes nothing
    assert not out.exists() and not leftovers(out)


@pytest.mark.integration
def test_failure_after_the_pipeline_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "out"

    def die(*args):
        raise RuntimeError("killed while writing the metadata")

    monkeypatch.setattr(tfds_metadata, "write_tfds_metadata", die)
    with pytest.raises(RuntimeError, match="killed"):
        convert(out)
    assert not out.exists() and not leftovers(out)


@pytest.mark.integration
def test_kill_9_mid_conversion_leaves_nothing_training_accepts(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "beam_jobs.make_tfrecords", f"--input={INPUT}", f"--output_dir={out}"]
    env = {**os.environ, "PYTHONPATH": REPO}
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and not leftovers(out) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert convert(out) == 2  # a second run while the first one holds the lock: refused at once
    while process.poll() is None and time.monotonic() < deadline:
        staged = [name for tmp in leftovers(out) for name in os.listdir(tmp)]
        if any(name.startswith("quickdraw-") for name in staged):  # shards being written
            break
        time.sleep(0.02)
    assert process.poll() is None, "the conversion finished before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert leftovers(out) and not out.exists()  # the killed run's shards are only in its temporary dir
    with pytest.raises(layout.DataDirError, match="does not exist"):
        input_pipeline.split_files(str(out), "train")

    assert convert(out) == 0  # the lock died with the process; the next run clears its leftovers
    assert not leftovers(out) and count(out, "eval") > 0


# ---------------------------------------------------------------------------------------------------
# Names and paths: no run touches another output's staging; a bad path is one line


def test_a_run_into_data_keeps_the_staging_dir_of_a_run_into_data_old_backup(tmp_path):
    other_output, output = tmp_path / "data.old-backup", tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        with atomic_output.claim(str(other_output), overwrite=False) as other_staging:  # in progress
            assert os.path.basename(other_staging).startswith(".data.old-backup.tmp-")
            with pytest.raises(KeyboardInterrupt):
                with atomic_output.claim(str(output), overwrite=False) as staging:
                    assert os.path.isdir(staging)
                    raise KeyboardInterrupt
            assert os.path.isdir(other_staging)  # a prefix match (.data.old-) removed it
            raise KeyboardInterrupt


def test_a_killed_runs_own_leftovers_are_still_removed(tmp_path):
    killed = [tmp_path / ".data.tmp-ab3_x9z0", tmp_path / ".data.old-0123abcd"]
    others = [tmp_path / ".data.tmp-ab3_x9z0.keep", tmp_path / ".data.old-backup.tmp-0123abcd"]
    for directory in killed + others:
        directory.mkdir()
    with pytest.raises(KeyboardInterrupt):
        with atomic_output.claim(str(tmp_path / "data"), overwrite=False):
            raise KeyboardInterrupt
    assert [d.exists() for d in killed + others] == [False, False, True, True]


def test_a_planted_lock_symlink_is_one_line_and_creates_nothing(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    os.symlink(victim, tmp_path / ".out.lock")
    link = r"\.out\.lock of --output_dir .* is a symbolic link"
    with pytest.raises(atomic_output.OutputDirError, match=link):
        with atomic_output.claim(str(tmp_path / "out"), overwrite=False):
            pass
    assert not victim.exists() and not (tmp_path / "out").exists()
    assert convert(tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is a symbolic link" in error and "Traceback" not in error


def test_an_output_parent_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    assert convert(tmp_path / "file" / "out") == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"({tmp_path / 'file'} is not a directory)" in error
    assert (tmp_path / "file").read_text() == "mine"
