"""make_tfrecords on Beam's DaskRunner: the same bytes as DirectRunner on a local dask.distributed cluster,
started by the job or already running, and no process left behind, whatever the run's end.

Every Dask run is a `python -m beam_jobs.make_tfrecords` subprocess in a session of its own: the test waits
for every process of that session (the job, its cluster's worker processes) to be gone, and kills any left
(then fails), so a run cannot leave processes behind.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import threading
import time

import apache_beam as beam
import psutil
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import dask_cluster, job_config, make_tfrecords, outputs, runtime
from beam_jobs.joins import Gather, JoinOnKeys
from quickdraw_tf.data import layout, splits
from tests.sample import SAMPLE

SAMPLE_GLOBS = [os.path.join(SAMPLE, kind, "*", "*.ndjson") for kind in ("raw", "simplified")]
# Caps that some classes go over, 3 shards a split: over_cap, duplicates and rejections all occur.
SAMPLE_FLAGS = [
    f"--input={','.join(SAMPLE_GLOBS)}",
    "--num_shards=3",
    "--train_per_class=120",
    "--eval_per_class=15",
    "--test_per_class=15",
]
GRACE_S = 30  # for the processes of a finished run to be gone (a worker asked to close gets 4 s, then a kill)
RUN_TIMEOUT_S = 300


def session_processes(session: int) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) == session:
                found.append(process)
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess):
            pass
    return found


def ended_session(session: int) -> list[str]:
    """Waits for the session's processes to end; kills what is left after GRACE_S and returns their
    command lines (the test then fails on them)."""
    deadline = time.monotonic() + GRACE_S
    while (left := session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.2)
    names = []
    for process in left:
        try:
            names.append(" ".join(process.cmdline()))
            process.kill()
        except psutil.NoSuchProcess:
            pass
    return names


def start(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, *args], cwd=job_config.REPO_ROOT, start_new_session=True, text=True, **kwargs
    )


def run_job(*flags: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """make_tfrecords in its own session: (its result, the processes it left behind, killed)."""
    proc = start(["-m", "beam_jobs.make_tfrecords", *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        proc.kill()  # (if it timed out) then ended_session kills the rest
        left = ended_session(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), left


def files_of(directory) -> dict[str, bytes]:
    """Every file of an output directory, by name (no subdirectory is expected)."""
    found = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            found[name] = f.read()
    return found


def direct_output(tmp_path, *flags: str):
    out = tmp_path / "direct"
    make_tfrecords.run(["--runner=DirectRunner", *flags, f"--output_dir={out}"])
    return out


# ---------------------------------------------------------------------------------------------------
# Runs on a cluster


@pytest.mark.integration
def test_local_cluster_writes_the_bytes_direct_runner_writes(tmp_path):
    direct = direct_output(tmp_path, *SAMPLE_FLAGS)
    flags = ["--runner=DaskRunner", "--dask_workers=2", *SAMPLE_FLAGS]
    result, left = run_job(*flags, f"--output_dir={tmp_path}/dask")
    assert result.returncode == 0, result.stderr[-3000:]
    assert left == []
    dask_files = files_of(tmp_path / "dask")
    assert dask_files == files_of(direct)  # shards, classes.txt, stats.json, rejected-*, manifest.json
    assert {layout.MANIFEST_FILE, layout.STATS_FILE, "rejected-00002-of-00003.ndjson"} <= set(dask_files)
    # The cluster's INFO lines (its scheduler runs in the job's process) stay off the console.
    assert "INFO" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.splitlines()[-1] == f"output: {tmp_path}/dask"


CLUSTER = """
import sys
from beam_jobs.dask_cluster import local_cluster
with local_cluster(2) as address:
    print(address, flush=True)
    sys.stdin.read()  # until the test closes stdin
"""


def first_line(proc: subprocess.Popen, timeout: float) -> str:
    lines = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


@pytest.mark.integration
def test_a_running_cluster_named_by_address_writes_the_same_bytes(tmp_path):
    words = ("pig", "belt", "door")
    folder = os.path.join(SAMPLE, "simplified", "lamnguyen5464-Sketch-dataset")
    inputs = [os.path.join(folder, f"{word}.ndjson") for word in words]
    flags = [f"--input={','.join(inputs)}", "--num_shards=2", "--train_per_class=20"]
    direct = direct_output(tmp_path, *flags)
    cluster = start(["-c", CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        address = first_line(cluster, RUN_TIMEOUT_S)
        assert address.startswith("tcp://127.0.0.1:"), address
        result, left = run_job(
            "--runner=DaskRunner", f"--dask_client_address={address}", *flags, f"--output_dir={tmp_path}/dask"
        )
        assert cluster.poll() is None  # the job closed its client, not the cluster it was given
        cluster.stdin.close()
        cluster.wait(timeout=RUN_TIMEOUT_S)
    finally:
        cluster.kill()
        cluster_left = ended_session(cluster.pid)
    assert result.returncode == 0, result.stderr[-3000:]
    assert left == [] and cluster_left == []
    assert "warning" not in result.stderr  # a cluster on this machine sees the same paths
    assert files_of(tmp_path / "dask") == files_of(direct)


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_run_stopped_midway_leaves_no_process_and_no_output(tmp_path, sig):
    """Ctrl-C unwinds the run (the client, then the cluster, are closed, the staging directory removed);
    SIGTERM ends the job's process at once, and its cluster's worker processes end with it (the staging
    directory stays for the next run to delete, as after a kill -9)."""
    out = tmp_path / "out"
    proc = start(
        ["-m", "beam_jobs.make_tfrecords", "--runner=DaskRunner", "--dask_workers=2", f"--output_dir={out}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while len(session_processes(proc.pid)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # until the job and its two worker processes run
        proc.send_signal(sig)
        returncode = proc.wait(timeout=RUN_TIMEOUT_S)
    finally:
        proc.kill()
        left = ended_session(proc.pid)
    assert left == []
    assert returncode != 0 and not out.exists()
    assert (sig == signal.SIGTERM) or not glob.glob(str(tmp_path / ".out.tmp-*"))


@pytest.mark.integration
def test_joins_give_every_key_its_element_once():
    options = PipelineOptions([])
    with beam.Pipeline(runner=runtime.direct_runner(options), options=options) as p:
        pairs = p | "Pairs" >> beam.Create([("a", 1), ("b", 2), ("a", 3), ("other", 4)])
        more = p | "More" >> beam.Create([("b", 5)])
        joined = {"x": (pairs, more), "y": more} | "Join" >> JoinOnKeys(["a", "b", "empty"])
        sorted_lists = joined | beam.MapTuple(lambda key, lists: (key, sorted(lists["x"]), lists["y"]))
        assert_that(
            sorted_lists, equal_to([("a", [1, 3], []), ("b", [2, 5], [5]), ("empty", [], [])]), label="Joined"
        )
        nothing = p | "Nothing" >> beam.Create([])
        gathered = {"values": pairs | beam.Values(), "none": nothing} | "Gather" >> Gather()
        sorted_values = gathered | beam.Map(lambda g: (sorted(g["values"]), g["none"]))
        assert_that(sorted_values, equal_to([([1, 2, 3, 4], [])]), label="Gathered")


# ---------------------------------------------------------------------------------------------------
# Flags and checks (no cluster started, no connection made)


@pytest.mark.parametrize(
    "flags, dask",
    [
        (["--runner=DaskRunner"], True),
        (["--runner=dask"], True),
        (["--runner=apache_beam.runners.dask.dask_runner.DaskRunner"], True),
        (["--runner=DirectRunner"], False),
        (["--runner=DataflowRunner"], False),
        ([], False),
    ],
)
def test_dask_runner_is_accepted_by_name(flags, dask):
    assert runtime.uses_dask(PipelineOptions(flags)) == dask


def test_a_remote_scheduler_with_local_paths_is_one_warning_line(capsys):
    options = PipelineOptions(["--runner=DaskRunner", "--dask_client_address=tcp://10.1.2.3:8786"])
    dask_options = options.view_as(dask_cluster.DaskOptions)
    dask_cluster.warn_unshared_paths(dask_options, ["/data/out", "gs://b/in.ndjson"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("make_tfrecords: warning: the Dask scheduler tcp://10.1.2.3:8786")
    assert "/data/out" in err


def test_a_scheduler_file_gives_the_address_to_check(tmp_path, capsys):
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_file.write_text('{"type": "Scheduler", "address": "tcp://10.1.2.3:8786"}', encoding="utf-8")
    options = PipelineOptions(["--runner=DaskRunner", f"--dask_scheduler_file={scheduler_file}"])
    dask_cluster.warn_unshared_paths(options.view_as(dask_cluster.DaskOptions), ["/data/out"])
    assert capsys.readouterr().err.startswith("make_tfrecords: warning: the Dask scheduler tcp://10.1.2.3:8786")


@pytest.mark.integration
def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path):
    cluster = ["--dask_client_address=tcp://127.0.0.1:1", "--dask_connection_timeout=1"]
    result, left = run_job("--runner=DaskRunner", *cluster, f"--output_dir={tmp_path}/out")
    assert left == []
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    message = "make_tfrecords: error: cannot reach the Dask scheduler tcp://127.0.0.1:1"
    assert result.stderr.startswith(message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "address, paths, warned",
    [
        ("tcp://10.1.2.3:8786", ["gs://b/out", "s3://b/in.ndjson"], False),  # every path is shared storage
        ("tcp://10.1.2.3:8786", ["gs://b/out", "/local/in.ndjson"], True),
        ("tcp://10.1.2.3:8786", ["file:///local/out"], True),
        ("scheduler.example.org:8786", ["/local/out"], True),
        ("tcp://127.0.0.1:8786", ["/local/out"], False),
        ("tcp://[::1]:8786", ["/local/out"], False),
        ("tcp://localhost:8786", ["/local/out"], False),
        (None, ["/local/out"], False),  # the job's own LocalCluster
    ],
)
def test_which_clusters_and_paths_are_warned_about(address, paths, warned):
    assert (dask_cluster.unshared_paths_warning(address, paths) is not None) == warned


def test_this_machines_own_name_is_not_remote():
    import socket

    assert dask_cluster.unshared_paths_warning(f"tcp://{socket.gethostname()}:8786", ["/local/out"]) is None


def test_the_last_step_refuses_a_missing_or_repeated_file():
    names = [layout.shard_name(split, i, 2) for split in splits.SPLITS for i in range(2)]
    names += [layout.rejected_name(i, 2) for i in range(2)] + [layout.CLASSES_FILE]
    outputs.check_written(names, 2)
    with pytest.raises(RuntimeError, match="missing \\['quickdraw-test.tfrecord-00001-of-00002'\\]"):
        outputs.check_written([n for n in names if n != "quickdraw-test.tfrecord-00001-of-00002"], 2)
    with pytest.raises(RuntimeError, match="written twice \\['classes.txt'\\]"):
        outputs.check_written([*names, layout.CLASSES_FILE], 2)
