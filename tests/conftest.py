"""Shared fixtures: a tiny make_tfrecords-style output dir built from the embedded real sample.

It follows the Beam job's layout (quickdraw-{split}.tfrecord-{i:05d}-of-{n:05d}, classes.txt) and
encodes with the shared schema, so the reader is tested against the format without running Beam.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

import pytest
import tensorflow as tf

from quickdraw_tf import features, ink

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


def _key_hash(key_id: int) -> int:
    # Not key_id % n: Quick, Draw! key_ids are datastore ids, mostly multiples of large powers of 2.
    return int.from_bytes(hashlib.sha256(str(key_id).encode()).digest()[:8], "big")


def _split(key_id: int) -> str:
    digit = _key_hash(key_id) % 10
    return "test" if digit < 2 else "eval" if digit < 3 else "train"


def write_tfrecord_dir(out_dir: str, records: list[dict], num_shards: int = NUM_SHARDS) -> list[str]:
    classes = sorted({record["word"] for record in records})
    writers = {
        (split, i): tf.io.TFRecordWriter(
            os.path.join(out_dir, f"quickdraw-{split}.tfrecord-{i:05d}-of-{num_shards:05d}")
        )
        for split in ("train", "eval", "test")
        for i in range(num_shards)
    }
    for record in records:
        key_id = int(record["key_id"])
        example = features.stroke_example(
            ink.to_ink(record["drawing"]),
            classes.index(record["word"]),
            key_id,
            record["word"],
            record["countrycode"],
        )
        writers[_split(key_id), _key_hash(key_id) // 10 % num_shards].write(example.SerializeToString())
    for writer in writers.values():
        writer.close()
    with open(os.path.join(out_dir, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{word}\n" for word in classes))
    return classes


@pytest.fixture(scope="session")
def tfrecord_dir(tmp_path_factory) -> str:
    """Stroke TFRecords of 10 real classes (~400 drawings), 2 shards per split."""
    out_dir = str(tmp_path_factory.mktemp("tfrecords"))
    write_tfrecord_dir(out_dir, sample_drawings())
    return out_dir
