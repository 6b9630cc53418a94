"""Tiny trained models for the predictor and CLI tests: a stroke rnn and a bitmap_cnn on the same 10
real classes of the embedded sample (the bitmaps are the sample's strokes rendered as Google did).

Import the fixtures into a test module (`from tests.predict_fixtures import ...`); session-scoped, so
each model is trained once per test session.
"""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

from quickdraw_tf.data import bitmap, features, layout, splits
from quickdraw_tf.data.drawing import Drawing
from quickdraw_tf.training import trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import TINY_HPARAMS, tiny_config, write_manifest, write_tfrecord_dir
from tests.sample import sample_drawings

# The predictor tests' bitmap model: a wider dense layer, no dropout.
TINY_CNN = {**TINY_HPARAMS["bitmap_cnn"], "dense_units": 16, "dropout": 0.0}


def split_of(key_id: int) -> str:
    """The split write_tfrecord_dir (and make_tfrecords --eval_fraction=0.1 --test_fraction=0.2) gives."""
    return splits.assign_split(splits.key_hash(key_id), eval_fraction=0.1, test_fraction=0.2)


def as_drawing(record: dict) -> Drawing:
    return Drawing(
        key_id=int(record["key_id"]),
        word=record["word"],
        countrycode=record["countrycode"],
        strokes=tuple(record["drawing"]),
    )


def write_bitmap_dir(out_dir: str, records: list[dict]) -> None:
    classes = sorted({record["word"] for record in records})
    writers = {
        split: tf.io.TFRecordWriter(os.path.join(out_dir, layout.shard_name(split, 0, 1)))
        for split in splits.SPLITS
    }
    for record in records:
        key_id = int(record["key_id"])
        image = bitmap.google_bitmap(record["drawing"])
        example = features.serialize_image_example(
            image, classes.index(record["word"]), key_id, record["word"]
        )
        writers[split_of(key_id)].write(example)
    for writer in writers.values():
        writer.close()
    with open(os.path.join(out_dir, layout.CLASSES_FILE), "w", encoding="utf-8") as f:
        f.write(layout.classes_text(classes))
    write_manifest(out_dir, "images", 1, len(classes))


def _train(data_dir: str, model_dir: str, model: str, **overrides) -> None:
    input_config = InputConfig(batch_size=16, shuffle_buffer=100, bucket_boundaries=(32, 64), max_length=100)
    trainer.train(tiny_config(data_dir, model_dir, model=model, input=input_config, **overrides))


@pytest.fixture(scope="session")
def stroke_run(tmp_path_factory) -> tuple[str, str]:
    """(data_dir, model_dir) of a tiny rnn trained on real sample drawings."""
    data_dir, model_dir = (str(tmp_path_factory.mktemp(name)) for name in ("strokes", "rnn"))
    write_tfrecord_dir(data_dir, sample_drawings())
    _train(data_dir, model_dir, "rnn")
    return data_dir, model_dir


@pytest.fixture(scope="session")
def image_run(tmp_path_factory) -> tuple[str, str]:
    """(data_dir, model_dir) of a tiny bitmap_cnn on the same drawings rendered to 28x28."""
    data_dir, model_dir = (str(tmp_path_factory.mktemp(name)) for name in ("bitmaps", "cnn"))
    write_bitmap_dir(data_dir, sample_drawings())
    _train(data_dir, model_dir, "bitmap_cnn", hparams=TINY_CNN)
    return data_dir, model_dir
