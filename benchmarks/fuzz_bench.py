r"""The long fuzz run: thousands of mutated real files through the readers and the whole Beam job.

  nice -n 5 .venv/bin/python -m benchmarks.fuzz_bench --files=3600 --work_dir=../runs/fuzz

1. Writes `--files` mutants of the real sample files (tests/fuzz_corpus.py: every format, seeded)
   under work_dir/corpus, stroke formats (ndjson, csv, bin, npz) and bitmaps (npy) in separate folders.
2. Runs every record of every mutant through the job's per-record step in this process: records fuzzed,
   crashes (any exception but a rejection), the slowest record, read = written + rejected.
3. Converts the stroke corpus, then the bitmap corpus, with beam_jobs.make_tfrecords in child processes,
   and as the baseline the unmutated sample (the job's default inputs), in the same run: wall time, exit
   status, peak RSS of each child (os.wait4's ru_maxrss), the job's counts and whether they reconcile.
It also checks that no hostile pickle in the corpus ever ran (it would create work_dir/pwned).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __package__ in (None, ""):  # run as `python benchmarks/fuzz_bench.py`: import from this checkout
    sys.path.insert(0, REPO)

from tests import fuzz_corpus


def write_corpus(count: int, seed: int, corpus: str, marker: str) -> dict[str, int]:
    """The mutants as files: strokes/ and bitmaps/ (the job converts one kind per run); bytes per kind."""
    shutil.rmtree(corpus, ignore_errors=True)
    sizes = {"strokes": 0, "bitmaps": 0, "bitmap_raw (per-record step only)": 0}
    for mutant in fuzz_corpus.mutants(count, seed, marker):
        if mutant.fmt == "bitmap_raw":  # needs --format=bitmap_raw for the whole run: not converted
            sizes["bitmap_raw (per-record step only)"] += len(mutant.data)
            continue
        kind = "bitmaps" if mutant.fmt == "npy" else "strokes"
        os.makedirs(os.path.join(corpus, kind), exist_ok=True)
        with open(os.path.join(corpus, kind, mutant.name), "wb") as f:
            f.write(mutant.data)
        sizes[kind] += len(mutant.data)
    return sizes


def convert(inputs: str | None, output_dir: str) -> dict:
    """make_tfrecords in a child process: exit status, wall time, peak RSS, the job's stats."""
    command = [sys.executable, "-m", "beam_jobs.make_tfrecords", "--runner=DirectRunner"]
    command += [f"--output_dir={output_dir}"] + ([f"--input={inputs}"] if inputs else [])
    shutil.rmtree(output_dir, ignore_errors=True)
    start = time.perf_counter()
    with open(output_dir + ".log", "wb") as log:
        child = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    result = {
        "exit_status": os.waitstatus_to_exitcode(status),
        "wall_s": round(time.perf_counter() - start, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # kilobytes on Linux
    }
    stats_path = os.path.join(output_dir, "stats.json")
    if os.path.exists(stats_path):
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
        result.update({name: stats[name] for name in ("read", "written", "rejected", "reconciled")})
        result["rejected_per_reason"] = stats["rejected_per_reason"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=3600)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--work_dir", default=os.path.join(REPO, os.pardir, "runs", "fuzz"))
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    marker = os.path.join(work, "pwned")
    if os.path.exists(marker):
        os.remove(marker)
    print(f"load average at start: {open('/proc/loadavg').read().split()[:3]}")

    sizes = write_corpus(args.files, args.seed, os.path.join(work, "corpus"), marker)
    print(f"corpus: {args.files} mutated files, bytes per kind {sizes}")

    start = time.perf_counter()
    tally = fuzz_corpus.run_per_record_step(fuzz_corpus.mutants(args.files, args.seed, marker))
    seconds = time.perf_counter() - start
    print(
        f"per-record step: {tally.files} files, {tally.read} records fuzzed in {seconds:.0f} s,"
        f" crashes {len(tally.crashes)}, slowest record {tally.slowest_s:.2f} s,"
        f" read {tally.read} = written {tally.written} + rejected {sum(tally.rejected.values())}:"
        f" {tally.read == tally.written + sum(tally.rejected.values())}"
    )
    print(f"  rejected per reason: {dict(sorted(tally.rejected.items()))}")
    for crash in tally.crashes[:10]:
        print(f"  CRASH {crash}")

    runs = {
        "baseline: the unmutated sample (default inputs)": (None, "out_baseline"),
        "mutated stroke files": (os.path.join(work, "corpus", "strokes", "*"), "out_strokes"),
        "mutated .npy files": (os.path.join(work, "corpus", "bitmaps", "*"), "out_bitmaps"),
    }
    for name, (inputs, output) in runs.items():
        print(f"make_tfrecords, {name}: {convert(inputs, os.path.join(work, output))}")
    print(f"hostile pickle ran: {os.path.exists(marker)}")


if __name__ == "__main__":
    main()
