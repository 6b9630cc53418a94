"""Conversion throughput: the TF RNN tutorial's single-process loop vs make_tfrecords (DirectRunner, Dask).

    python -m benchmarks.convert_bench                       # 100k drawings: (a), (b), (c), (d), 3 rounds
    python -m benchmarks.convert_bench --num_drawings=5000 --rounds=1   # a quick smoke run
    python -m benchmarks.convert_bench --modes=baseline,beam2,dask2     # a subset
    python -m benchmarks.convert_bench --profile             # also: where the per-drawing time goes

Input: real simplified drawings from the embedded sample (data/sample/simplified), replicated with new
key_ids into ndjson files (one or more per class, equal counts per class) in a temporary directory.

  (a) baseline: what the tutorial's create_dataset.py does per line (json.loads, its parse_line numpy
      code, a tf.train.Example of ink/shape/class_index, one TFRecordWriter.write into a random shard);
  (b) make_tfrecords, DirectRunner, 1 worker (in-process FnApiRunner);
  (c) make_tfrecords, DirectRunner, --direct_num_workers=2 --direct_running_mode=multi_processing;
  (d) make_tfrecords, --runner=DaskRunner --dask_workers=2: a dask.distributed LocalCluster of 2 worker
      processes, started and stopped by the job (its start and stop are in the time).

The job runs with caps above the per-class count, so it writes every drawing, as the baseline does; it
also does what the baseline does not: validation, duplicate detection, stable splits, stats, 8 features.
Times are wall-clock for the whole conversion, Beam start-up included. Every round runs each mode once,
the order rotated from round to round (so that no mode always runs first, or right after another); the
table gives each mode's median and range over the rounds, and its ratio to (a) of the same round.
TensorFlow is imported by the tutorial's functions only: the Dask workers are spawned processes, which
import this module (the main one) again.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import glob
import io
import json
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as `python benchmarks/convert_bench.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from beam_jobs import runtime  # noqa: F401  (first: quiet TensorFlow and Beam imports)

# isort: split

import numpy as np

from beam_jobs import job_config, make_tfrecords, packed, prepare, records
from quickdraw_tf.data import formats
from tests.tutorial_reference import tutorial_parse_line

SAMPLE_GLOB = os.path.join(job_config.REPO_ROOT, "data", "sample", "simplified", "*", "*.ndjson")


def build_input(out_dir: str, num_drawings: int, files_per_class: int, seed: int = 0) -> list[str]:
    """Writes num_drawings real drawings (sample drawings with fresh key_ids), equally many per class."""
    by_word: dict[str, list[dict]] = {}
    for path in sorted(glob.glob(SAMPLE_GLOB)):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                by_word.setdefault(record["word"], []).append(record)
    words = sorted(by_word)
    rng = random.Random(seed)
    key_ids = rng.sample(range(10**15, 10**16), num_drawings)  # distinct 16-digit ids, like the dataset's
    paths = []
    for w, word in enumerate(words):
        indices = range(w, num_drawings, len(words))
        chunks = np.array_split(np.asarray(indices), files_per_class)
        for part, chunk in enumerate(chunks):
            path = os.path.join(out_dir, f"{word}-{part}.ndjson")
            with open(path, "w", encoding="utf-8") as f:
                for i in chunk:
                    record = dict(by_word[word][i // len(words) % len(by_word[word])], key_id=str(key_ids[i]))
                    f.write(json.dumps(record, separators=(",", ":")) + "\n")
            paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------------
# (a) The tutorial's conversion (tensorflow/models tutorials/rnn/quickdraw/create_dataset.py), per line.


def tutorial_convert(paths: list[str], out_dir: str, num_shards: int = 10, seed: int = 0) -> int:
    """Converts every line the way the tutorial does; returns the number of examples written."""
    import tensorflow as tf

    classes = sorted({os.path.basename(path).rsplit("-", 1)[0] for path in paths})
    rng = random.Random(seed)
    writers = [
        tf.io.TFRecordWriter(os.path.join(out_dir, f"baseline.tfrecord-{i:05d}-of-{num_shards:05d}"))
        for i in range(num_shards)
    ]
    written = 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                ink, class_name = tutorial_parse_line(line)
                feature = {
                    "class_index": tf.train.Feature(
                        int64_list=tf.train.Int64List(value=[classes.index(class_name)])
                    ),
                    "ink": tf.train.Feature(float_list=tf.train.FloatList(value=ink.flatten())),
                    "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=ink.shape)),
                }
                example = tf.train.Example(features=tf.train.Features(feature=feature))
                writers[rng.randint(0, num_shards - 1)].write(example.SerializeToString())
                written += 1
    for writer in writers:
        writer.close()
    return written


# ---------------------------------------------------------------------------------------------------
# (b), (c), (d) The Beam job


def bench_config(input_dir: str, out_dir: str, num_drawings: int) -> job_config.JobConfig:
    cap = max(1, num_drawings)  # above any class's count: every drawing is written, as in the baseline
    return job_config.JobConfig(
        inputs=(os.path.join(input_dir, "*.ndjson"),),
        output_dir=out_dir,
        caps=(("train", cap), ("eval", cap), ("test", cap)),
        num_shards=10,
    )


def run_beam(
    input_dir: str, out_dir: str, num_drawings: int, beam_args: list[str], dask_workers: int | None = None
) -> int:
    """make_tfrecords in this process; beam_args name the runner and its options."""
    config = dataclasses.replace(bench_config(input_dir, out_dir, num_drawings), dask_workers=dask_workers)
    return make_tfrecords.run_job(config, beam_args)["written"]


TWO_DIRECT_WORKERS = [
    "--runner=DirectRunner",
    "--direct_num_workers=2",
    "--direct_running_mode=multi_processing",
]


def profile_per_drawing(paths: list[str], limit: int = 5000, top: int = 18) -> str:
    """cProfile of the job's per-drawing work (no Beam) over the first `limit` records: prepare_batch
    (parse, validate, ink: the fast ndjson path where it applies), packing for the spill, encoding."""
    source_records = []
    for path in paths:
        with open(path, "rb") as f:
            source_records.extend(formats.read_source_records(f, path, "ndjson"))
    source_records = source_records[:limit]
    config = job_config.JobConfig()
    words = sorted({formats.parse_record(r).word for r in source_records})
    class_index = {word: i for i, word in enumerate(words)}

    def convert_all():
        for start in range(0, len(source_records), prepare.BATCH_RECORDS):
            for candidate in prepare.prepare_batch(
                source_records[start : start + prepare.BATCH_RECORDS], config
            ):
                packed_bytes = packed.pack_candidate(candidate, 0.5)
                candidate = packed.unpack_candidate(packed_bytes)[1]
                records.encode(candidate, class_index[candidate.word], "strokes")

    profiler = cProfile.Profile()
    profiler.runcall(convert_all)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the multi_processing SDK workers, the Dask
    cluster's worker processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def timed(fn, *args) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, fn's result)."""
    start, cpu = time.perf_counter(), cpu_seconds()
    count = fn(*args)
    return time.perf_counter() - start, cpu_seconds() - cpu, count


@dataclasses.dataclass
class Timing:
    seconds: float
    cpu: float
    rate: float  # drawings/s
    load: float  # the 1-minute load average when the run started


def rotated(modes: list[str], round_index: int) -> list[str]:
    shift = round_index % len(modes)
    return modes[shift:] + modes[:shift]


def spread(values: list[float], fmt: str) -> str:
    """'median (min–max)' of the values, or the value alone."""
    median = format(statistics.median(values), fmt)
    if len(values) == 1:
        return median
    return f"{median} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def print_table(labels: dict[str, str], results: dict[str, list[Timing]]) -> None:
    """Per mode: median (range) of wall seconds, CPU seconds, drawings/s and the ratio to (a) of the same
    round, and the highest load average any of its runs started at."""
    base = results.get("baseline")
    print(f"\n{'mode':36s} {'wall s':>18s} {'CPU s':>18s} {'drawings/s':>22s} {'vs (a)':>20s} {'load':>5s}")
    for mode, timings in results.items():
        ratios = [t.rate / b.rate for t, b in zip(timings, base, strict=True)] if base else []
        ratio = spread(ratios, ".2f") + "x" if base else "-"
        print(
            f"{labels[mode]:36s} {spread([t.seconds for t in timings], '.1f'):>18s} "
            f"{spread([t.cpu for t in timings], '.1f'):>18s} {spread([t.rate for t in timings], '.0f'):>22s} "
            f"{ratio:>20s} {max(t.load for t in timings):5.1f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num_drawings", type=int, default=100_000)
    parser.add_argument("--files_per_class", type=int, default=2)
    parser.add_argument(
        "--modes", default="baseline,beam1,beam2,dask2", help="comma-separated subset to run, in this order"
    )
    parser.add_argument("--rounds", type=int, default=3, help="runs of each mode, alternating")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the per-drawing functions"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="convert_bench-")
    try:
        input_dir = os.path.join(work, "input")
        os.makedirs(input_dir)
        paths = build_input(input_dir, args.num_drawings, args.files_per_class)
        size_mb = sum(os.path.getsize(path) for path in paths) / 1e6
        print(f"input: {args.num_drawings} drawings, {len(paths)} ndjson files, {size_mb:.0f} MB")
        print(f"CPUs: {os.cpu_count()}")
        modes = {
            "baseline": ("(a) tutorial loop, 1 process", lambda out: tutorial_convert(paths, out)),
            "beam1": (
                "(b) make_tfrecords, 1 worker",
                lambda out: run_beam(input_dir, out, args.num_drawings, ["--runner=DirectRunner"]),
            ),
            "beam2": (
                "(c) make_tfrecords, 2 workers",
                lambda out: run_beam(input_dir, out, args.num_drawings, TWO_DIRECT_WORKERS),
            ),
            "dask2": (
                "(d) make_tfrecords, Dask, 2 workers",
                lambda out: run_beam(input_dir, out, args.num_drawings, ["--runner=DaskRunner"], 2),
            ),
        }
        chosen = args.modes.split(",")
        results: dict[str, list[Timing]] = {mode: [] for mode in chosen}
        for round_index in range(args.rounds):
            for mode in rotated(chosen, round_index):
                label, fn = modes[mode]
                out = os.path.join(work, f"{mode}-{round_index}")
                os.makedirs(out)
                load = os.getloadavg()[0]
                seconds, cpu, count = timed(fn, out)
                if count != args.num_drawings:
                    raise RuntimeError(f"{label} wrote {count} examples, expected {args.num_drawings}")
                if not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
                results[mode].append(Timing(seconds, cpu, count / seconds, load))
                print(f"  round {round_index + 1}: {label}: {seconds:.1f} s", flush=True)
        # CPU: all processes of the run; load: the highest 1-minute load average a run of the mode started
        # at (other work on the machine competes for the same cores and slows the wall-clock figures).
        print_table({mode: modes[mode][0] for mode in chosen}, results)
        if args.profile:
            print("\nper-drawing functions of the job, cProfile sorted by own time:")
            print(profile_per_drawing(paths))
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
