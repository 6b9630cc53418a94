"""benchmarks/device_check.py in CPU smoke mode: the same rows on tiny models, the JSON it writes, and the
cuDNN probe answering "not on GPU" without crashing."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW_KEYS = {"name", "kind", "model", "precision", "batch_size", "static", "xla", "cached", "status"}


@pytest.mark.integration
def test_device_check_smoke_on_cpu(tfrecord_dir, tmp_path):
    output = tmp_path / "device_check.json"
    env = {**os.environ, "PYTHONPATH": REPO, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "benchmarks.device_check", "--smoke", f"--data_dir={tfrecord_dir}"]
    result = subprocess.run(
        [*command, f"--output={output}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    report = json.loads(output.read_text())
    assert {"device", "smoke", "budget_s", "elapsed_s", "cudnn", "rows"} <= set(report)
    assert report["smoke"] is True and report["device"]["gpu"] is None
    assert report["cudnn"] == "not on GPU"
    rows = {row["name"]: row for row in report["rows"]}
    assert all(ROW_KEYS <= set(row) for row in rows.values())
    statuses = {row["status"] for row in rows.values()}
    assert "error" not in statuses and "fail" not in statuses, [r for r in rows.values() if "error" in r]

    # Every kind of row ran (on rnn): the probes, plain and XLA throughput, cached input.
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
    # The table: a header, one line per row, and the summary line.
    assert result.stdout.splitlines()[-1].startswith(f"{len(report['rows'])} rows in ")
    assert "not on GPU" in result.stdout


def test_a_tiny_budget_skips_the_rows_that_do_not_fit(tfrecord_dir, monkeypatch):
    from absl import flags

    from benchmarks import device_check

    monkeypatch.setattr(device_check.Budget, "guess", lambda self, row: 10.0)
    try:
        rows = device_check.run_plan(tfrecord_dir, device_check.Budget(5.0, smoke=True), smoke=True)
    finally:
        flags.FLAGS.unparse_flags()  # the flagfiles were read with train.py's flags
    assert len(rows) == len(device_check.plan())
    assert all(row["status"].startswith("skipped: ") for row in rows)
    assert rows[0]["name"] == "cudnn rnn b8 float32" and rows[0]["status"] == "skipped: budget"
