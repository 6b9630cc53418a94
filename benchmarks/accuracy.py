r"""Accuracy on real held-out drawings, end to end and reproducibly:

  .venv/bin/python benchmarks/accuracy.py [--source=../shared/data/quickdraw] [--work_dir=runs/accuracy]

1. counts distinct key_ids per word over raw ∪ simplified ndjson and keeps the words with >= 100
   (classes.txt, alphabetical);
2. converts them to TFRecords with beam_jobs/make_tfrecords.py (--classes_file, key_id-hash split:
   test 20%, eval 10%);
3. trains with configs/rnn_cpu.flags (checkpoint selection on the eval split only);
4. evaluates the selected checkpoint on the test split and prints top-1, top-3, MAP@3 and wall times.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import subprocess
import sys
import time

MIN_DRAWINGS = 100
EVAL_FRACTION = 0.1
TEST_FRACTION = 0.2
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ndjson_files(source: str) -> list[str]:
    return sorted(
        glob.glob(os.path.join(source, "raw", "*", "*.ndjson"))
        + glob.glob(os.path.join(source, "simplified", "*", "*.ndjson"))
    )


def count_words(source: str) -> dict[str, int]:
    """Distinct key_ids per word over every raw and simplified ndjson file."""
    keys = collections.defaultdict(set)
    for path in ndjson_files(source):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                keys[record["word"]].add(int(record["key_id"]))
    return {word: len(ids) for word, ids in keys.items()}


def write_classes(source: str, path: str) -> list[str]:
    counts = count_words(source)
    words = sorted(word for word, count in counts.items() if count >= MIN_DRAWINGS)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{word}\n" for word in words))
    total = sum(counts[word] for word in words)
    print(f"{len(words)} classes with >= {MIN_DRAWINGS} distinct drawings, {total} drawings -> {path}")
    return words


def convert_with_beam(source: str, classes_file: str, data_dir: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "beam_jobs.make_tfrecords",
            "--runner=DirectRunner",
            "--input="
            + ",".join(os.path.join(source, fmt, "*", "*.ndjson") for fmt in ("raw", "simplified")),
            f"--classes_file={classes_file}",
            f"--eval_fraction={EVAL_FRACTION}",
            f"--test_fraction={TEST_FRACTION}",
            f"--output_dir={data_dir}",
            "--overwrite",  # work_dir/tfrecords from an earlier run of this benchmark
        ],
        check=True,
        cwd=REPO,
    )


def run(command: list[str]) -> float:
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="../shared/data/quickdraw")
    parser.add_argument("--work_dir", default=os.path.join(REPO, "runs", "accuracy"))
    parser.add_argument("--flagfile", default=os.path.join(REPO, "configs", "rnn_cpu.flags"))
    parser.add_argument("--skip_conversion", action="store_true", help="reuse work_dir/tfrecords")
    args, extra_train_flags = parser.parse_known_args()

    data_dir = os.path.join(args.work_dir, "tfrecords")
    model_dir = os.path.join(args.work_dir, "model")
    os.makedirs(data_dir, exist_ok=True)
    started = time.perf_counter()
    if not args.skip_conversion:
        write_classes(args.source, os.path.join(args.work_dir, "classes.txt"))
        convert_with_beam(args.source, os.path.join(args.work_dir, "classes.txt"), data_dir)
    conversion_seconds = time.perf_counter() - started
    python = sys.executable
    train_seconds = run(
        [
            python,
            "-m",
            "quickdraw_tf.train",
            f"--flagfile={args.flagfile}",
            f"--data_dir={data_dir}",
            f"--model_dir={model_dir}",
            *extra_train_flags,
        ]
    )
    eval_seconds = run(
        [
            python,
            "-m",
            "quickdraw_tf.evaluate",
            f"--model_dir={model_dir}",
            f"--data_dir={data_dir}",
            "--split=test",
        ]
    )
    with open(os.path.join(model_dir, "eval_results.json"), encoding="utf-8") as f:
        results = json.load(f)
    print(
        f"test: top-1 {results['top1']:.4f}  top-3 {results['top3']:.4f}  MAP@3 {results['map3']:.4f}  "
        f"on {results['num_examples']} drawings (checkpoint step {results['step']})\n"
        f"wall time: conversion {conversion_seconds:.0f} s, training {train_seconds:.0f} s, "
        f"evaluation {eval_seconds:.0f} s"
    )


if __name__ == "__main__":
    main()
