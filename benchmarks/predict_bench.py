r"""Predictions/s of `python -m quickdraw_tf.predict` beside `python -m quickdraw_tf.evaluate`'s examples/s,
on the same real drawings, in the same run (both timed as whole processes: start-up, model load,
reading and preprocessing included).

  python benchmarks/predict_bench.py --model_dir=M --input='../shared/data/quickdraw/raw/*/*.ndjson,...'
  python benchmarks/predict_bench.py --model_dir=M_bitmap --format=bitmap_raw \
      --input='../shared/data/quickdraw/bitmap_rawbytes/*/*.bin'

The drawings of the model's classes (distinct key_ids; bitmap rows, the first ones of each file) are
repeated until there are --min_drawings; they are written once as an input file for predict and once
as the `test` split of a TFRecord directory for evaluate (the job's own ink: quickdraw_tf.data.preprocess).
evaluate runs on a copy of model_dir, so the model's own eval_results.json is left alone. Both print
top-1 on the same drawings, which must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __package__ in (None, ""):  # run as `python benchmarks/predict_bench.py`: import from this checkout
    sys.path.insert(0, REPO)

from quickdraw_tf.data import features, formats, layout, preprocess
from quickdraw_tf.inference import prediction_io
from quickdraw_tf.training import run_dir


def load_drawings(patterns: list[str], fmt: str | None, classes: list[str], minimum: int) -> list:
    wanted, seen, drawings = set(classes), set(), []
    inputs = prediction_io.expand_inputs(patterns, fmt)
    per_file = None
    if fmt == "bitmap_raw":  # the same number of rows from each class's file
        per_file = -(-minimum // max(1, sum(formats.word_from_path(i.path) in wanted for i in inputs)))
    for item in inputs:
        taken = 0
        for record in prediction_io.read_records([item]):
            if per_file is not None and taken >= per_file:
                break
            try:
                drawing = formats.parse_record(record)
            except ValueError:
                continue
            if drawing.word in wanted and drawing.key_id not in seen:
                seen.add(drawing.key_id)
                drawings.append(drawing)
                taken += 1
    copies = -(-minimum // len(drawings))
    return drawings * copies


def write_inputs(
    drawings: list, classes: list[str], prep: preprocess.Preprocessing, work: str
) -> tuple[str, str]:
    """(input path or glob for predict, data_dir for evaluate)."""
    import tensorflow as tf

    data_dir = os.path.join(work, "tfrecords")
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{word}\n" for word in classes))
    with tf.io.TFRecordWriter(os.path.join(data_dir, layout.shard_name("test", 0, 1))) as writer:
        for d in drawings:
            index = classes.index(d.word)
            if d.image is not None:
                writer.write(features.serialize_image_example(d.image, index, d.key_id, d.word))
            else:
                ink = preprocess.stroke_ink(d.strokes, prep.normalize, prep.simplify)
                writer.write(features.serialize_stroke_example(ink, index, d.key_id, d.word, d.countrycode))
    kind = "images" if drawings[0].image is not None else "strokes"
    write_manifest(data_dir, len(drawings), len(classes), kind)
    if drawings[0].image is not None:
        by_word: dict = {}
        for d in drawings:
            by_word.setdefault(d.word, []).append(d.image)
        for word, images in by_word.items():
            np.stack(images).astype(np.uint8).tofile(os.path.join(work, f"my.{word}.bench.bin"))
        return os.path.join(work, "my.*.bench.bin"), data_dir
    path = os.path.join(work, "drawings.ndjson")
    with open(path, "w", encoding="utf-8") as f:
        formats.write_ndjson(drawings, f)
    return path, data_dir


def write_manifest(data_dir: str, count: int, num_classes: int, kind: str) -> None:
    """stats.json and manifest.json (last), as make_tfrecords writes them: evaluate reads only the shards
    a manifest lists."""
    stats = {
        "kind": kind,
        "num_classes": num_classes,
        "shard_lengths": {"train": [], "eval": [], "test": [count]},
    }
    with open(os.path.join(data_dir, layout.STATS_FILE), "w", encoding="utf-8") as f:
        json.dump(stats, f)
    manifest = layout.build_manifest(data_dir, sorted(os.listdir(data_dir)), stats, lambda p: open(p, "rb"))
    with open(os.path.join(data_dir, layout.MANIFEST_FILE), "w", encoding="utf-8") as f:
        f.write(layout.manifest_text(manifest))


def timed(command: list[str]) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--input", required=True, help="comma-separated globs")
    parser.add_argument("--format", default=None)
    parser.add_argument("--min_drawings", type=int, default=10_000)
    parser.add_argument("--batch_size", type=int, default=256)
    args = parser.parse_args()

    with open(os.path.join(args.model_dir, "classes.txt"), encoding="utf-8") as f:
        classes = [line.strip() for line in f if line.strip()]
    prep = run_dir.read_preprocessing(args.model_dir)
    drawings = load_drawings(args.input.split(","), args.format, classes, args.min_drawings)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    work = tempfile.mkdtemp(prefix="predict_bench_")
    try:
        input_path, data_dir = write_inputs(drawings, classes, prep, work)
        model_copy = os.path.join(work, "model")
        shutil.copytree(args.model_dir, model_copy, ignore=shutil.ignore_patterns("train", "eval*", "export"))
        python = sys.executable
        eval_seconds, eval_out = timed(
            [
                python,
                "-m",
                "quickdraw_tf.evaluate",
                f"--model_dir={model_copy}",
                f"--data_dir={data_dir}",
                "--split=test",
                f"--batch_size={args.batch_size}",
            ]
        )
        predict_cmd = [
            python,
            "-m",
            "quickdraw_tf.predict",
            f"--model_dir={model_copy}",
            f"--input={input_path}",
            f"--output={os.path.join(work, 'preds.csv')}",
            f"--batch_size={args.batch_size}",
        ]
        if drawings[0].image is not None:
            predict_cmd.append("--format=bitmap_raw")
        predict_seconds, predict_out = timed(predict_cmd)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(drawings)
    eval_top1 = re.search(r"top1 ([0-9.]+)", eval_out).group(1)
    predict_top1 = re.search(r"top-1 ([0-9.]+)", predict_out).group(1)
    print(
        f"model {args.model_dir}: {n} drawings ({n // len(set(d.key_id for d in drawings))} copies of "
        f"{len(set(d.key_id for d in drawings))}), batch {args.batch_size}, load average at start {load}"
    )
    print(f"evaluate.py: {eval_seconds:.1f} s, {n / eval_seconds:,.0f} examples/s, top-1 {eval_top1}")
    print(
        f"predict CLI: {predict_seconds:.1f} s, {n / predict_seconds:,.0f} predictions/s, "
        f"top-1 {predict_top1}  ({predict_seconds / eval_seconds:.2f}x evaluate's time; target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
