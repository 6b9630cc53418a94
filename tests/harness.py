"""What the training, model and serving tests share: tiny TFRecord directories built from the embedded
sample (tests/sample.py) without Beam, the tiny hyper-parameters of every registered model and the tiny
TrainConfig the training tests start from.

The TFRecord directories follow the Beam job's layout (quickdraw_tf/data/layout.py: shards, classes.txt,
stats.json, manifest.json) and encode with the shared schema, so the readers are tested against the format
without running Beam.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from quickdraw_tf.data import features, ink, layout, preprocess, splits
from quickdraw_tf.training.input_pipeline import InputConfig
from quickdraw_tf.training.train_config import TrainConfig
from tests.sample import eye_bitmaps

NUM_SHARDS = 2

# Every registered model (quickdraw_tf.models.MODEL_NAMES) at a size that trains a step in seconds on CPU.
TINY_HPARAMS = {
    "rnn": {"num_conv": (8,), "conv_len": (3,), "num_layers": 1, "num_nodes": 8},
    "scatter_raster": {
        "grid_size": 8, "conv_filters": (8, 8), "dilations": (1, 2), "point_features": 8, "blocks": (1, 1),
        "widths": (16, 32), "strides": (1, 2), "stem_width": 8, "cardinality": 1, "se_ratio": 0.25,
    },
    "mobilenet": {"image_size": 32, "alpha": 0.35},
    "bitmap_cnn": {"filters": (4, 8), "dense_units": 8},
    "sketch_rnn": {"enc_size": 8, "dec_size": 16, "z_size": 4, "num_mixture": 3, "class_size": 4},
}  # fmt: skip


def tiny_config(
    data_dir: str, model_dir: str, model: str = "rnn", steps: int = 12, **overrides
) -> TrainConfig:
    """`model` at TINY_HPARAMS trained `steps` steps, logged, evaluated and checkpointed once at the end,
    without summary drawings; any TrainConfig field can be overridden."""
    values = dict(
        data_dir=data_dir,
        model_dir=model_dir,
        model=model,
        hparams=TINY_HPARAMS[model],
        input=InputConfig(batch_size=16, shuffle_buffer=100, bucket_boundaries=(32, 64)),
        train_steps=steps,
        eval_every=steps,
        checkpoint_every=steps,
        log_every=steps,
        learning_rate=3e-3,
        num_summary_drawings=0,
    )
    return TrainConfig(**{**values, **overrides})


def hparams_flags(model: str = "rnn") -> list[str]:
    """TINY_HPARAMS[model] as train.py's repeated --hparams=key=value flags."""
    def text(value) -> str:
        return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)

    return [f"--hparams={key}={text(value)}" for key, value in TINY_HPARAMS[model].items()]


def write_eye_records(data_dir: str, count: int) -> list[str]:
    """Image TFRecords (one shard per split) of real eye bitmaps as class 0 and the same bitmaps transposed
    as class 1, a pair a tiny model learns in a few steps; returns the classes."""
    words, eyes = ["eye", "eye transposed"], eye_bitmaps(count)
    half = count // 2
    images = [(image, 0) for image in eyes[:half]] + [(image.T, 1) for image in eyes[half:]]
    for split, part in (("train", images[::2]), ("eval", images[1::4]), ("test", images[3::4])):
        with tf.io.TFRecordWriter(os.path.join(data_dir, layout.shard_name(split, 0, 1))) as writer:
            for i, (image, label) in enumerate(part):
                writer.write(features.serialize_image_example(image, label, i, words[label]))
    with open(os.path.join(data_dir, layout.CLASSES_FILE), "w", encoding="utf-8") as f:
        f.write(layout.classes_text(words))
    write_manifest(data_dir, "images", num_shards=1, num_classes=len(words))
    return words


def write_tfrecord_dir(out_dir: str, records: list[dict], num_shards: int = NUM_SHARDS) -> list[str]:
    """Stroke TFRecords of the records, split and sharded as the job splits them; returns the classes."""
    classes = sorted({record["word"] for record in records})
    writers = {
        (split, i): tf.io.TFRecordWriter(os.path.join(out_dir, layout.shard_name(split, i, num_shards)))
        for split in splits.SPLITS
        for i in range(num_shards)
    }
    for record in records:
        key_id = int(record["key_id"])
        example = features.serialize_stroke_example(
            ink.to_ink(record["drawing"]),
            classes.index(record["word"]),
            key_id,
            record["word"],
            record["countrycode"],
        )
        # The job's split and shard of each drawing (make_tfrecords --eval_fraction=0.1 --test_fraction=0.2).
        hash_value, shard = splits.key_hash_and_shard(key_id, num_shards)
        split = splits.assign_split(hash_value, eval_fraction=0.1, test_fraction=0.2)
        writers[split, shard].write(example)
    for writer in writers.values():
        writer.close()
    with open(os.path.join(out_dir, layout.CLASSES_FILE), "w", encoding="utf-8") as f:
        f.write(layout.classes_text(classes))
    write_manifest(out_dir, "strokes", num_shards, len(classes))
    return classes


def write_manifest(out_dir: str, kind: str, num_shards: int, num_classes: int) -> None:
    """stats.json (the fields the readers check) and manifest.json, as a finished conversion leaves them."""

    def records(split: str, index: int) -> int:
        path = os.path.join(out_dir, layout.shard_name(split, index, num_shards))
        return sum(1 for _ in tf.data.TFRecordDataset(path))

    lengths = {split: [records(split, i) for i in range(num_shards)] for split in layout.SPLITS}
    stats = {
        "kind": kind,
        "num_classes": num_classes,
        "shard_lengths": lengths,
        "preprocessing": preprocess.job_record(kind, "uniform", True),  # the job's defaults
    }
    with open(os.path.join(out_dir, layout.STATS_FILE), "w", encoding="utf-8") as f:
        json.dump(stats, f)
    names = set(os.listdir(out_dir)) - {layout.MANIFEST_FILE}
    manifest = layout.build_manifest(out_dir, names, stats, lambda path: open(path, "rb"))
    with open(os.path.join(out_dir, layout.MANIFEST_FILE), "w", encoding="utf-8") as f:
        f.write(layout.manifest_text(manifest))
