"""quickdraw_tf.training.run_dir: a run directory's files, written at the start of training and read by
evaluation, the Predictor and the generator; a run keeps working once its data directory is gone."""

import json
import os
import shutil

import pytest

from quickdraw_tf.data import preprocess
from quickdraw_tf.training import run_dir
from quickdraw_tf.training.input_pipeline import InputConfig
from quickdraw_tf.training.train_config import TrainConfig


def _data_dir(tmp_path, classes=("cat", "dog")) -> str:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stats = {"kind": "strokes", "preprocessing": preprocess.job_record("strokes", "per_axis", False)}
    (data_dir / "stats.json").write_text(json.dumps(stats))
    (data_dir / "classes.txt").write_text("".join(f"{word}\n" for word in classes))
    return str(data_dir)


def test_the_truncation_is_the_pipelines():
    assert InputConfig(max_length=200).truncation == 200
    assert InputConfig(static_shapes=True, bucket_boundaries=(32, 64), max_length=0).truncation == 64
    assert InputConfig(bucket_boundaries=()).truncation == 0


def test_run_files_make_the_run_dir_self_contained(tmp_path):
    data_dir, model_dir = _data_dir(tmp_path), str(tmp_path / "run")
    config = TrainConfig(data_dir=data_dir, model_dir=model_dir, input=InputConfig(max_length=200))
    run_dir.write_run_files(config, ["cat", "dog"])
    shutil.rmtree(data_dir)
    expected = preprocess.Preprocessing("strokes", "per_axis", False, 200)
    assert run_dir.read_preprocessing(model_dir) == expected
    assert run_dir.read_classes(model_dir) == ["cat", "dog"]
    assert run_dir.read_config(model_dir) == config
    moved = str(tmp_path / "moved")
    shutil.move(model_dir, moved)
    assert run_dir.read_config(moved).model_dir == moved  # where the run is now, not where it was trained


def test_a_run_without_classes_or_preprocessing_falls_back_to_its_data_dir(tmp_path):
    data_dir, model_dir = _data_dir(tmp_path), str(tmp_path / "old")
    run_dir.write_config(TrainConfig(data_dir=data_dir, model_dir=model_dir, input=InputConfig(max_length=7)))
    assert run_dir.read_classes(model_dir) == ["cat", "dog"]
    assert run_dir.read_preprocessing(model_dir) == preprocess.Preprocessing("strokes", "per_axis", False, 7)
    shutil.rmtree(data_dir)
    with pytest.raises(FileNotFoundError, match="no classes.txt in .* nor in its run's data_dir"):
        run_dir.read_classes(model_dir)
    # The job's defaults for data converted before the record, with the run's truncation.
    assert run_dir.read_preprocessing(model_dir) == preprocess.Preprocessing(max_points=7)


def test_missing_or_unreadable_run_files_are_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json in .*: not a training model_dir"):
        run_dir.read_config(str(tmp_path))
    assert run_dir.read_config(str(tmp_path), required=False) is None
    (tmp_path / "config.json").write_text(json.dumps({"data_dir": "d", "unknown_field": 1}))
    with pytest.raises(ValueError, match="config.json: unknown field 'unknown_field'"):
        run_dir.read_config(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        run_dir.find_checkpoint(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no checkpoint .*expected .*index"):
        run_dir.find_checkpoint(str(tmp_path), os.path.join(str(tmp_path), "ckpt-3"))
    with pytest.raises(FileNotFoundError, match="model.keras is missing"):
        run_dir.trained_model_file(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_dir.trained_model_file(str(tmp_path / "nowhere"))
