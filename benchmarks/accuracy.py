r"""Accuracy on real held-out drawings, end to end and reproducibly:

  .venv/bin/python benchmarks/accuracy.py [--source=/work/shared/data/quickdraw] [--work_dir=runs/accuracy]

1. counts distinct key_ids per word over raw ∪ simplified ndjson and keeps the words with >= 100
   (classes.txt, alphabetical);
2. converts them to TFRecords: with beam_jobs/make_tfrecords.py (--converter=beam, the default), or
   with the small stand-in below (--converter=local) that uses the same key_id-hash split
   (quickdraw_tf.splits: test 20%, eval 10%) and prefers a drawing's simplified version;
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
        ],
        check=True,
        cwd=REPO,
    )


def convert_locally(source: str, words: list[str], data_dir: str, num_shards: int = 4) -> None:
    """Stand-in for the Beam job: one drawing per key_id (simplified preferred), hash split."""
    import tensorflow as tf

    from quickdraw_tf import features, ink, splits

    drawings = {}
    for path in ndjson_files(source):  # raw files sort before simplified ones: simplified wins
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if record["word"] in words:
                    drawings[int(record["key_id"])] = record
    writers = {
        (split, i): tf.io.TFRecordWriter(
            os.path.join(data_dir, f"quickdraw-{split}.tfrecord-{i:05d}-of-{num_shards:05d}")
        )
        for split in splits.SPLITS
        for i in range(num_shards)
    }
    counts = collections.Counter()
    for key_id, record in sorted(drawings.items()):
        strokes = simplify_raw(record["drawing"]) if len(record["drawing"][0]) > 2 else record["drawing"]
        split = splits.assign_split(splits.key_hash(key_id), EVAL_FRACTION, TEST_FRACTION)
        example = features.stroke_example(
            ink.to_ink(strokes), words.index(record["word"]), key_id, record["word"]
        )
        writers[split, splits.shard_index(key_id, num_shards)].write(example.SerializeToString())
        counts[split] += 1
    for writer in writers.values():
        writer.close()
    with open(os.path.join(data_dir, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{word}\n" for word in words))
    print(f"local conversion: {dict(counts)}")


def simplify_raw(strokes: list) -> list:
    """Google's simplification of a raw drawing (align, scale to 0-255, RDP with epsilon 2)."""
    import numpy as np

    from quickdraw_tf import ink

    if hasattr(ink, "simplify"):
        return ink.simplify(strokes)
    points = [np.asarray(stroke[:2], np.float64).T for stroke in strokes]
    everything = np.concatenate(points)
    lower = everything.min(axis=0)
    scale = 255.0 / max(float((everything.max(axis=0) - lower).max()), 1.0)
    simplified = []
    for stroke in points:
        kept = _rdp((stroke - lower) * scale, 2.0)
        simplified.append(
            [np.round(kept[:, 0]).astype(int).tolist(), np.round(kept[:, 1]).astype(int).tolist()]
        )
    return simplified


def _rdp(points, epsilon: float):
    import numpy as np

    if len(points) < 3:
        return points
    start, end = points[0], points[-1]
    direction = end - start
    norm = np.hypot(*direction)
    offsets = points - start
    if norm == 0:
        distances = np.hypot(offsets[:, 0], offsets[:, 1])
    else:
        distances = np.abs(direction[0] * offsets[:, 1] - direction[1] * offsets[:, 0]) / norm
    index = int(np.argmax(distances))
    if distances[index] <= epsilon:
        return np.stack([start, end])
    return np.concatenate([_rdp(points[: index + 1], epsilon)[:-1], _rdp(points[index:], epsilon)])


def run(command: list[str]) -> float:
    print("$", " ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/work/shared/data/quickdraw")
    parser.add_argument("--work_dir", default=os.path.join(REPO, "runs", "accuracy"))
    parser.add_argument("--flagfile", default=os.path.join(REPO, "configs", "rnn_cpu.flags"))
    parser.add_argument("--converter", choices=("beam", "local"), default="beam")
    parser.add_argument("--skip_conversion", action="store_true", help="reuse work_dir/tfrecords")
    args, extra_train_flags = parser.parse_known_args()

    data_dir = os.path.join(args.work_dir, "tfrecords")
    model_dir = os.path.join(args.work_dir, "model")
    os.makedirs(data_dir, exist_ok=True)
    started = time.perf_counter()
    if not args.skip_conversion:
        words = write_classes(args.source, os.path.join(args.work_dir, "classes.txt"))
        if args.converter == "beam":
            convert_with_beam(args.source, os.path.join(args.work_dir, "classes.txt"), data_dir)
        else:
            convert_locally(args.source, words, data_dir)
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
