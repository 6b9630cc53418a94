"""benchmarks/device_check.py: every row in a child under a deadline and a memory ceiling (a row that sleeps
or allocates past them is killed and recorded, the next row runs, the JSON is whole after every row, the
check keeps its budget); the CPU smoke run (the same rows on tiny models), its JSON, "not on GPU"."""

import argparse
import json
import os
import subprocess
import sys
import time

import pytest

from benchmarks import device_check, device_plan
from benchmarks.device_plan import Row
from tests.sample import REPO

ROW_KEYS = {"name", "kind", "model", "precision", "batch_size", "static", "xla", "cached", "status"}
SETUP = {
    "batch_sizes": device_plan.batch_sizes({m: 8 for m in device_plan.FLAGFILES}, smoke=True),
    "supported": {"off": "", "float16": "", "bfloat16": ""},
}
SLEEP = "import time; time.sleep(300)"
ALLOCATE = "held = []\nwhile True:\n    held.append(b'x' * 20 * 2**20)"  # written bytes: resident pages


def recorder(output: str) -> str:
    """A row that reads the check's JSON as it stands and answers with the number of rows in it."""
    return (
        "import json, sys\n"
        f"rows = json.load(open({output!r}))['rows']\n"
        "json.dump({'status': 'ok', 'rows_in_json': len(rows)}, open(sys.argv[1], 'w'))"
    )


def fake_rows(behaviour: dict[str, str]):
    """A child command per row kind: python -c CODE RESULT_PATH instead of benchmarks.device_row."""

    def command(spec: dict, result_path: str) -> list[str]:
        return [sys.executable, "-c", behaviour[spec["row"]["kind"]], result_path]

    return command


def run_fake_plan(rows, behaviour, budget_s, output, memory_bytes=2**30, tmp_path=None):
    budget = device_check.Budget(budget_s, smoke=True, started=time.monotonic())
    args = argparse.Namespace(smoke=True, budget_s=budget_s, row_memory_gb=memory_bytes / 2**30, data_dir="")
    results = device_check.run_plan(
        rows, SETUP, "unused", budget, memory_bytes, str(tmp_path),
        after_row=lambda rows: device_check.write_report(output, args, budget, SETUP, rows),
        command=fake_rows(behaviour),
    )  # fmt: skip
    return budget, results


@pytest.mark.integration
def test_rows_past_their_deadline_or_ceiling_are_killed_and_the_next_rows_run(tmp_path):
    output = str(tmp_path / "check.json")
    rows = [Row(kind, "rnn", smoke=True) for kind in ("cudnn", "correctness", "finite", "throughput")]
    behaviour = {
        "cudnn": SLEEP,
        "correctness": ALLOCATE,
        "finite": recorder(output),
        "throughput": recorder(output),
    }
    budget, results = run_fake_plan(
        rows, behaviour, 30.0, output, memory_bytes=200 * 2**20, tmp_path=tmp_path
    )

    sleeper, allocator, third, fourth = results
    assert sleeper["status"] == "killed: deadline"
    # Its share: a quarter of the 27 s left (30 s less the 3 s reserve), not the whole budget.
    assert sleeper["deadline_s"] == pytest.approx(0.25 * 27, abs=0.5)
    assert sleeper["deadline_s"] <= sleeper["seconds"] < sleeper["deadline_s"] + 3
    assert allocator["status"] == "killed: memory"
    assert 200 <= allocator["peak_rss_mb"] < 1024 and allocator["seconds"] < 20
    assert all("log_tail" in row for row in (sleeper, allocator))
    # The next rows ran, and each found the JSON whole, with every row before it.
    assert third["status"] == fourth["status"] == "ok"
    assert third["rows_in_json"] == 2 and fourth["rows_in_json"] == 3
    report = json.loads(open(output).read())
    assert [row["status"] for row in report["rows"]] == ["killed: deadline", "killed: memory", "ok", "ok"]
    assert report["rows"][0]["name"] == "cudnn rnn b8 float32"


@pytest.mark.integration
def test_the_check_ends_within_its_budget_when_every_row_hangs(tmp_path):
    output = str(tmp_path / "check.json")
    rows = [row for row in device_plan.plan() if row.smoke]
    started = time.monotonic()
    budget, results = run_fake_plan(
        rows, dict.fromkeys(device_plan.KINDS, SLEEP), 12.0, output, tmp_path=tmp_path
    )
    assert time.monotonic() - started < 12.0  # the reserve (3 s) covers each kill's wait
    statuses = [row["status"] for row in results]
    assert set(statuses) <= {"killed: deadline", "skipped: budget"} and statuses[0] == "killed: deadline"
    assert len(json.loads(open(output).read())["rows"]) == len(rows)


def test_a_tiny_budget_skips_the_rows_that_do_not_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(device_check.Budget, "guess", lambda self, row: 10.0)

    def no_child(spec, result_path):
        raise AssertionError("a row that does not fit was started")

    budget = device_check.Budget(5.0, smoke=True, started=time.monotonic())
    rows = device_check.run_plan(
        device_plan.plan(), SETUP, "", budget, 2**30, str(tmp_path), command=no_child
    )
    assert len(rows) == len(device_plan.plan())
    assert all(row["status"].startswith("skipped: ") for row in rows)
    assert rows[0]["name"] == "cudnn rnn b8 float32" and rows[0]["status"] == "skipped: budget"


def test_the_rows_likeliest_to_hang_run_last():
    rows = device_plan.plan()
    assert [row.kind for row in rows[:3]] == ["cudnn", "correctness", "finite"]
    first_large = next(i for i, row in enumerate(rows) if row.batch == "large")
    first_xla = next(i for i, row in enumerate(rows) if row.xla)
    assert all(row.batch == "own" and not row.xla for row in rows[:first_large])
    assert all(not row.xla for row in rows[:first_xla]) and all(row.xla for row in rows[first_xla:])
    assert first_large < first_xla
    plain = {(row.model, row.precision) for row in rows[:first_large] if row.kind == "throughput"}
    assert {(m, "off") for m in device_plan.FLAGFILES} <= plain


def test_a_row_is_named_as_it_runs_on_the_device():
    row = Row("throughput", "mobilenet", batch="large", precision="fast")
    on_cpu = {"off": "", "float16": "no fast float16 here", "bfloat16": "no"}
    resolved = device_plan.resolve(row, SETUP["batch_sizes"], on_cpu, smoke=False)
    assert resolved["name"] == "throughput mobilenet b16 float32" and resolved["skip"] == ""
    unknown = device_plan.resolve(row, {}, {}, smoke=False)  # the setup failed: every precision is tried
    assert unknown["name"] == "throughput mobilenet b(large) float16" and unknown["skip"] == ""
    skipped = device_plan.resolve(Row("throughput", "rnn", precision="bfloat16"), {}, on_cpu, smoke=False)
    assert skipped["skip"] == "no"


def smoke_command(tfrecord_dir: str, output, *flags: str) -> list[str]:
    module = [sys.executable, "-m", "benchmarks.device_check", "--smoke", f"--data_dir={tfrecord_dir}"]
    return [*module, f"--output={output}", *flags]


SMOKE_ENV = {**os.environ, "PYTHONPATH": REPO, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.mark.integration
def test_device_check_smoke_on_cpu(tfrecord_dir, tmp_path):
    output = tmp_path / "device_check.json"
    command = smoke_command(tfrecord_dir, output, "--budget_s=900")  # room for every row on a loaded machine
    result = subprocess.run(command, cwd=REPO, env=SMOKE_ENV, capture_output=True, text=True, timeout=1000)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert {"device", "setup", "smoke", "budget_s", "elapsed_s", "cudnn", "rows"} <= set(report)
    assert report["smoke"] is True and report["device"]["gpu"] is None
    assert report["setup"]["status"] == "ok" and report["setup"]["supported"]["off"] == ""
    assert report["cudnn"] == "not on GPU"
    rows = {row["name"]: row for row in report["rows"]}
    assert all(ROW_KEYS <= set(row) for row in rows.values())
    not_run = [row for row in rows.values() if not row["status"].startswith(("ok", "skipped"))]
    assert not not_run, not_run

    # Every kind of row ran (on rnn), each in its own process: the probes, plain and XLA throughput, cached
    # input.
    ran = [row for row in report["rows"] if row["status"] == "ok"]  # (two rows may share a name)
    assert len(ran) == sum(row.smoke for row in device_plan.plan()), result.stdout
    assert all(row["peak_rss_mb"] > 100 and row["seconds"] > 0 for row in ran)  # TensorFlow in each child
    assert rows["correctness rnn b8 float32"]["answer"] == "equal (not on GPU: CPU vs CPU)"
    finite = rows["finite rnn b8 float16"]
    assert finite["status"] == "ok" and finite["compute_dtype"] == "float16"  # runs here, only slowly
    assert len(finite["chunk_losses"]) == 4 and finite["loss_scale"] > 0
    plain = rows["throughput rnn b8 float32"]
    assert plain["examples_per_second"] > 0 and plain["peak_memory_mb"] is None
    assert plain["compute_dtype"] == "float32" and plain["timed_steps"] == 2
    assert rows["throughput rnn b8 float32 static xla=on"]["status"] == "ok"  # XLA compiles the LSTM loop
    for model in ("rnn", "scatter", "mobilenet"):
        assert rows[f"throughput {model} b8 float16"]["status"].startswith("skipped: not on GPU")
    for name in ("throughput scatter b8 float32", "throughput mobilenet b8 float32 static xla=on"):
        assert rows[name]["status"] == "skipped: smoke mode"
    cached = rows["input rnn b16 float32 cached input"]
    assert cached["status"] == "ok" and 0 < cached["real_pipeline_share"]
    assert "input-bound" in cached["answer"]
    # The table: the device line, a header, one line per row, and the summary line.
    assert result.stdout.splitlines()[-1].startswith(f"{len(report['rows'])} rows in ")
    assert "not on GPU" in result.stdout


@pytest.mark.integration
def test_the_smoke_run_keeps_its_budget_beside_a_busy_process(tfrecord_dir, tmp_path):
    """On a loaded CPU rows take longer and some are killed or skipped, but the check still ends in time
    and its JSON lists every row."""
    output = tmp_path / "device_check.json"
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        started = time.monotonic()
        command = smoke_command(tfrecord_dir, output, "--budget_s=60")
        result = subprocess.run(command, cwd=REPO, env=SMOKE_ENV, capture_output=True, text=True, timeout=300)
        wall = time.monotonic() - started
    finally:
        busy.kill()
        busy.wait()
    assert wall < 60 + 10, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert len(report["rows"]) == len(device_plan.plan()) and report["elapsed_s"] < 63
    assert all(ROW_KEYS <= set(row) for row in report["rows"])
