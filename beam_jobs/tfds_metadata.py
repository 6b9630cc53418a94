"""TFDS metadata of the output directory: dataset_info.json and features.json.

tfds.builder_from_directory(output_dir) then loads the shards as a TFDS dataset.
"""

from __future__ import annotations

import numpy as np

from beam_jobs import runtime
from quickdraw_tf import layout, splits


def tfds_features(kind: str):
    """A tfds FeaturesDict whose examples have the same features as features.stroke_example/image_example.

    ink is declared (None, 3) so TFDS hands it back as [n, 3] rows; serialized it is the same flat list.
    """
    import tensorflow_datasets as tfds

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


def write_tfds_metadata(stats: dict, output_dir: str, kind: str) -> None:
    """dataset_info.json and features.json (split shard lengths included) for tfds.builder_from_directory."""
    runtime.import_tensorflow_quietly()
    import tensorflow_datasets as tfds

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
        for split in splits.SPLITS
    ]
    tfds.folder_dataset.write_metadata(
        data_dir=output_dir,
        features=tfds_features(kind),
        split_infos=split_infos,
        filename_template=template,
        version="1.0.0",
        check_data=False,  # the shards were just written by this job; reading them back again costs time
        description=f"Quick, Draw! {kind}, {stats['num_classes']} classes, from beam_jobs.make_tfrecords",
        homepage="https://github.com/googlecreativelab/quickdraw-dataset",
    )
