"""The output layout and the readers' checks: the input pipeline and evaluate read only what a finished
conversion's manifest lists, and say which file is wrong."""

import json
import os
import shutil
import struct
import subprocess
import sys

import pytest
import tensorflow as tf

from quickdraw_tf.data import layout
from quickdraw_tf.training import evaluation, input_pipeline
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import NUM_SHARDS, write_manifest
from tests.sample import REPO

EVAL = InputConfig(batch_size=16, bucket_boundaries=(), shuffle_buffer=10)
# Quick, Draw! words with spaces, apostrophes, hyphens and capitals, and non-ASCII ones a user may add.
TRICKY_WORDS = ["The Eiffel Tower", "The Great Wall of China", "The Mona Lisa", "t-shirt", "teddy-bear",
                "jack-o'-lantern", "animal migration", "crème brûlée", "小猫", "cat"]  # fmt: skip


def test_classes_txt_round_trips_tricky_words():
    text = layout.classes_text(TRICKY_WORDS)
    assert text.count("\n") == len(TRICKY_WORDS)
    assert layout.parse_classes(text) == TRICKY_WORDS


BAD_WORDS = ["", "   ", "two\nlines", "cr\r", "tab\tword", " leading", "trailing ", "\x00", "line\u2028sep"]


@pytest.mark.parametrize("word", BAD_WORDS)
def test_classes_txt_refuses_words_that_would_not_read_back(word):
    with pytest.raises(ValueError, match="class word"):
        layout.classes_text(["cat", word])


def test_classes_txt_refuses_repeated_words():
    with pytest.raises(ValueError, match="repeat"):
        layout.classes_text(["cat", "dog", "cat"])


def test_classes_txt_is_read_by_the_pipeline_as_written(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)
    assert input_pipeline.read_classes(data_dir) == layout.parse_classes(_text(data_dir, "classes.txt"))


def _copy(tfrecord_dir: str, tmp_path) -> str:
    data_dir = str(tmp_path / "data")
    shutil.copytree(tfrecord_dir, data_dir)
    return data_dir


def _text(data_dir: str, name: str) -> str:
    with open(os.path.join(data_dir, name), encoding="utf-8") as f:
        return f.read()


def _shard(data_dir: str, split: str = "test", index: int = 0) -> str:
    return os.path.join(data_dir, layout.shard_name(split, index, NUM_SHARDS))


def _refused(data_dir: str, match: str) -> None:
    """Every reader refuses the directory with a one-line DataDirError (a ValueError) matching `match`."""
    for read in (
        lambda: input_pipeline.split_files(data_dir, "test"),
        lambda: input_pipeline.read_classes(data_dir),
        lambda: input_pipeline.make_dataset(data_dir, "test", EVAL, training=False),
        lambda: evaluation.evaluate("no-model-needed-first", data_dir, split="test"),
    ):
        with pytest.raises(layout.DataDirError, match=match) as raised:
            read()
        assert "\n" not in str(raised.value)


def test_the_fixture_passes_the_checks(tfrecord_dir):
    assert input_pipeline.split_files(tfrecord_dir, "test") == [
        _shard(tfrecord_dir, "test", i) for i in range(NUM_SHARDS)
    ]


def test_dir_without_manifest_is_refused(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)  # an older conversion, or one killed before the end
    os.remove(os.path.join(data_dir, layout.MANIFEST_FILE))
    _refused(data_dir, "has no manifest.json.*re-run beam_jobs.make_tfrecords")


def test_extra_shards_from_another_num_shards_are_refused(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)
    extra = os.path.join(data_dir, layout.shard_name("train", 0, 3))
    shutil.copy(_shard(data_dir, "train", 0), extra)
    _refused(data_dir, f"{extra} is not in manifest.json")


def test_missing_shard_is_refused(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)
    os.remove(_shard(data_dir, "eval", 1))
    _refused(data_dir, f"{_shard(data_dir, 'eval', 1)} is missing")


def _first_record_end(path: str) -> int:
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
    return 8 + 4 + length + 4


@pytest.mark.parametrize("where", ["record_boundary", "mid_record"])
def test_truncated_shard_is_refused_naming_it(tmp_path, tfrecord_dir, where):
    data_dir = _copy(tfrecord_dir, tmp_path)
    path = _shard(data_dir)
    size = _first_record_end(path) if where == "record_boundary" else _first_record_end(path) - 7
    with open(path, "r+b") as f:
        f.truncate(size)
    _refused(data_dir, f"{path} has {size} bytes, manifest.json says .*: truncated or replaced")


@pytest.mark.parametrize("name", ["classes.txt", "stats.json"])
def test_classes_or_stats_from_another_run_are_refused(tmp_path, tfrecord_dir, name):
    data_dir = _copy(tfrecord_dir, tmp_path)
    path = os.path.join(data_dir, name)
    if name == "classes.txt":
        words = layout.parse_classes(_text(data_dir, name))
        other = layout.classes_text([words[1], words[0], *words[2:]])  # same words, other order
    else:
        other = json.dumps({**json.loads(_text(data_dir, name)), "read": 1}, indent=2)
    with open(path, "w", encoding="utf-8") as f:
        f.write(other)
    _refused(data_dir, f"{path} is not the one this conversion wrote")


def test_manifest_count_disagreeing_with_stats_is_refused(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)
    manifest = json.loads(_text(data_dir, layout.MANIFEST_FILE))
    manifest["shards"]["test"][1]["records"] += 1
    with open(os.path.join(data_dir, layout.MANIFEST_FILE), "w", encoding="utf-8") as f:
        f.write(layout.manifest_text(manifest))
    _refused(data_dir, f"{_shard(data_dir, 'test', 1)}: manifest.json says .* records, stats.json")


def test_corrupt_record_names_its_shard(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)
    path = _shard(data_dir)
    with open(path, "r+b") as f:  # one flipped byte inside the first record's data: same size, bad crc
        f.seek(20)
        byte = f.read(1)
        f.seek(20)
        f.write(bytes([byte[0] ^ 0xFF]))
    dataset = input_pipeline.make_dataset(data_dir, "test", EVAL, training=False)
    with pytest.raises(tf.errors.DataLossError):  # what TensorFlow says: no file name
        list(dataset)
    with pytest.raises(layout.DataDirError, match=f"{path} is corrupt"):
        with input_pipeline.naming_bad_shards(data_dir):
            list(dataset)


def test_manifest_describes_every_file(tfrecord_dir):
    manifest = json.loads(_text(tfrecord_dir, layout.MANIFEST_FILE))
    names = set(os.listdir(tfrecord_dir)) - {layout.MANIFEST_FILE}
    assert set(manifest["files"]) == names and manifest["kind"] == "strokes"
    stats = json.loads(_text(tfrecord_dir, layout.STATS_FILE))
    for split in layout.SPLITS:
        assert [shard["records"] for shard in manifest["shards"][split]] == stats["shard_lengths"][split]
    layout.verify_shards(tfrecord_dir, manifest, tf.io.gfile)  # the hashes hold


def test_image_dir_kind_comes_from_the_manifest(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)
    assert input_pipeline.data_kind(data_dir) == "strokes"
    write_manifest(data_dir, "images", NUM_SHARDS, len(input_pipeline.read_classes(data_dir)))
    assert input_pipeline.data_kind(data_dir) == "images"


@pytest.mark.integration
def test_train_and_evaluate_clis_refuse_a_dir_without_manifest_in_one_line(tmp_path, tfrecord_dir):
    data_dir = _copy(tfrecord_dir, tmp_path)
    os.remove(os.path.join(data_dir, layout.MANIFEST_FILE))
    for module in ("quickdraw_tf.train", "quickdraw_tf.evaluate"):
        result = subprocess.run(
            [sys.executable, "-m", module, f"--data_dir={data_dir}", f"--model_dir={tmp_path}/model"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": REPO},
        )  # fmt: skip
        lines = [line for line in result.stderr.splitlines() if ": error: " in line]
        assert result.returncode == 2 and len(lines) == 1, result.stderr
        assert f"{data_dir} has no manifest.json" in lines[0]


def test_classes_file_word_that_classes_txt_cannot_hold_is_a_usage_error(tmp_path):
    from beam_jobs import job_config

    path = tmp_path / "classes"
    path.write_text("cat\ndog\tbig\n")
    with pytest.raises(job_config.UsageError, match="holds the control character"):
        job_config.read_classes_file(str(path))
