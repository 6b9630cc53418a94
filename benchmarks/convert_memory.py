"""Conversion memory: peak RSS and wall time of make_tfrecords on DirectRunner against the input size.

    python -m benchmarks.convert_memory                                  # 100k, 300k, 1M drawings
    python -m benchmarks.convert_memory --sizes=100000,300000 --capped_size=0 --output=mem.json
    python -m benchmarks.convert_memory --sizes=2000,4000 --source='data/sample/simplified/*/*.ndjson'

Input: the real simplified drawings of --source (default: the shared data, 10,810 drawings of 345 words)
replicated with new distinct key_ids (seeded) into --files_per_word ndjson files per word, equally many
drawings per word; only key_id changes. For every size, each of these runs as its own process:

  tutorial  the TF RNN tutorial's single-process loop (benchmarks.convert_bench.tutorial_convert);
  job x1    python -m beam_jobs.make_tfrecords, 1 worker (in-process FnApiRunner);
  job x2    the same with --direct_num_workers=2 --direct_running_mode=multi_processing;
  dask x2   the same with --runner=DaskRunner --dask_workers=2: a LocalCluster of 2 worker processes
            (its scheduler and nannies run in the job's process);

plus one capped run: the job over --capped_size drawings (default: the largest size) with
--train_per_class=1000 (eval and test caps at the job's defaults), beside the smallest uncapped run.
Uncapped runs set every cap above the per-word count, so every drawing is kept (written).

Memory: "tree" is the peak, sampled every --interval seconds with psutil, of the RSS summed over the
process and all its descendants (the SDK worker processes); "maxrss" is what /usr/bin/time -v reports
(wait4's ru_maxrss: the largest single process of the tree, not a sum). For the runs with worker
processes, each process's own sampled peak is printed too (the job's process, each worker). The slope is
the least-squares
fit of peak tree RSS against drawings kept, per worker count, over the sizes. A run whose tree passes
--max_rss_mb is stopped and reported as such (the machine is shared).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict

import psutil

from benchmarks.process_memory import Measured, ProcessPeak, measure

DEFAULT_SOURCE = os.path.join("..", "shared", "data", "quickdraw", "simplified", "**", "*.ndjson")
ONE_WORKER = ("--runner=DirectRunner",)
TWO_WORKERS = ("--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing")
TWO_DASK_WORKERS = ("--runner=DaskRunner", "--dask_workers=2")
RUNNER_FLAGS = {"job1": ONE_WORKER, "job2": TWO_WORKERS, "dask2": TWO_DASK_WORKERS, "capped": ONE_WORKER}
MB = 1e6
# The tutorial loop in its own process, so that its RSS is its own. It imports benchmarks.convert_bench,
# hence Beam, and TensorFlow; it prints its RSS after the imports, then the number of examples written.
TUTORIAL_CHILD = """
import glob, os, sys, psutil
import tensorflow
from benchmarks.convert_bench import tutorial_convert
print("import_rss", psutil.Process().memory_info().rss, flush=True)
paths = sorted(glob.glob(os.path.join(sys.argv[1], "*.ndjson")))
print("written", tutorial_convert(paths, sys.argv[2]), flush=True)
"""


# ---------------------------------------------------------------------------------------------------
# Input: real drawings with new key_ids


def read_by_word(source_glob: str) -> dict[str, list[dict]]:
    """The source's drawings by word, each as its parsed JSON object, in sorted-path and line order."""
    by_word: dict[str, list[dict]] = {}
    for path in sorted(glob.glob(source_glob, recursive=True)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    by_word.setdefault(record["word"], []).append(record)
    if not by_word:
        raise ValueError(f"--source {source_glob} matches no drawing")
    return by_word


def build_input(
    source_glob: str, out_dir: str, num_drawings: int, files_per_word: int = 3, seed: int = 0
) -> list[str]:
    """Writes num_drawings drawings of the source, equally many per word (cycling through each word's
    drawings), each with a new distinct 16-digit key_id, into files_per_word `<word>-<i>.ndjson` files."""
    by_word = read_by_word(source_glob)
    words = sorted(by_word)
    key_ids = iter(random.Random(seed).sample(range(10**15, 10**16), num_drawings))
    paths = []
    for w, word in enumerate(words):
        count = len(range(w, num_drawings, len(words)))
        bounds = [count * part // files_per_word for part in range(files_per_word + 1)]
        for part in range(files_per_word):
            path = os.path.join(out_dir, f"{word}-{part}.ndjson")
            with open(path, "w", encoding="utf-8") as f:
                for i in range(bounds[part], bounds[part + 1]):
                    record = dict(by_word[word][i % len(by_word[word])], key_id=str(next(key_ids)))
                    f.write(json.dumps(record, separators=(",", ":")) + "\n")
            paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------------
# The runs


def job_command(input_dir: str, out_dir: str, caps: dict[str, int], runner_flags: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "beam_jobs.make_tfrecords",
        f"--input={os.path.join(input_dir, '*.ndjson')}",
        f"--output_dir={out_dir}",
        *(f"--{split}_per_class={cap}" for split, cap in caps.items()),
        *runner_flags,
    ]


def uncapped(num_drawings: int) -> dict[str, int]:
    """Caps above any word's count (as benchmarks.convert_bench.job_config): every drawing is written."""
    cap = max(1, num_drawings)
    return {"train": cap, "eval": cap, "test": cap}


def kept_of(out_dir: str) -> int | None:
    """Drawings written, from the job's stats.json (None if the run wrote none)."""
    path = os.path.join(out_dir, "stats.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)["written"]


def run_job(work: str, name: str, input_dir: str, caps: dict[str, int], mode: str, args) -> dict:
    out_dir = os.path.join(work, name)
    workers = 2 if mode in ("job2", "dask2") else 1
    cmd = job_command(input_dir, out_dir, caps, RUNNER_FLAGS[mode])
    measured = measure(cmd, os.path.join(work, f"{name}.log"), args.interval, args.max_rss_mb * MB)
    kept = kept_of(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    return result_row(name, workers, kept, measured, cmd)


def run_tutorial(work: str, name: str, input_dir: str, args) -> dict:
    out_dir = os.path.join(work, name)
    os.makedirs(out_dir)
    cmd = [sys.executable, "-c", TUTORIAL_CHILD, input_dir, out_dir]
    measured = measure(cmd, os.path.join(work, f"{name}.log"), args.interval, args.max_rss_mb * MB)
    shutil.rmtree(out_dir, ignore_errors=True)
    values = dict(
        line.split() for line in measured.stdout.splitlines() if line.startswith(("import_rss", "written"))
    )
    row = result_row(name, 1, int(values["written"]) if "written" in values else None, measured, cmd)
    row["import_rss_mb"] = int(values["import_rss"]) / MB if "import_rss" in values else None
    return row


def result_row(name: str, workers: int, kept: int | None, measured: Measured, cmd: Sequence[str]) -> dict:
    row = asdict(measured)
    tail = row.pop("stdout").strip().splitlines()[-5:]
    shown = ["<tutorial loop>" if "\n" in arg else arg for arg in cmd]  # not the -c code
    row.update(name=name, workers=workers, kept=kept, command=" ".join(shown))
    row["peak_tree_rss_mb"] = measured.peak_tree_rss / MB
    row["maxrss_mb"] = None if measured.maxrss is None else measured.maxrss / MB
    row["load_at_end"] = os.getloadavg()[0]
    row["per_process"] = process_roles(measured.processes)
    if measured.returncode != 0:
        row["log_tail"] = tail
    return row


def process_roles(processes: Sequence[ProcessPeak]) -> list[dict]:
    """Each process of a run with its role: "job" (the command), "worker" (a DirectRunner SDK worker or a
    Dask worker process), "tutorial", or "other" (a shell, multiprocessing's resource tracker); its peak."""
    commands = {p.pid for p in processes}
    rows = []
    for process in processes:
        program = os.path.basename(process.command.split(" ", 1)[0])
        if process.parent not in commands:
            role = "job" if "beam_jobs.make_tfrecords" in process.command else "tutorial"
        elif program in ("sh", "bash"):  # the shell DirectRunner starts each SDK worker through
            role = "other"
        elif "beam_jobs.sdk_worker" in process.command or "spawn_main" in process.command:
            role = "worker"
        else:
            role = "other"
        rows.append({"role": role, "peak_rss_mb": process.peak_rss / MB, "command": process.command[:200]})
    return rows


# ---------------------------------------------------------------------------------------------------
# Slopes


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Slope of the least-squares line through (x, y) points; None with fewer than 2 distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return covariance / sum((x - mean_x) ** 2 for x, _ in points)


def slopes(rows: Sequence[dict]) -> dict[str, dict]:
    """Per run label (job x1, job x2, tutorial), bytes of peak tree RSS per drawing kept: the least-squares
    slope over the sizes, and (peak - peak at the smallest size) / (kept difference) for each larger size.
    Runs stopped at the limit or that kept nothing are left out."""
    out = {}
    for label in sorted({row["label"] for row in rows}):
        points = sorted(
            (row["kept"], row["peak_tree_rss"])
            for row in rows
            if row["label"] == label and row["kept"] and not row["over_limit"]
        )
        if not points:
            continue
        base_kept, base_peak = points[0]
        steps = {
            kept: (peak - base_peak) / (kept - base_kept) for kept, peak in points[1:] if kept != base_kept
        }
        out[label] = {"least_squares": least_squares_slope(points), "from_smallest": steps}
    return out


# ---------------------------------------------------------------------------------------------------
# Report


def print_table(inputs: dict[int, float], rows: Sequence[dict]) -> None:
    print(
        f"\n{'size':>9s} {'input MB':>9s} {'run':>10s} {'kept':>9s} {'wall s':>8s} "
        f"{'tree MB':>9s} {'maxrss MB':>10s} {'load':>5s}"
    )
    for row in rows:
        kept = "-" if row["kept"] is None else str(row["kept"])
        if row["over_limit"]:
            kept = "stopped"
        size = row["size"]
        print(
            f"{size:9d} {inputs[size]:9.1f} {row['label']:>10s} {kept:>9s} {row['wall_s']:8.1f} "
            f"{row['peak_tree_rss_mb']:9.0f} {row['maxrss_mb'] or 0:10.0f} {row['load_at_start']:5.1f}"
        )


def print_per_process(rows: Sequence[dict]) -> None:
    """Each process's own peak, for the runs with worker processes (the job's process, then its workers)."""
    order = {"job": 0, "worker": 1, "other": 2, "tutorial": 3}
    lines = []
    for row in rows:
        if row["workers"] > 1:
            processes = sorted(row["per_process"], key=lambda p: (order[p["role"]], -p["peak_rss_mb"]))
            peaks = ", ".join(f"{p['role']} {p['peak_rss_mb']:.0f}" for p in processes)
            lines.append(f"  {row['size']:9d} {row['label']}: {peaks}")
    if lines:
        print("peak RSS per process, MB (job: the command's own process; worker: an SDK or Dask worker):")
        print("\n".join(lines))


def print_slopes(fitted: dict[str, dict]) -> None:
    for label, fit in fitted.items():
        ls = fit["least_squares"]
        steps = ", ".join(f"{kept}: {value:.0f}" for kept, value in fit["from_smallest"].items())
        ls_text = "-" if ls is None else f"{ls:.0f}"
        print(f"{label}: {ls_text} bytes per drawing kept (least squares); from the smallest size: {steps}")


def print_capped(capped: dict | None, rows: Sequence[dict]) -> None:
    if capped is None:
        return
    base = next((r for r in rows if r["label"] == "job x1" and not r["over_limit"]), None)
    print(
        f"capped: {capped['size']} drawings, --train_per_class=1000: kept {capped['kept']}, "
        f"peak tree {capped['peak_tree_rss_mb']:.0f} MB",
        end="",
    )
    if base is not None:
        print(
            f" vs {base['peak_tree_rss_mb']:.0f} MB uncapped at {base['size']} "
            f"({capped['peak_tree_rss'] / base['peak_tree_rss']:.2f}x)",
            end="",
        )
    print()


# ---------------------------------------------------------------------------------------------------
# Main


LABELS = {
    "tutorial": "tutorial",
    "job1": "job x1",
    "job2": "job x2",
    "dask2": "dask x2",
    "capped": "capped x1",
}
CAPPED = {"train": 1000, "eval": 1000, "test": 1000}  # --train_per_class=1000; eval, test: the job's defaults


def run_mode(work: str, mode: str, size: int, input_dir: str, args) -> dict:
    """One measured run of `mode` over the input of `size` drawings, labelled for the table."""
    name, load = f"{mode}-{size}", os.getloadavg()[0]
    if mode == "tutorial":
        row = run_tutorial(work, name, input_dir, args)
    else:
        caps = CAPPED if mode == "capped" else uncapped(size)
        row = run_job(work, name, input_dir, caps, mode, args)
    row.update(size=size, label=LABELS[mode], mode=mode, load_at_start=load)
    stopped = " (stopped at --max_rss_mb)" if row["over_limit"] else ""
    print(
        f"  {row['label']}: kept {row['kept']}, {row['wall_s']:.1f} s, "
        f"tree {row['peak_tree_rss_mb']:.0f} MB{stopped}",
        flush=True,
    )
    return row


def measure_size(work: str, size: int, args, rows: list[dict]) -> float:
    """Builds the input of one size, runs the configured runs on it; returns the input's MB."""
    input_dir = os.path.join(work, f"input-{size}")
    os.makedirs(input_dir)
    paths = build_input(args.source, input_dir, size, args.files_per_word, args.seed)
    input_mb = sum(os.path.getsize(p) for p in paths) / MB
    print(f"input {size}: {len(paths)} files, {input_mb:.1f} MB", flush=True)
    modes = args.modes.split(",") + (["capped"] if args.capped_size == size else [])
    for mode in modes:
        rows.append(run_mode(work, mode, size, input_dir, args))
    shutil.rmtree(input_dir)
    return input_mb


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,300000,1000000", help="comma-separated drawing counts")
    parser.add_argument(
        "--modes", default="tutorial,job1,job2,dask2", help="comma-separated subset to run per size"
    )
    parser.add_argument(
        "--capped_size",
        type=int,
        default=None,
        help="size of the --train_per_class=1000 run (one of --sizes; default the largest; 0: none)",
    )
    parser.add_argument(
        "--source", default=DEFAULT_SOURCE, help="glob of real simplified ndjson (** allowed)"
    )
    parser.add_argument("--files_per_word", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between RSS samples")
    parser.add_argument("--max_rss_mb", type=float, default=8000, help="stop a run whose tree passes this")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    args.sizes = sorted(int(size) for size in args.sizes.split(","))
    unknown = set(args.modes.split(",")) - {"tutorial", "job1", "job2", "dask2"}
    if unknown or min(args.sizes) < 1:
        parser.error(f"--modes: unknown {', '.join(sorted(unknown))}" if unknown else "--sizes must be >= 1")
    if args.capped_size is None:
        args.capped_size = args.sizes[-1]
    if args.capped_size and args.capped_size not in args.sizes:
        parser.error(f"--capped_size={args.capped_size} is not one of --sizes")
    return args


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    machine = {
        "cpus": os.cpu_count(),
        "memory_gb": psutil.virtual_memory().total / 1e9,
        "loadavg_at_start": os.getloadavg(),
    }
    print(f"CPUs {machine['cpus']}, memory {machine['memory_gb']:.0f} GB, load {machine['loadavg_at_start']}")
    work = tempfile.mkdtemp(prefix="convert_memory-")
    rows: list[dict] = []
    inputs = {}
    try:
        for size in args.sizes:
            inputs[size] = measure_size(work, size, args, rows)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    fitted = slopes([row for row in rows if row["mode"] != "capped"])
    capped = next((row for row in rows if row["mode"] == "capped"), None)
    print_table(inputs, rows)
    print_per_process(rows)
    print_slopes(fitted)
    print_capped(capped, rows)
    machine["loadavg_at_end"] = os.getloadavg()
    results = {
        "argv": sys.argv[1:] if argv is None else list(argv),
        "machine": machine,
        "input_mb": inputs,
        "runs": rows,
        "slopes": fitted,
    }
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
