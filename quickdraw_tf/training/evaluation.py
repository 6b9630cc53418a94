"""Evaluation of a trained model on one split: top-1/3/5, MAP@3, balanced top-1, per-class recall,
confusion matrix (the library half of `python -m quickdraw_tf.evaluate`, which prints and exits).

Writes model_dir/eval_results.json (keys top1, top3, top5, map3, balanced_top1, num_examples, per_class,
...), model_dir/confusion_matrix_<split>.png and TensorBoard summaries under model_dir/eval_<split>/.
Only the shards data_dir's manifest.json lists are read, after checking their sizes and counts
(input_pipeline.split_files); any mismatch, or a corrupt record, is a one-line error naming the file.
The model is rebuilt from model_dir/config.json and restored from a checkpoint: best (the eval-MAP@3
selected one; the latest if there is none), latest, or a checkpoint path.
"""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf

from quickdraw_tf.pictures import charts
from quickdraw_tf.training import input_pipeline, metrics, run_dir, train_outputs


def _accumulate(model: keras.Model, dataset: tf.data.Dataset, num_classes: int) -> tuple[dict, np.ndarray]:
    # The dataset's spec (None for batch and time) keeps one trace for all bucket lengths.
    @tf.function(input_signature=list(dataset.element_spec))
    def batch_results(inputs, labels):
        logits = model(inputs, training=False)
        sums = metrics.classification_sums(logits, labels)
        sums["top5"] = tf.reduce_sum(metrics.top_k_correct(logits, labels, 5))
        confusion = tf.math.confusion_matrix(labels, tf.argmax(logits, -1), num_classes, dtype=tf.int64)
        return sums, confusion

    totals, confusion = {}, np.zeros((num_classes, num_classes), np.int64)
    for inputs, labels in dataset:
        sums, batch_confusion = batch_results(inputs, labels)
        for key, value in sums.items():
            totals[key] = totals.get(key, 0.0) + float(value)
        confusion += batch_confusion.numpy()
    return totals, confusion


def balanced_top1(confusion: np.ndarray) -> float:
    """Mean over classes of their recall (the diagonal over the row sums): balanced accuracy.

    Classes with no example in the split are left out of the mean. Unlike top-1, one large class
    cannot carry it: "always predict the largest class" scores 1 / (number of classes present).
    """
    counts = confusion.sum(axis=1)
    present = counts > 0
    if not present.any():
        raise ValueError("the confusion matrix holds no example")
    return float(np.mean(np.diag(confusion)[present] / counts[present]))


def per_class_lines(results: dict, max_classes: int = 20) -> list[str]:
    """The balanced top-1 line, then one line per class (recall, right/count) when there are few classes."""
    per_class = {word: c for word, c in results["per_class"].items() if c["count"]}
    balanced = results["balanced_top1"]
    lines = [f"balanced top-1 (mean per-class recall) {balanced:.4f} over {len(per_class)} classes"]
    if len(per_class) <= max_classes:
        width = max(len(word) for word in per_class)
        for word, c in per_class.items():
            right = round(c["accuracy"] * c["count"])
            lines.append(f"  {word:<{width}}  recall {c['accuracy']:.2f}  ({right}/{c['count']})")
    return lines


def evaluate(
    model_dir: str,
    data_dir: str | None = None,
    split: str = "test",
    checkpoint: str = "best",
    batch_size: int = 256,
) -> dict:
    """Evaluates, writes eval_results.json, the confusion matrix PNG and summaries; returns the results.

    data_dir None: the data_dir the run trained on, from its config.json.
    """
    if data_dir is not None:  # a bad --data_dir is reported first, before the model_dir is read
        input_pipeline.check_data_dir(data_dir)
        input_pipeline.read_classes(data_dir)
    # A planted link is refused before the evaluation, not after it.
    run_dir.check_target(run_dir.confusion_matrix_file(model_dir, split))
    run_dir.check_target(run_dir.path(model_dir, run_dir.RESULTS_FILE))
    run_dir.refuse_link(run_dir.eval_logs_dir(model_dir, split))
    config = run_dir.read_config(model_dir)
    data_dir = data_dir or config.data_dir
    input_pipeline.check_data_dir(data_dir)
    classes = input_pipeline.read_classes(data_dir)
    model, path, step = run_dir.load_checkpoint(config, len(classes), checkpoint)
    # The run's own input config (truncation, static shapes), as its eval during training read it.
    input_config = dataclasses.replace(config.input, batch_size=batch_size)
    dataset = input_pipeline.make_dataset(data_dir, split, input_config, training=False)
    with input_pipeline.naming_bad_shards(data_dir):
        totals, confusion = _accumulate(model, dataset, len(classes))
    count = int(totals.get("count", 0))
    if not count:
        raise ValueError(f"split '{split}' in {data_dir} has no drawings")
    results = {key: totals[key] / count for key in ("top1", "top3", "top5", "map3")}
    results.update(num_examples=count, split=split, checkpoint=path, step=step, data_dir=data_dir)
    results["balanced_top1"] = balanced_top1(confusion)
    per_class_count = confusion.sum(axis=1)
    results["per_class"] = {
        word: {"accuracy": float(confusion[i, i] / n) if n else None, "count": int(n)}
        for i, (word, n) in enumerate(zip(classes, per_class_count, strict=True))
    }
    png = charts.confusion_matrix_png(confusion, classes)
    results["confusion_matrix_png"] = run_dir.confusion_matrix_file(model_dir, split)
    run_dir.write_file(results["confusion_matrix_png"], png)  # never through a planted link
    run_dir.write_file(run_dir.path(model_dir, run_dir.RESULTS_FILE), json.dumps(results, indent=2))
    _write_summaries(model_dir, split, step, results, png)
    return results


def _write_summaries(model_dir: str, split: str, step: int, results: dict, png: bytes) -> None:
    writer = tf.summary.create_file_writer(run_dir.eval_logs_dir(model_dir, split))
    with writer.as_default(step=step):
        for key in ("top1", "top3", "top5", "map3", "balanced_top1"):
            tf.summary.scalar(key, results[key])
        tf.summary.image("confusion_matrix", train_outputs.png_summary_image(png))
    writer.close()
