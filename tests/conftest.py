"""Shared fixtures: a tiny make_tfrecords-style output dir built from the embedded real sample.

It follows the Beam job's layout (quickdraw-{split}.tfrecord-{i:05d}-of-{n:05d}, classes.txt) and
encodes with the shared schema, so the reader is tested against the format without running Beam.
"""

from __future__ import annotations

import glob
import json
import os

import pytest
import tensorflow as tf

from quickdraw_tf import features, ink, splits

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
        (split, i): tf.io.TFRecordWriter(
            os.path.join(out_dir, f"quickdraw-{split}.tfrecord-{i:05d}-of-{num_shards:05d}")
        )
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
        split = splits.assign_split(splits.key_hash(key_id), eval_fraction=0.1, test_fraction=0.2)
        writers[split, splits.shard_index(key_id, num_shards)].write(example)
    for writer in writers.values():
        writer.close()
    with open(os.path.join(out_dir, splits.CLASSES_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{word}\n" for word in classes))
    return classes


@pytest.fixture(scope="session")
def tfrecord_dir(tmp_path_factory) -> str:
    """Stroke TFRecords of 10 real classes (~400 drawings), 2 shards per split."""
    out_dir = str(tmp_path_factory.mktemp("tfrecords"))
    write_tfrecord_dir(out_dir, sample_drawings())
    return out_dir
