r"""What nobody reports for Sketch-RNN, measured on the 24-category benchmark split (benchmarks/accuracy.py):

  .venv/bin/python benchmarks/generate_eval.py --data_dir=runs/accuracy/tfrecords \
      --model_dir=runs/sketch_cpu --classifier_dir=runs/accuracy/model \
      [--single_model_dir=runs/sketch_monkey --single_data_dir=runs/monkey/tfrecords] [--output=FILE.json]

1. reconstruction loss (offset + pen, per max_seq_len as in the paper) and KL per class on eval and test
   (z = the encoder's mean);
2. recognisability: top-1 / top-3 of the classifier (an `rnn` run trained on the same classes, e.g.
   configs/rnn_cpu.flags) on --samples drawings per class at each temperature, fed exactly what the Beam
   job stores (Google's simplification, then ink.to_ink), beside its top-1 on the real test drawings
   (the baseline, measured in the same run);
3. diversity: mean pairwise Euclidean distance of the drawings in the classifier's embedding (the summed
   BiLSTM outputs), per class then averaged, for samples and for real test drawings;
4. with --single_model_dir: the same config trained on one class, against the conditioned model on
   that class (reconstruction on its test drawings, recognisability at temperature 0.5).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

if __package__ in (None, ""):  # run as `python benchmarks/generate_eval.py`: import from this checkout
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras
import numpy as np
import tensorflow as tf

from quickdraw_tf.data import ink, shape_distance
from quickdraw_tf.inference.generator import load_generator
from quickdraw_tf.models import sketch_sampling
from quickdraw_tf.pictures import sample_grids
from quickdraw_tf.training import input_pipeline, run_dir


def per_class_losses(model, data_dir: str, split: str, classes: list[str], batch_size: int = 64) -> dict:
    """{word: {"recon", "kl", "count"}} over the drawings of one split the model does not drop."""
    config = input_pipeline.InputConfig(batch_size=batch_size, bucket_boundaries=(32, 64, 128))
    sums = collections.defaultdict(lambda: np.zeros(3))
    example_losses = tf.function(model.example_losses, reduce_retracing=True)  # eager RNNs crawl
    for inputs, labels in input_pipeline.make_dataset(data_dir, split, config, training=False):
        losses = {k: v.numpy() for k, v in example_losses(inputs, labels).items()}
        recon = losses["offset_loss"] + losses["pen_loss"]
        for i, label in enumerate(labels.numpy()):
            if losses["keep"][i]:
                sums[classes[label]] += (recon[i], losses["kl"][i], 1)
    return {w: {"recon": s[0] / s[2], "kl": s[1] / s[2], "count": int(s[2])} for w, s in sorted(sums.items())}


class Classifier:
    """The recognizer: an `rnn` training run, fed padded delta ink as its training did."""

    def __init__(self, model_dir: str, data_dir: str):
        config = run_dir.read_config(model_dir)
        self.classes = input_pipeline.read_classes(data_dir)
        self.model, _, self.step = run_dir.load_checkpoint(config, len(self.classes))
        self.max_length = config.input.max_length or None
        embedding = self.model.get_layer("sum_over_time").output
        self.both = tf.function(
            keras.Model(self.model.inputs, [self.model.output, embedding]), reduce_retracing=True
        )

    def __call__(self, inks: list[np.ndarray], batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(logits [N, C], embeddings [N, D]) of delta inks."""
        logits, embeddings = [], []
        for start in range(0, len(inks), batch_size):
            chunk = [x[: self.max_length] for x in inks[start : start + batch_size]]
            length = max(len(x) for x in chunk)
            padded = np.stack([np.pad(x, [[0, length - len(x)], [0, 0]]) for x in chunk])
            out = self.both({"ink": padded, "length": np.array([len(x) for x in chunk], np.int32)})
            logits.append(out[0].numpy())
            embeddings.append(out[1].numpy())
        return np.concatenate(logits), np.concatenate(embeddings)


def stored_ink(sample: sketch_sampling.Sample, word: str) -> np.ndarray:
    """What the Beam job would store for this drawing: simplified, then to_ink."""
    return ink.to_ink(sample.to_drawing(word, 0).strokes)


def topk(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    order = np.argsort(-logits, axis=1)
    return float(np.mean(order[:, 0] == labels)), float(np.mean((order[:, :3] == labels[:, None]).any(1)))


def mean_pairwise_distance(embeddings: np.ndarray) -> float:
    squares = (embeddings**2).sum(1)
    d2 = np.maximum(squares[:, None] + squares[None, :] - 2 * embeddings @ embeddings.T, 0)
    n = len(embeddings)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0


def split_inks(data_dir: str, split: str) -> tuple[list[np.ndarray], np.ndarray]:
    """(delta inks, labels) of every drawing of one split, in the data dir's class indices."""
    config = input_pipeline.InputConfig(batch_size=256, bucket_boundaries=())
    inks, labels = [], []
    for inputs, batch_labels in input_pipeline.make_dataset(data_dir, split, config, training=False):
        for x, n in zip(inputs["ink"].numpy(), inputs["length"].numpy(), strict=True):
            inks.append(x[:n])
        labels.extend(batch_labels.numpy())
    return inks, np.array(labels)


def real_test(classifier: Classifier, data_dir: str) -> dict:
    """The classifier on the real test drawings: top-1/3 and per-class embedding diversity."""
    inks, labels = split_inks(data_dir, "test")
    logits, embeddings = classifier(inks)
    top1, top3 = topk(logits, labels)
    diversity = np.mean([mean_pairwise_distance(embeddings[labels == c]) for c in np.unique(labels)])
    return {"top1": top1, "top3": top3, "diversity": float(diversity), "count": len(labels)}


def recognisability(
    model, classes, classifier, words, samples, temperature, seed, style=None, keep_inks=False
) -> dict:
    """Samples `samples` drawings of each word (one batch), then the classifier's top-1/3 and diversity.
    style: sketch_sampling.sample's sigma_scale and pen_temperature (default: its own)."""
    indices = np.repeat([classes.index(w) for w in words], samples)
    drawn = sketch_sampling.sample(model, indices, len(indices), temperature, seed, **(style or {}))
    inks = [stored_ink(s, classes[i]) for s, i in zip(drawn, indices, strict=True)]
    labels = np.array([classifier.classes.index(classes[i]) for i in indices])
    logits, embeddings = classifier(inks)
    top1, top3 = topk(logits, labels)
    per_class = {}
    for word in words:
        mine = labels == classifier.classes.index(word)
        per_class[word] = topk(logits[mine], labels[mine])[0]
    diversity = np.mean([mean_pairwise_distance(embeddings[labels == c]) for c in np.unique(labels)])
    lengths = [len(s.ink) for s in drawn]
    result = {
        "top1": top1,
        "top3": top3,
        "diversity": float(diversity),
        "per_class_top1": per_class,
        "mean_moves": float(np.mean(lengths)),
        "empty": int(sum(n == 0 for n in lengths)),
        "ended": float(np.mean([s.ended for s in drawn])),
    }
    if keep_inks:
        result["inks"] = (inks, indices)
    return result


def nearest_training_figures(data_dir: str, classes: list[str], sampled: tuple, limit: int) -> dict:
    """Chamfer distance to the nearest training drawing of the same class (data/shape_distance.py),
    for up to `limit` samples a class and for every real test drawing: median and 10th percentile."""
    train_inks, train_labels = split_inks(data_dir, "train")
    test_inks, test_labels = split_inks(data_dir, "test")
    sample_inks, sample_labels = sampled
    figures = {}
    pairs = (("samples", sample_inks, sample_labels), ("real_test", test_inks, test_labels))
    for name, inks, labels in pairs:
        distances = []
        for label in np.unique(labels):
            mine = [x for x, y in zip(inks, labels, strict=True) if y == label][:limit]
            training = [x for x, y in zip(train_inks, train_labels, strict=True) if y == label]
            distances.extend(shape_distance.nearest_distances(mine, training))
        figures[name] = {
            "median": float(np.median(distances)),
            "p10": float(np.percentile(distances, 10)),
            "count": len(distances),
        }
    return figures


def write_grid(model, classes: list[str], path: str, seed: int, per_class: int = 8) -> None:
    indices = np.repeat(np.arange(len(classes)), per_class)
    drawn = sketch_sampling.sample(model, indices, len(indices), 0.5, seed)
    rows = [(word, [s.strokes for s in drawn[i * per_class :][:per_class]]) for i, word in enumerate(classes)]
    with open(path, "wb") as f:
        f.write(sample_grids.labelled_rows_png(rows))


def losses_summary(per_class: dict) -> dict:
    counts = np.array([v["count"] for v in per_class.values()])
    mean = {k: float(np.average([v[k] for v in per_class.values()], weights=counts)) for k in ("recon", "kl")}
    return {**mean, "count": int(counts.sum()), "per_class": per_class}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="the benchmark split's TFRecords")
    parser.add_argument("--model_dir", required=True, help="the class-conditioned sketch_rnn run")
    parser.add_argument("--classifier_dir", required=True, help="an rnn run trained on the same classes")
    parser.add_argument("--single_model_dir", help="the same config trained on one class")
    parser.add_argument("--single_data_dir", help="that one class's TFRecords")
    parser.add_argument("--checkpoint", default="best", help="of --model_dir: best, latest or a path")
    parser.add_argument("--single_checkpoint", default="best", help="of --single_model_dir")
    parser.add_argument(
        "--compare_checkpoint", help="the conditioned model's checkpoint for the one-class comparison "
        "(default: --checkpoint); give one of the same step as --single_checkpoint"
    )
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--temperatures", default="0.2,0.5,0.8")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sigma_scale", choices=("temperature", "sqrt_temperature"), default="temperature",
        help="what the normals' sigmas are multiplied by when sampling (magenta: the temperature)",
    )
    parser.add_argument(
        "--pen_temperature", default="own",
        help="'own': the sampler's default (1.0); 'temperature': sharpened like the rest, as magenta",
    )
    parser.add_argument("--splits", default="eval,test", help="splits whose losses are measured")
    parser.add_argument("--nearest", type=int, default=50,
                        help="samples a class (T=0.5) measured against the training set; 0: none")
    parser.add_argument("--output", help="write the figures here as JSON")
    parser.add_argument("--grid_png", help="write 8 samples per class at temperature 0.5 here")
    args = parser.parse_args()

    started = time.perf_counter()
    model, classes, step = load_generator(args.model_dir, args.checkpoint, args.data_dir)
    classifier = Classifier(args.classifier_dir, args.data_dir)
    results = {"model_step": step, "classifier_step": classifier.step, "samples_per_class": args.samples}
    for split in [s for s in args.splits.split(",") if s]:
        summary = results[f"losses_{split}"] = losses_summary(
            per_class_losses(model, args.data_dir, split, classes)
        )
        print(f"{split}: recon {summary['recon']:.4f} KL {summary['kl']:.4f} on {summary['count']} drawings")
    real = results["real_test"] = real_test(classifier, args.data_dir)
    print(f"real test drawings: top-1 {real['top1']:.4f} top-3 {real['top3']:.4f} "
          f"diversity {real['diversity']:.3f} ({real['count']} drawings)", flush=True)
    for temperature in (float(t) for t in args.temperatures.split(",")):
        style = {}
        if args.sigma_scale == "sqrt_temperature":
            style["sigma_scale"] = float(np.sqrt(temperature))
        if args.pen_temperature != "own":
            pen = args.pen_temperature
            style["pen_temperature"] = None if pen == "temperature" else float(pen)
        r = recognisability(
            model, classes, classifier, classes, args.samples, temperature, args.seed, style,
            keep_inks=args.nearest > 0 and temperature == 0.5,
        )
        sampled = r.pop("inks", None)
        r["ratio"] = r["top1"] / real["top1"]
        results[f"samples_t{temperature}"] = r
        print(f"samples at T={temperature}: top-1 {r['top1']:.4f} ({r['ratio']:.0%} of real) "
              f"top-3 {r['top3']:.4f} diversity {r['diversity']:.3f} mean moves {r['mean_moves']:.1f} "
              f"ended {r['ended']:.1%} empty {r['empty']}", flush=True)
        if sampled:
            near = results["nearest_training_t0.5"] = nearest_training_figures(
                args.data_dir, classes, sampled, args.nearest
            )
            print("distance to the nearest training drawing (Chamfer, unit box), median / 10th percentile: "
                  f"samples {near['samples']['median']:.4f} / {near['samples']['p10']:.4f}, "
                  f"real test {near['real_test']['median']:.4f} / {near['real_test']['p10']:.4f}", flush=True)
    if "samples_t0.5" in results:
        print("per class at T=0.5: " + ", ".join(
            f"{w} {v:.2f}" for w, v in sorted(results["samples_t0.5"]["per_class_top1"].items())))
    if args.grid_png:
        write_grid(model, classes, args.grid_png, args.seed)
    if args.single_model_dir:
        if args.compare_checkpoint:
            checkpoint = args.compare_checkpoint
            model, classes, step = load_generator(args.model_dir, checkpoint, args.data_dir)
        results["single_class"] = single_class(args, model, classes, classifier)
        results["single_class"]["conditioned_step"] = step
    results["seconds"] = time.perf_counter() - started
    print(f"wall time {results['seconds']:.0f} s")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


def single_class(args, model, classes, classifier) -> dict:
    """The conditioned model against the one-class model, on that class."""
    single, single_classes, step = load_generator(
        args.single_model_dir, args.single_checkpoint, args.single_data_dir
    )
    word = single_classes[0]
    out = {"word": word, "single_step": step}
    for name, m, cls in (("conditioned", model, classes), ("single", single, single_classes)):
        # The one-class data's labels are 0: the conditioned model gets its own index of `word`.
        losses = class_losses(m, args.single_data_dir, cls.index(word), word)
        # recon is divided by each model's own max_seq_len: times it, nats per drawing, which compare.
        losses[word]["recon_nats"] = losses[word]["recon"] * int(m.data_max_seq_len.numpy())
        r = recognisability(m, cls, classifier, [word], args.samples, 0.5, args.seed)
        out[name] = {"test": losses[word], "samples_t0.5": {k: r[k] for k in ("top1", "top3", "diversity")}}
        print(f"{word}, {name}: test recon {losses[word]['recon_nats']:.2f} nats/drawing "
              f"KL {losses[word]['kl']:.4f}; "
              f"samples at T=0.5 top-1 {r['top1']:.4f} diversity {r['diversity']:.3f}", flush=True)
    return out


def class_losses(model, data_dir: str, class_index: int, word: str) -> dict:
    """Reconstruction and KL on a one-class data dir's test split, drawn as the model's `class_index`."""
    config = input_pipeline.InputConfig(batch_size=64, bucket_boundaries=(32, 64, 128))
    total = np.zeros(3)
    example_losses = tf.function(model.example_losses, reduce_retracing=True)
    for inputs, labels in input_pipeline.make_dataset(data_dir, "test", config, training=False):
        as_class = tf.fill(tf.shape(labels), tf.constant(class_index, labels.dtype))
        losses = {k: v.numpy() for k, v in example_losses(inputs, as_class).items()}
        keep = losses["keep"] > 0
        recon = losses["offset_loss"] + losses["pen_loss"]
        total += (recon[keep].sum(), losses["kl"][keep].sum(), keep.sum())
    return {word: {"recon": total[0] / total[2], "kl": total[1] / total[2], "count": int(total[2])}}


if __name__ == "__main__":
    main()
