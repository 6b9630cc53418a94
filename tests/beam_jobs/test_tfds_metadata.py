"""beam_jobs.tfds_metadata against TensorFlow Datasets itself: the same bytes, and TFDS loads them.

The reference is what make_tfrecords wrote through TFDS before this module: the FeaturesDict below was
written by hand there, and tfds.folder_dataset.write_metadata was called exactly as here.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

from beam_jobs import tfds_metadata
from quickdraw_tf.data import features, layout
from quickdraw_tf.training import example_parsing
from tests.sample import SAMPLE

tfds = pytest.importorskip("tensorflow_datasets")


def reference_features(kind: str):
    """The FeaturesDict make_tfrecords declared by hand before FEATURE_TABLE (kept here as the reference)."""

    def scalar_int64():
        return tfds.features.Tensor(shape=(1,), dtype=np.int64)

    if kind == "images":
        return tfds.features.FeaturesDict(
            {
                "image": tfds.features.Tensor(shape=(), dtype=np.str_),
                "class_index": scalar_int64(),
                "key_id": scalar_int64(),
                "word": tfds.features.Text(),
            }
        )
    return tfds.features.FeaturesDict(
        {
            "ink": tfds.features.Tensor(shape=(None, 3), dtype=np.float32),
            "shape": tfds.features.Tensor(shape=(2,), dtype=np.int64),
            "class_index": scalar_int64(),
            "key_id": scalar_int64(),
            "word": tfds.features.Text(),
            "countrycode": tfds.features.Text(),
            "recognized": scalar_int64(),
            "timestamp": scalar_int64(),
        }
    )


def write_reference_metadata(stats: dict, output_dir: str, kind: str) -> None:
    """TFDS's own writer, called as make_tfrecords.write_tfds_metadata called it."""
    template = tfds.core.ShardedFileTemplate(
        data_dir=output_dir, dataset_name=layout.DATASET_NAME, filetype_suffix="tfrecord"
    )
    split_infos = [
        tfds.core.SplitInfo(
            name=split,
            shard_lengths=stats["shard_lengths"][split],
            num_bytes=stats["num_bytes_per_split"][split],
            filename_template=template.replace(split=split),
        )
        for split in layout.SPLITS
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=output_dir,
        features=reference_features(kind),
        split_infos=split_infos,
        filename_template=template,
        version="1.0.0",
        check_data=False,
        description=f"Quick, Draw! {kind}, {stats['num_classes']} classes, from beam_jobs.make_tfrecords",
        homepage="https://github.com/googlecreativelab/quickdraw-dataset",
    )


def _stats(shard_lengths: dict, num_bytes: dict, num_classes: int) -> dict:
    return {"shard_lengths": shard_lengths, "num_bytes_per_split": num_bytes, "num_classes": num_classes}


STATS = [
    _stats({"train": [3, 4], "eval": [1, 0], "test": [2, 2]}, {"train": 700, "eval": 100, "test": 400}, 3),
    # an empty split (--test_fraction=0): zero lengths, no bytes
    _stats({"train": [5], "eval": [1], "test": [0]}, {"train": 900, "eval": 180, "test": 0}, 1),
    # every split empty, many shards, and counts past 2**32 (int64 in the proto, strings in its JSON)
    _stats({"train": [0] * 12, "eval": [0] * 12, "test": [0] * 12}, {"train": 0, "eval": 0, "test": 0}, 345),
    _stats({"train": [2**33, 7], "eval": [0, 1], "test": [1, 0]}, {"train": 2**40, "eval": 1, "test": 9}, 10),
]


def _touch_shards(directory, stats: dict) -> None:
    for split in layout.SPLITS:
        lengths = stats["shard_lengths"][split]
        for index in range(len(lengths)):
            (directory / layout.shard_name(split, index, len(lengths))).touch()


def _read(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("kind", layout.KINDS)
@pytest.mark.parametrize("stats", STATS, ids=["plain", "empty_split", "all_empty", "large"])
def test_files_are_the_bytes_tfds_writes(kind, stats, tmp_path):
    theirs, ours = tmp_path / "tfds", tmp_path / "ours"
    for directory in (theirs, ours):
        directory.mkdir()
        _touch_shards(directory, stats)  # TFDS's writer looks for shard files
    write_reference_metadata(stats, str(theirs), kind)
    tfds_metadata.write_tfds_metadata(stats, str(ours), kind)
    assert sorted(os.listdir(ours)) == sorted(os.listdir(theirs))
    for name in (tfds_metadata.DATASET_INFO_FILE, tfds_metadata.FEATURES_FILE):
        assert _read(ours / name) == _read(theirs / name), name


@pytest.mark.parametrize("kind", layout.KINDS)
def test_features_json_encodes_like_the_shared_schema(kind, tmp_path):
    """TFDS rebuilds the FeaturesDict from our features.json; it serializes an example as we do."""
    tfds_metadata.write_tfds_metadata(STATS[0], str(tmp_path), kind)
    loaded = tfds.features.FeatureConnector.from_config(str(tmp_path))
    if kind == "strokes":
        ink = np.array([[1.5, -2, 0], [3, 4, 1]], np.float32)
        values = dict(ink=ink, class_index=3, key_id=5566648650039296, word="pig", countrycode="AU")
        ours = features.serialize_stroke_example(**values, recognized=False, timestamp=1490000000)
        theirs = loaded.serialize_example(
            dict(
                values,
                shape=ink.shape,
                recognized=[0],
                timestamp=[1490000000],
                class_index=[3],
                key_id=[values["key_id"]],
            )
        )
    else:
        image = np.arange(784, dtype=np.uint8).reshape(28, 28)
        ours = features.serialize_image_example(image, 1, 42, "eye")
        theirs = loaded.serialize_example(
            {"image": image.tobytes(), "class_index": [1], "key_id": [42], "word": "eye"}
        )
    import tensorflow as tf

    assert tf.train.Example.FromString(theirs) == tf.train.Example.FromString(ours)


def test_unknown_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of strokes, images"):
        tfds_metadata.write_tfds_metadata(STATS[0], str(tmp_path), "pictures")


# ---------------------------------------------------------------------------------------------------
# A real conversion, loaded by TFDS from our metadata


def _convert(inputs: list[str], output_dir, caps: dict[str, int]) -> dict:
    from beam_jobs import make_tfrecords

    return make_tfrecords.run(
        [
            "--runner=DirectRunner",
            f"--input={','.join(inputs)}",
            f"--output_dir={output_dir}",
            "--num_shards=2",
            *(f"--{split}_per_class={cap}" for split, cap in caps.items()),
        ]
    )


def _shard_examples(output_dir, split: str, kind: str) -> dict[int, dict]:
    import tensorflow as tf

    spec = example_parsing.parse_spec(kind)
    out = {}
    for path in sorted(glob.glob(os.path.join(str(output_dir), layout.shard_glob(split)))):
        for serialized in tf.data.TFRecordDataset(path):
            parsed = tf.io.parse_single_example(serialized, spec)
            values = {
                k: (tf.sparse.to_dense(v) if isinstance(v, tf.SparseTensor) else v).numpy()
                for k, v in parsed.items()
            }
            out[int(values["key_id"][0])] = values
    return out


@pytest.mark.integration
@pytest.mark.parametrize(
    "kind, inputs, caps",
    [
        (
            "strokes",
            [os.path.join(SAMPLE, "simplified", "*", "pig.ndjson")],
            {"train": 20, "eval": 4, "test": 4},
        ),
        ("images", [os.path.join(SAMPLE, "bitmap", "*", "eye.npy")], {"train": 30, "eval": 5, "test": 5}),
    ],
)
def test_tfds_reads_a_conversion_through_our_metadata(kind, inputs, caps, tmp_path):
    out = tmp_path / "out"
    stats = _convert(inputs, out, caps)
    assert stats["kind"] == kind
    written = {
        name: _read(out / name) for name in (tfds_metadata.DATASET_INFO_FILE, tfds_metadata.FEATURES_FILE)
    }
    for name in written:
        os.remove(out / name)
    tfds_metadata.write_tfds_metadata(stats, str(out), kind)
    for name, content in written.items():  # what the job wrote (through TFDS, or through us)
        assert _read(out / name) == content, name
    builder = tfds.builder_from_directory(str(out))
    for split in layout.SPLITS:
        shards = _shard_examples(out, split, kind)
        assert builder.info.splits[split].num_examples == stats["written_per_split"][split] == len(shards)
        loaded = list(builder.as_dataset(split=split))
        assert len(loaded) == len(shards)
        for example in loaded:
            mine = shards[int(example["key_id"].numpy()[0])]
            for feature in features.FEATURE_TABLE[kind]:
                value = example[feature.name].numpy()
                expected = (
                    mine[feature.name].reshape(value.shape) if feature.name == "ink" else mine[feature.name]
                )
                np.testing.assert_array_equal(value, expected, err_msg=feature.name)

