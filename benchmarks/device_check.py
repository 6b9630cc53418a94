r"""One device check for the first GPU: cuDNN, mixed precision, XLA, throughput and correctness in minutes.

  python -m benchmarks.device_check [--budget_s=420] [--output=device_check.json] [--data_dir=DIR]
                                    [--row_memory_gb=N]
  python -m benchmarks.device_check --smoke --data_dir=DIR      (CPU: tiny models and steps, same code)

Without --data_dir it converts the embedded sample first (make_tfrecords, in a temporary directory).
This process imports no TensorFlow: it supervises. The setup and every row run in their own child
process (benchmarks.device_row) with a hard deadline and a memory ceiling; a row that overruns either is
killed with its whole process group and recorded as "killed: deadline" or "killed: memory" with its
elapsed time and peak RSS, and the next row runs. The budget counts from this process's start; the
check ends within --budget_s plus a few seconds however a row behaves. The rows (device_plan.plan()),
the most important and least likely to hang first:
  cudnn        configs/rnn.flags' training step traced: are the LSTMs cuDNN kernels (CudnnRNNV3)?
               Without a GPU the answer is "not on GPU"; on a GPU a fallback to the generic loop fails.
  correctness  one float32 step (loss and gradient norm) on the GPU and on the CPU, same weights and batch
  finite       a mixed_float16 run of rnn.flags: the loss stays finite over 200 steps
  throughput   rnn / scatter / mobilenet flagfiles at their batch in float32, mixed float16 and bfloat16
               (where the device has them) and with static shapes; then at batch 512; then static shapes
               with XLA (the compiles come last). Training examples/s after warm-up, input pipeline
               included, and peak device memory
  input        the same model fed by a cached in-memory dataset: a real-pipeline rate well below the
               cached rate means the input pipeline starves the device
An error in one row is recorded in its "error" and the next row runs. The JSON is whole after every
row (a temporary name, then a rename); the exit status is 1 when a check failed (cuDNN fallback, a loss
mismatch or a non-finite loss).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable

if __package__ in (None, ""):  # run as `python benchmarks/device_check.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psutil

from benchmarks import device_plan
from benchmarks.bounded_process import run_bounded
from benchmarks.device_plan import Row

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARE = 0.25  # a row's deadline: at least this share of the seconds left, ...
OVERRUN = 2.0  # ... or this many times its guess, whichever is longer (never past what is left)
RESERVE_S = 3.0  # kept for the last kill (at most 2 s) and the last write: the check ends by --budget_s
SETUP_SHARE = 0.25  # the conversion and the setup child may each take this share of the budget
LOG_TAIL_LINES = 15  # of a row's log, kept in its JSON when it failed, crashed or was killed

ChildCommand = Callable[[dict, str], list[str]]  # (spec, result path) -> argv


class Budget:
    """Seconds left of --budget_s (counted from this process's start), each row's deadline, and a guess
    of a row's cost from the rows of the same model already run."""

    def __init__(self, seconds: float, smoke: bool, started: float | None = None):
        self.seconds, self.smoke, self.seen = seconds, smoke, {}
        # The interpreter's start-up and imports count too: a monotonic clock set back by the time since.
        since_start = time.time() - psutil.Process().create_time()
        self.started = time.monotonic() - since_start if started is None else started

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.seconds - RESERVE_S - self.elapsed()

    def guess(self, row: Row) -> float:
        first = device_plan.SMOKE_GUESS_S if self.smoke else device_plan.FIRST_GUESS_S[row.model]
        return self.seen.get(row.model, first) * (2 if row.xla else 1)  # XLA compiles on top of tracing

    def deadline(self, row: Row) -> float:
        """Its share of what is left: a hung row costs at most a quarter of the rest (or twice its guess)."""
        left = self.left()
        return min(left, max(SHARE * left, OVERRUN * self.guess(row)))

    def record(self, row: Row, result: dict) -> None:
        finished = not result["status"].startswith(("killed", "skipped", "crashed"))
        if finished and row.kind in ("throughput", "input", "finite") and not row.xla:
            self.seen[row.model] = max(self.seen.get(row.model, 0.0), result["seconds"])


def row_command(spec: dict, result_path: str) -> list[str]:
    module = [sys.executable, "-m", "benchmarks.device_row"]
    return [*module, f"--spec={json.dumps(spec)}", f"--result={result_path}"]


def run_child(
    command: list[str], deadline_s: float, memory_bytes: float, scratch: str, label: str, result_path: str
) -> dict:
    """The child's result (its JSON) with its wall seconds and peak RSS; a kill, or a crash that left no
    result, becomes the status, with the end of its log."""
    log_path = os.path.join(scratch, f"{label}.log")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    outcome = run_bounded(command, deadline_s, memory_bytes, log_path, env=env, cwd=REPO)
    result = {}
    if outcome.status == "exited" and os.path.exists(result_path):
        with open(result_path, encoding="utf-8") as f:
            result = json.load(f)
    elif outcome.status == "exited":
        result = {"status": "crashed", "error": f"exit status {outcome.returncode}, no result"}
    else:
        result = {"status": outcome.status, "deadline_s": round(deadline_s, 1)}
        result["ceiling_mb"] = round(memory_bytes / 2**20)
        if outcome.returncode is None:
            result["error"] = "still exiting after SIGKILL (left behind)"
    result.update(seconds=round(outcome.seconds, 2), peak_rss_mb=round(outcome.peak_rss_mb))
    if result["status"] not in ("ok", "unsupported") and not result["status"].startswith("skipped"):
        result["log_tail"] = _tail(log_path)
    return result


def _tail(path: str) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.rstrip() for line in f.readlines()[-LOG_TAIL_LINES:]]


def run_plan(
    rows: list[Row],
    setup: dict,
    data_dir: str,
    budget: Budget,
    memory_bytes: float,
    scratch: str,
    after_row: Callable[[list[dict]], None] = lambda rows: None,
    command: ChildCommand = row_command,
) -> list[dict]:
    """Every row, run in its child or skipped; after_row gets the rows so far after each one."""
    sizes, supported = setup.get("batch_sizes", {}), setup.get("supported", {})
    results, names = [], set()
    for index, row in enumerate(rows):
        result = device_plan.resolve(row, sizes, supported, budget.smoke)
        skip = result.pop("skip")
        if skip:
            result["status"] = f"skipped: {skip}"
        elif result["name"] in names:  # a "fast" row that resolved to a float32 row above
            result["status"] = "skipped: same as above"
        elif budget.guess(row) > budget.left():
            result["status"] = "skipped: budget"
        else:
            spec = {"row": dataclasses.asdict(row), "smoke": budget.smoke, "data_dir": data_dir}
            result_path = os.path.join(scratch, f"row{index:02d}.json")
            deadline = budget.deadline(row)
            argv = command(spec, result_path)
            result.update(run_child(argv, deadline, memory_bytes, scratch, f"row{index:02d}", result_path))
            budget.record(row, result)
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
        if not match or "examples_per_second" not in row or "examples_per_second" not in match:
            continue
        share = match["examples_per_second"] / row["examples_per_second"]
        row["real_pipeline_share"] = share
        row["answer"] = (
            f"input-bound: real pipeline at {share:.0%}" if share < 0.9 else f"not input-bound ({share:.0%})"
        )


def format_row(result: dict) -> str:
    def number(key: str, digits: int) -> str:
        value = result.get(key)
        return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"

    note = result.get("answer") or result.get("error") or ""
    if result["status"].startswith("killed"):
        note = f"deadline {result['deadline_s']:.0f} s, ceiling {result['ceiling_mb']} MiB"
    if len(result["status"]) > 24:  # a skip's whole reason
        note = result["status"]
    return (
        f"{result['name']:52s} {result['status'][:24]:24s} {number('examples_per_second', 0):>9s} "
        f"{number('step_ms', 2):>9s} {number('peak_memory_mb', 0):>8s} {number('peak_rss_mb', 0):>8s} "
        f"{number('seconds', 0):>6s}  {note}"
    )


def convert_sample(out_dir: str, budget: Budget, memory_bytes: float, scratch: str) -> str:
    """The embedded sample through the Beam job, in a bounded child (Beam stays out of this process):
    '' when it worked, else why not."""
    command = [sys.executable, "-m", "beam_jobs.make_tfrecords", "--runner=DirectRunner"]
    log_path = os.path.join(scratch, "convert.log")
    deadline = min(budget.left(), SETUP_SHARE * budget.seconds)
    outcome = run_bounded([*command, f"--output_dir={out_dir}"], deadline, memory_bytes, log_path, cwd=REPO)
    if outcome.status == "exited" and outcome.returncode == 0:
        return ""
    why = outcome.status if outcome.status != "exited" else f"exit status {outcome.returncode}"
    return f"converting the sample: {why} after {outcome.seconds:.0f} s: {' | '.join(_tail(log_path)[-3:])}"


def write_report(
    output: str, args: argparse.Namespace, budget: Budget, setup: dict, rows: list[dict]
) -> dict:
    cudnn = next((r for r in rows if r["kind"] == "cudnn"), {})
    report = {
        "device": setup.get("device", {}),
        "setup": {key: value for key, value in setup.items() if key != "device"},
        "smoke": args.smoke,
        "budget_s": args.budget_s,
        "row_memory_gb": args.row_memory_gb,
        "elapsed_s": round(budget.elapsed(), 2),
        "data_dir": args.data_dir or "embedded sample, converted",
        "cudnn": cudnn.get("answer", cudnn.get("status")),
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output + ".tmp", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    os.replace(output + ".tmp", output)  # a reader sees the previous whole file or this one
    return report


def _stop_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_bounded, which kills the row in flight


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget_s", type=float, default=420.0, help="the check ends within this")
    parser.add_argument("--output", default="device_check.json")
    parser.add_argument("--data_dir", default="", help="make_tfrecords output (default: convert the sample)")
    parser.add_argument("--smoke", action="store_true", help="tiny models and steps (a CPU test)")
    half = psutil.virtual_memory().total / 2**30 / 2
    parser.add_argument(
        "--row_memory_gb", type=float, default=round(half, 1),
        help="a row whose processes' RSS passes this is killed (default: half of this machine's memory)",
    )  # fmt: skip
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _stop_on_signal)
    budget = Budget(args.budget_s, args.smoke)
    memory_bytes = args.row_memory_gb * 2**30
    output = os.path.abspath(args.output)
    setup: dict = {}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as scratch:
        data_dir = args.data_dir
        if not data_dir:
            data_dir = os.path.join(scratch, "tfrecords")
            problem = convert_sample(data_dir, budget, memory_bytes, scratch)
            if problem:
                write_report(output, args, budget, {"status": "error", "error": problem}, rows)
                print(f"device_check: {problem}", file=sys.stderr)
                return 1
        spec = {"row": None, "smoke": args.smoke, "data_dir": data_dir}
        setup_path = os.path.join(scratch, "setup.json")
        deadline = min(budget.left(), SETUP_SHARE * budget.seconds)
        setup = run_child(row_command(spec, setup_path), deadline, memory_bytes, scratch, "setup", setup_path)
        write_report(output, args, budget, setup, rows)  # readable from here on, whatever stops the check
        gpu = setup.get("device", {}).get("gpu") or "no GPU"
        print(f"device: {gpu} (setup {setup['status']} in {setup['seconds']:.0f} s)", flush=True)
        header = f"{'row':52s} {'status':24s} {'ex/s':>9s} {'step ms':>9s} {'dev MiB':>8s} {'RSS MiB':>8s}"
        header += f" {'s':>6s}  note"
        print(header, flush=True)
        rows = run_plan(
            device_plan.plan(), setup, data_dir, budget, memory_bytes, scratch,
            after_row=lambda rows: write_report(output, args, budget, setup, rows),
        )  # fmt: skip
    report = write_report(output, args, budget, setup, rows)
    failed = [r["name"] for r in rows if r["status"] == "fail"]
    killed = sum(r["status"].startswith("killed") for r in rows)
    print(f"{len(rows)} rows in {report['elapsed_s']:.0f} s ({killed} killed); wrote {args.output}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
