"""Shared fixtures: a tiny make_tfrecords-style output dir built from the embedded real sample.

It follows the Beam job's layout (quickdraw_tf/data/layout.py: shards, classes.txt, stats.json,
manifest.json) and encodes with the shared schema, so the reader is tested against the format without
running Beam.
"""

from __future__ import annotations

import glob
import json
import os

import pytest
import tensorflow as tf

from quickdraw_tf.data import features, ink, layout, preprocess, splits

SAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "data", "sample", "simplified")
PER_CLASS = 40
NUM_SHARDS = 2


def sample_drawings(per_class: int = PER_CLASS) -> list[dict]:
    """Up to per_class real simplified drawings of each of the sample's 10 words, in file order."""
    by_word: dict[str, list[dict]] = {}
    for path in sorted(glob.glob(os.path.join(SAMPLE, "*", "*.ndjson"))):
        with open(path, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                drawings = by_word.setdefault(record["word"], [])
                if len(drawings) < per_class:
                    drawings.append(record)
    return [record for word in sorted(by_word) for record in by_word[word]]


def write_tfrecord_dir(out_dir: str, records: list[dict], num_shards: int = NUM_SHARDS) -> list[str]:
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


@pytest.fixture(scope="session")
def tfrecord_dir(tmp_path_factory) -> str:
    """Stroke TFRecords of 10 real classes (~400 drawings), 2 shards per split."""
    out_dir = str(tmp_path_factory.mktemp("tfrecords"))
    write_tfrecord_dir(out_dir, sample_drawings())
    return out_dir
