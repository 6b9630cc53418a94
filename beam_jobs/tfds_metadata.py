"""dataset_info.json and features.json, so that tfds.builder_from_directory(output_dir) loads a conversion.

Written from quickdraw_tf.data.features.FEATURE_TABLE and stats.json with plain json and Beam's FileSystems
(local, gs://, ...): neither TensorFlow nor TensorFlow Datasets is imported, which keeps both out of the
job's process (importing them cost seconds at every start). The bytes are those that
`tfds.folder_dataset.write_metadata` writes for the same dataset
(tests/beam_jobs/test_tfds_metadata.py checks it against the installed tensorflow-datasets, 4.9.10 when this
was written). Nothing in those two files
varies from run to run: no dates, no TFDS version, and the module name TFDS writes only when it is set
(write_metadata leaves it empty).

  dataset_info.json   name, version 1.0.0, description, homepage, file format and, per split, its file
                      name template, shard lengths and bytes (the proto's JSON form: indent 2, sorted
                      keys, int64 as strings, zero or empty fields left out)
  features.json       the FeaturesDict of the kind's features (indent 4, sorted keys): Tensor for
                      numbers and bytes, Text for UTF-8 strings, None dimensions written as -1
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from quickdraw_tf.data import features, layout

DATASET_INFO_FILE = "dataset_info.json"
FEATURES_FILE = "features.json"
VERSION = "1.0.0"
HOMEPAGE = "https://github.com/googlecreativelab/quickdraw-dataset"
# TFDS's default file name template: layout.shard_name writes names that match it.
FILEPATH_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"
_TFDS_FEATURES = "tensorflow_datasets.core.features."


def _feature_json(feature: features.Feature) -> dict:
    """One entry of features.json: what tfds.features.Tensor / Text's to_proto gives, as a dict."""
    if feature.text:
        return {"pythonClassName": _TFDS_FEATURES + "text_feature.Text", "text": {}}
    shape = (
        {"dimensions": [str(-1 if dim is None else dim) for dim in feature.shape]} if feature.shape else {}
    )
    return {
        "pythonClassName": _TFDS_FEATURES + "tensor_feature.Tensor",
        "tensor": {"dtype": feature.dtype, "encoding": "none", "shape": shape},
    }


def features_json(kind: str) -> str:
    """features.json of a kind (strokes or images), as tfds.features.FeaturesDict.save_config writes it."""
    config = {
        "featuresDict": {
            "features": {feature.name: _feature_json(feature) for feature in features.FEATURE_TABLE[kind]}
        },
        "pythonClassName": _TFDS_FEATURES + "features_dict.FeaturesDict",
    }
    return json.dumps(config, indent=4, sort_keys=True)


def _split_json(split: str, shard_lengths: list[int], num_bytes: int) -> dict:
    entry = {
        "filepathTemplate": FILEPATH_TEMPLATE,
        "name": split,
        "shardLengths": [str(int(n)) for n in shard_lengths],
    }
    if num_bytes:  # proto3 JSON leaves a zero out
        entry["numBytes"] = str(int(num_bytes))
    return entry


def dataset_info_json(stats: Mapping, kind: str) -> str:
    """dataset_info.json for a conversion's stats.json (shard_lengths, num_bytes_per_split, num_classes)."""
    info = {
        "description": f"Quick, Draw! {kind}, {stats['num_classes']} classes, from beam_jobs.make_tfrecords",
        "fileFormat": "tfrecord",
        "location": {"urls": [HOMEPAGE]},
        "name": layout.DATASET_NAME,
        "splits": [
            _split_json(split, stats["shard_lengths"][split], stats["num_bytes_per_split"][split])
            for split in layout.SPLITS
        ],
        "version": VERSION,
    }
    return json.dumps(info, indent=2, sort_keys=True)


def _write(path: str, text: str) -> None:
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(text.encode("utf-8"))


def write_tfds_metadata(stats: Mapping, output_dir: str, kind: str) -> None:
    """Writes dataset_info.json and features.json into output_dir (any filesystem Beam knows)."""
    if kind not in features.FEATURE_TABLE:
        raise ValueError(f"kind must be one of {', '.join(features.FEATURE_TABLE)}, got {kind!r}")
    _write(FileSystems.join(output_dir, FEATURES_FILE), features_json(kind))
    _write(FileSystems.join(output_dir, DATASET_INFO_FILE), dataset_info_json(stats, kind))
