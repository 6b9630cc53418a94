r"""Test top-1 / top-3 / MAP@3 of models alone and of their ensemble (quickdraw_tf.Predictor, equal or
--weights), on the test split of a make_tfrecords directory (benchmarks/accuracy.py's 24-class split):

  python benchmarks/ensemble_bench.py --data_dir=runs/accuracy/tfrecords \
      --model_dir=runs/rnn_cpu --model_dir=runs/mobilenet_cpu --model_dir=runs/scatter_cpu

The test drawings are read from the TFRecords (the job's ink) and fed to each member as prepare() would
(truncated to the member's max_points), so each member alone reproduces its evaluate.py figures (printed
beside, from its eval_results.json, when that file is for the same split).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as `python benchmarks/ensemble_bench.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf

from quickdraw_tf.inference.predictor import Predictor
from quickdraw_tf.training import example_parsing, input_pipeline


def test_inks(data_dir: str) -> tuple[list[np.ndarray], np.ndarray]:
    inks, labels = [], []
    for record in tf.data.TFRecordDataset(input_pipeline.split_files(data_dir, "test")):
        parsed = tf.io.parse_single_example(record, example_parsing.STROKE_FEATURES)
        inks.append(tf.sparse.to_dense(parsed["ink"]).numpy().reshape(-1, 3))
        labels.append(int(parsed["class_index"][0]))
    return inks, np.array(labels)


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :3]
    hits = top == labels[:, None]
    return {
        "top1": hits[:, 0].mean(),
        "top3": hits.any(axis=1).mean(),
        "map3": (hits / [1, 2, 3]).sum(1).mean(),
    }


def probabilities(predictor: Predictor, inks: list[np.ndarray]) -> np.ndarray:
    prepared = [
        tuple({"ink": ink[: prep.max_points] if prep.max_points else ink} for prep in predictor.preprocessing)
        for ink in inks
    ]
    return predictor.probabilities(prepared, batch_size=256)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--model_dir", action="append", required=True)
    parser.add_argument("--weights", default=None, help="comma-separated, one per --model_dir")
    args = parser.parse_args()
    inks, labels = test_inks(args.data_dir)
    classes = input_pipeline.read_classes(args.data_dir)
    print(f"{len(labels)} test drawings, {len(classes)} classes")
    rows = []
    for model_dir in args.model_dir:
        alone = Predictor.load(model_dir)
        assert list(alone.class_names) == classes, f"{model_dir} has other classes than {args.data_dir}"
        result = scores(probabilities(alone, inks), labels)
        evaluated = os.path.join(model_dir, "eval_results.json")
        note = ""
        if os.path.exists(evaluated):
            with open(evaluated) as f:
                saved = json.load(f)
            if saved.get("split") == "test" and saved.get("num_examples") == len(labels):
                note = f"(evaluate.py: top-1 {saved['top1']:.4f}, MAP@3 {saved['map3']:.4f})"
        rows.append((f"{alone.name} ({model_dir})", result, note))
    weights = [float(w) for w in args.weights.split(",")] if args.weights else None
    ensemble = Predictor.load(args.model_dir, weights)
    rows.append(
        (
            f"ensemble {ensemble.name} weights {weights or 'equal'}",
            scores(probabilities(ensemble, inks), labels),
            "",
        )
    )
    for name, result, note in rows:
        print(
            f"{name}: top-1 {result['top1']:.4f}  top-3 {result['top3']:.4f}  "
            f"MAP@3 {result['map3']:.4f} {note}"
        )
    best = max(rows[:-1], key=lambda row: row[1]["map3"])
    verdict = "beats" if rows[-1][1]["map3"] > best[1]["map3"] else "does NOT beat"
    print(f"the ensemble {verdict} its best member ({best[0]}) on MAP@3")


if __name__ == "__main__":
    main()
