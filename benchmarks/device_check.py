r"""One device check for the first GPU: cuDNN, mixed precision, XLA, throughput and correctness in minutes.

  python -m benchmarks.device_check [--budget_s=420] [--output=device_check.json] [--data_dir=DIR]
  python -m benchmarks.device_check --smoke --data_dir=DIR      (CPU: tiny models and steps, same code)

Without --data_dir it converts the embedded sample first (make_tfrecords, in a temporary directory).
The rows run in order of importance and a row that would not fit in what is left of --budget_s is
skipped ("skipped: budget"), so the script ends within the budget plus one row:
  cudnn        configs/rnn.flags' training step traced: are the LSTMs cuDNN kernels (CudnnRNNV3)?
               Without a GPU the answer is "not on GPU"; on a GPU a fallback to the generic loop fails.
  correctness  one float32 step (loss and gradient norm) on the GPU and on the CPU, same weights and batch
  finite       a mixed_float16 run of rnn.flags: the loss stays finite over 200 steps
  throughput   rnn / scatter / mobilenet flagfiles at their batch and at 512, float32, mixed float16 and
               bfloat16 (where the device has them), static shapes with XLA on and off; training
               examples/s after warm-up, input pipeline included, and peak device memory
  input        the same model fed by a cached in-memory dataset: a real-pipeline rate well below the
               cached rate means the input pipeline starves the device
An error in one row is recorded in its "error" and the next row runs. The table is printed and the JSON
written; the exit status is 1 when a check failed (cuDNN fallback, a loss mismatch or a non-finite loss).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

if __package__ in (None, ""):  # run as `python benchmarks/device_check.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf

from benchmarks import common, device_probes
from quickdraw_tf.training import input_pipeline, trainer

FLAGFILES = {"rnn": "rnn.flags", "scatter": "scatter.flags", "mobilenet": "mobilenet.flags"}
LARGE_BATCH = 512
STATIC_LENGTH = {"rnn": 192, "scatter": 256, "mobilenet": 256}  # static rows: one bucket, this long
# Smoke mode: the same rows on models small enough for a CPU test.
SMOKE_HPARAMS = {
    "rnn": dict(num_conv=(8,), conv_len=(3,), num_layers=1, num_nodes=8),
    "scatter": dict(
        grid_size=8, conv_filters=(8,), dilations=(1,), point_features=8, blocks=(1,), widths=(16,),
        strides=(1,), stem_width=8, cardinality=1,
    ),
    "mobilenet": dict(image_size=32, alpha=0.35),
}  # fmt: skip
SMOKE_BATCH, SMOKE_LARGE_BATCH = 8, 16
# Seconds a row is expected to take before its model was seen (tracing included); then the longest seen.
FIRST_GUESS_S = {"rnn": 30.0, "scatter": 90.0, "mobilenet": 60.0}


@dataclasses.dataclass(frozen=True)
class Row:
    kind: str  # cudnn, correctness, finite, throughput, input
    model: str  # a FLAGFILES key
    batch: str = "own"  # "own" (the flagfile's) or "large"
    precision: str = "off"  # off, float16, bfloat16, or "fast": float16 where supported, else off
    static: bool = False
    xla: bool = False
    cached: bool = False
    smoke: bool = False  # also runs in smoke mode: one row of each kind, on rnn (to stay near a minute)

    def name(self, precision: str, batch_size: int) -> str:
        parts = [self.kind, self.model, f"b{batch_size}", "float32" if precision == "off" else precision]
        if self.static:
            parts.append(f"static xla={'on' if self.xla else 'off'}")
        if self.cached:
            parts.append("cached input")
        return " ".join(parts)


def plan() -> list[Row]:
    """Every row, the most important first: the budget cuts from the end."""
    models = tuple(FLAGFILES)
    rows = [Row(kind, "rnn", smoke=True) for kind in ("cudnn", "correctness")]
    rows += [Row("finite", "rnn", precision="float16", smoke=True)]
    rows += [Row("throughput", m, smoke=m == "rnn") for m in models]
    rows += [Row("throughput", m, precision="float16") for m in models]
    for m in models:
        rnn = m == "rnn"
        rows += [
            Row("throughput", m, static=True),
            Row("throughput", m, static=True, xla=True, smoke=rnn),
        ]
    for m in ("rnn", "mobilenet"):
        rows += [
            Row("throughput", m, batch="large", precision="fast", smoke=m == "rnn"),
            Row("input", m, batch="large", precision="fast", cached=True, smoke=m == "rnn"),
        ]
    rows += [Row("throughput", m, batch="large") for m in ("rnn", "scatter")]
    rows += [Row("throughput", "scatter", batch="large", precision="float16")]
    rows += [Row("throughput", m, precision="bfloat16") for m in models]
    rows += [Row("throughput", m, static=True, xla=True, precision="fast") for m in ("scatter", "mobilenet")]
    return rows


def base_configs(data_dir: str, smoke: bool) -> dict[str, trainer.TrainConfig]:
    """The three GPU flagfiles as `python -m quickdraw_tf.train --flagfile=F` reads them."""
    configs = {}
    for key, flagfile in FLAGFILES.items():
        config = common.flagfile_config(os.path.join(common.REPO, "configs", flagfile), data_dir, "")
        if smoke:
            config = dataclasses.replace(config, hparams={**config.hparams, **SMOKE_HPARAMS[key]})
            config = device_probes.with_input(config, batch_size=SMOKE_BATCH, shuffle_buffer=100)
        configs[key] = dataclasses.replace(config, num_summary_drawings=0)
    return configs


def row_config(row: Row, base: trainer.TrainConfig, precision: str, smoke: bool) -> trainer.TrainConfig:
    config = dataclasses.replace(base, mixed_precision=precision, jit_compile=row.xla)
    if row.batch == "large":
        config = device_probes.with_input(config, batch_size=SMOKE_LARGE_BATCH if smoke else LARGE_BATCH)
    if row.static:
        length = STATIC_LENGTH[row.model]
        config = device_probes.with_input(config, bucket_boundaries=(length,), static_shapes=True)
    return config


class Budget:
    """Seconds left, and a guess of each row's cost from the rows of the same model already run."""

    def __init__(self, seconds: float, smoke: bool):
        self.seconds, self.smoke, self.started, self.seen = seconds, smoke, time.perf_counter(), {}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def guess(self, row: Row) -> float:
        guess = self.seen.get(row.model, 1.0 if self.smoke else FIRST_GUESS_S[row.model])
        return guess * (2 if row.xla else 1)  # XLA compiles the step on top of tracing it

    def record(self, row: Row, seconds: float) -> None:
        if row.kind in ("throughput", "input", "finite") and not row.xla:
            self.seen[row.model] = max(self.seen.get(row.model, 0.0), seconds)


def run_row(row: Row, config: trainer.TrainConfig, num_classes: int, smoke: bool) -> dict:
    if row.kind == "cudnn":
        return device_probes.cudnn_probe(config, num_classes)
    if row.kind == "correctness":
        batch = next(iter(input_pipeline.make_dataset(config.data_dir, "eval", config.input, training=False)))
        return device_probes.one_step_on_each_device(config, num_classes, batch, tolerance=1e-4)
    if row.kind == "finite":
        return device_probes.finite_losses(config, num_classes, steps=4 if smoke else 200, chunks=10)
    steps = dict(warmup_steps=2, min_seconds=0.0, max_steps=2) if smoke else {}
    steps = steps or dict(warmup_steps=10, min_seconds=3.0, max_steps=3000)
    cached = (3 if smoke else 20) if row.cached else 0
    return device_probes.throughput(config, num_classes, cached_batches=cached, **steps)


def run_plan(
    data_dir: str, budget: Budget, smoke: bool, after_row: Callable[[list[dict]], None] = lambda rows: None
) -> list[dict]:
    """Every row of plan(), run or skipped; after_row gets the rows so far after each one."""
    configs = base_configs(data_dir, smoke)
    num_classes = len(input_pipeline.read_classes(data_dir))
    supported = device_probes.supported_precisions()
    results, names = [], set()
    for row in plan():
        precision = row.precision
        if precision == "fast":
            precision = "float16" if not supported["float16"] else "off"
        config = row_config(row, configs[row.model], precision, smoke)
        result = {"name": row.name(precision, config.input.batch_size), **dataclasses.asdict(row)}
        result.update(precision=precision, batch_size=config.input.batch_size)
        if supported[precision] and row.kind in ("throughput", "input"):  # "where supported"
            result["status"] = f"skipped: {supported[precision]}"
        elif smoke and not row.smoke:
            result["status"] = "skipped: smoke mode"
        elif result["name"] in names:  # a "fast" row that resolved to a float32 row above
            result["status"] = "skipped: same as above"
        elif budget.elapsed() + budget.guess(row) > budget.seconds:
            result["status"] = "skipped: budget"
        else:
            started = time.perf_counter()
            try:
                result.update(run_row(row, config, num_classes, smoke))
            except Exception as error:  # one row's failure must not stop the others
                message = str(error).strip().splitlines()[0] if str(error).strip() else ""
                unsupported = isinstance(error, trainer.JitUnsupportedError)
                result.update(status="unsupported" if unsupported else "error")
                result["error"] = f"{type(error).__name__}: {message}"[:500]
            result["seconds"] = time.perf_counter() - started
            budget.record(row, result["seconds"])
        results.append(result)
        names.add(result["name"])
        _add_input_verdicts(results)
        print(format_row(result), flush=True)
        after_row(results)
    return results


def _add_input_verdicts(results: list[dict]) -> None:
    """Each cached-input row gets the share of its rate that the real pipeline reached."""
    real = {r["name"]: r for r in results if r["kind"] == "throughput"}
    for row in results:
        if row["kind"] != "input" or "real_pipeline_share" in row:
            continue
        name = row["name"].replace("input ", "throughput ", 1).removesuffix(" cached input")
        match = real.get(name)
        if not match or "examples_per_second" not in row:
            continue
        if "examples_per_second" not in match:
            continue
        share = match["examples_per_second"] / row["examples_per_second"]
        row["real_pipeline_share"] = share
        row["answer"] = (
            f"input-bound: real pipeline at {share:.0%}" if share < 0.9 else f"not input-bound ({share:.0%})"
        )


def format_row(result: dict) -> str:
    def number(key: str, digits: int) -> str:
        value = result.get(key)
        return f"{value:.{digits}f}" if isinstance(value, float) else "-"

    note = result.get("answer") or result.get("error") or ""
    if len(result["status"]) > 24:  # a skip's whole reason
        note = result["status"]
    return (
        f"{result['name']:52s} {result['status'][:24]:24s} {number('examples_per_second', 0):>9s} "
        f"{number('step_ms', 2):>9s} {number('peak_memory_mb', 0):>8s}  {note}"
    )


def device_info() -> dict:
    return {
        "gpu": device_probes.gpu_name(),
        "devices": [d.name for d in tf.config.list_logical_devices()],
        "tensorflow": tf.__version__,
        "tf32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "python": platform.python_version(),
        "cuda_build": tf.test.is_built_with_cuda(),
    }


def convert_sample(out_dir: str) -> None:
    """The embedded sample through the Beam job (a subprocess: Beam stays out of this process)."""
    command = [
        sys.executable,
        "-m",
        "beam_jobs.make_tfrecords",
        "--runner=DirectRunner",
        f"--output_dir={out_dir}",
    ]
    result = subprocess.run(command, cwd=common.REPO, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"device_check: converting the sample failed: {result.stderr.strip()[-1000:]}")


def write_report(args: argparse.Namespace, budget: Budget, rows: list[dict]) -> dict:
    cudnn = next((r for r in rows if r["kind"] == "cudnn"), {})
    report = {
        "device": device_info(),
        "smoke": args.smoke,
        "budget_s": args.budget_s,
        "elapsed_s": budget.elapsed(),
        "data_dir": args.data_dir or "embedded sample, converted",
        "cudnn": cudnn.get("answer", cudnn.get("status")),
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output + ".tmp", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    os.replace(args.output + ".tmp", args.output)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget_s", type=float, default=420.0, help="rows that would not fit are skipped")
    parser.add_argument("--output", default="device_check.json")
    parser.add_argument("--data_dir", default="", help="make_tfrecords output (default: convert the sample)")
    parser.add_argument("--smoke", action="store_true", help="tiny models and steps (a CPU test)")
    args = parser.parse_args()
    budget = Budget(args.budget_s, args.smoke)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir
        if not data_dir:
            data_dir = os.path.join(scratch, "tfrecords")
            convert_sample(data_dir)
        print(f"{'row':52s} {'status':24s} {'ex/s':>9s} {'step ms':>9s} {'peak MiB':>8s}  note", flush=True)
        # The JSON is rewritten after every row: a run stopped from outside keeps what it measured.
        rows = run_plan(data_dir, budget, args.smoke, lambda rows: write_report(args, budget, rows))
    report = write_report(args, budget, rows)
    failed = [r["name"] for r in rows if r["status"] == "fail"]
    print(f"{len(rows)} rows in {report['elapsed_s']:.0f} s; wrote {args.output}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
