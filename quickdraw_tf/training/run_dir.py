"""A training run's directory (model_dir): every file name in it, and the one place that reads them.
The twin of data/layout.py, which owns a conversion's output directory.

  config.json          the run's TrainConfig (write_config, read_config)
  preprocessing.json   how the training inputs were made, with the run's truncation (read_preprocessing)
  classes.txt          the class words, line number = class index (read_classes)
  data_stats.json      what the model measured on the training data before step 0 (its adapt_to_data)
  checkpoints/         the last keep_checkpoints checkpoints: model, optimizer, step, best score
  best/                the checkpoint with the best eval score (find_checkpoint, load_checkpoint)
  train/, eval/        TensorBoard logs of training and of its evals
  model.keras          the best (else the final) weights as a Keras file (load_keras_model)
  export/              the same as a SavedModel whose serving signature returns class probabilities
  model.onnx           the same signature as an ONNX graph (training/onnx_export.py)
  eval_results.json, confusion_matrix_<split>.png, eval_<split>/   written by evaluation
  workertemp/          during a multi-worker run, the checkpoints of the workers that are not the chief

A run directory is self-contained: training writes the classes and the preprocessing into it, so the
model keeps working (predict, generate, serve) when its data directory is gone. Run directories written
without classes.txt or preprocessing.json fall back to the data directory their config.json names.
Everything goes through tf.io.gfile, so a model_dir may be on gs:// as well.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import tensorflow as tf

from quickdraw_tf import models
from quickdraw_tf.data import layout
from quickdraw_tf.data.preprocess import Preprocessing
from quickdraw_tf.training.train_config import TrainConfig

CONFIG_FILE = "config.json"
PREPROCESSING_FILE = "preprocessing.json"
CLASSES_FILE = layout.CLASSES_FILE
DATA_STATS_FILE = "data_stats.json"
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
TRAIN_LOGS_DIR = "train"
EVAL_LOGS_DIR = "eval"
MODEL_FILE = "model.keras"
EXPORT_DIR = "export"
ONNX_FILE = "model.onnx"
RESULTS_FILE = "eval_results.json"
WORKER_TEMP_DIR = "workertemp"  # the other workers' throw-away checkpoints (training/distribute.py)
CHECKPOINT_CHOICES = ("best", "latest")


def path(model_dir: str, name: str) -> str:
    return os.path.join(model_dir, name)


def confusion_matrix_file(model_dir: str, split: str) -> str:
    return path(model_dir, f"confusion_matrix_{split}.png")


def eval_logs_dir(model_dir: str, split: str) -> str:
    """evaluation's TensorBoard logs of one split (training's own evals go to eval/)."""
    return path(model_dir, f"eval_{split}")


# ---------------------------------------------------------------------------------------------------
# Writing, at the start of a run (the chief only)


def write_config(config: TrainConfig) -> None:
    """config.json, atomically (rename), so that another worker's validate() never reads half a file."""
    tf.io.gfile.makedirs(config.model_dir)
    target = path(config.model_dir, CONFIG_FILE)
    with tf.io.gfile.GFile(target + ".tmp", "w") as f:
        f.write(config.to_json())
    tf.io.gfile.rename(target + ".tmp", target, overwrite=True)


def write_run_files(config: TrainConfig, classes: list[str]) -> Preprocessing:
    """config.json, preprocessing.json (the data's record with the run's truncation) and classes.txt: all
    a Predictor or a generator needs besides the weights, so that the run does not need its data_dir."""
    write_config(config)
    prep = dataclasses.replace(data_preprocessing(config.data_dir), max_points=config.input.truncation)
    prep_json = json.dumps(prep.to_dict(), indent=2, sort_keys=True) + "\n"
    _write_text(path(config.model_dir, PREPROCESSING_FILE), prep_json)
    _write_text(path(config.model_dir, CLASSES_FILE), layout.classes_text(classes))
    return prep


def write_data_stats(model_dir: str, stats: dict) -> None:
    _write_text(path(model_dir, DATA_STATS_FILE), json.dumps(stats, indent=2))


def _write_text(target: str, text: str) -> None:
    with tf.io.gfile.GFile(target, "w") as f:
        f.write(text)


# ---------------------------------------------------------------------------------------------------
# Reading


def _read_json(target: str) -> dict | None:
    if not tf.io.gfile.exists(target):
        return None
    with tf.io.gfile.GFile(target) as f:
        return json.loads(f.read())


def read_config(model_dir: str, required: bool = True) -> TrainConfig | None:
    """The TrainConfig the run saved, with model_dir set to where the run is now (it may have moved).
    A missing config.json raises FileNotFoundError (None when not `required`); one this version cannot
    read raises ValueError."""
    target = path(model_dir, CONFIG_FILE)
    if not tf.io.gfile.exists(target):
        if not required:
            return None
        raise FileNotFoundError(f"no {CONFIG_FILE} in {model_dir}: not a training model_dir")
    with tf.io.gfile.GFile(target) as f:
        text = f.read()
    try:
        config = TrainConfig.from_json(text)
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{target} is not a run config this version reads ({error})") from None
    return dataclasses.replace(config, model_dir=model_dir)


def read_classes(model_dir: str) -> list[str]:
    """The run's classes.txt; for a run written without one, its data_dir's. FileNotFoundError if neither."""
    target = path(model_dir, CLASSES_FILE)
    if not tf.io.gfile.exists(target):
        config = read_config(model_dir, required=False)
        target = path(config.data_dir, CLASSES_FILE) if config else ""
        if not target or not tf.io.gfile.exists(target):
            raise FileNotFoundError(f"no {CLASSES_FILE} in {model_dir} nor in its run's data_dir")
    with tf.io.gfile.GFile(target) as f:
        return layout.parse_classes(f.read(), target)


def data_preprocessing(data_dir: str) -> Preprocessing:
    """The data's record (stats.json "preprocessing"); the job's defaults for data converted before it
    was recorded."""
    stats = _read_json(layout.join(data_dir, layout.STATS_FILE)) or {}
    if "preprocessing" in stats:
        return Preprocessing.from_dict(stats["preprocessing"])
    return Preprocessing(kind=stats.get("kind", "strokes"))


def read_preprocessing(model_dir: str) -> Preprocessing:
    """The run's preprocessing.json; for a run written without one, its data_dir's record and its
    config's truncation."""
    recorded = _read_json(path(model_dir, PREPROCESSING_FILE))
    if recorded is not None:
        return Preprocessing.from_dict(recorded)
    config = read_config(model_dir, required=False)
    if config is None:
        return Preprocessing()
    return dataclasses.replace(data_preprocessing(config.data_dir), max_points=config.input.truncation)


# ---------------------------------------------------------------------------------------------------
# Checkpoints and models


def latest_checkpoint(model_dir: str) -> str | None:
    """The newest checkpoint of checkpoints/ (what a restarted run resumes from), None if there is none."""
    return tf.train.latest_checkpoint(path(model_dir, CHECKPOINTS_DIR))


def best_checkpoint(model_dir: str) -> str | None:
    return tf.train.latest_checkpoint(path(model_dir, BEST_DIR))


def find_checkpoint(model_dir: str, checkpoint: str = "best") -> str:
    """'best' (falls back to latest), 'latest', or an explicit checkpoint prefix."""
    if checkpoint not in CHECKPOINT_CHOICES:
        if not tf.io.gfile.exists(checkpoint + ".index"):
            raise FileNotFoundError(f"no checkpoint {checkpoint} (expected {checkpoint}.index)")
        return checkpoint
    found = best_checkpoint(model_dir) if checkpoint == "best" else None
    found = found or latest_checkpoint(model_dir)
    if not found:
        raise FileNotFoundError(f"no checkpoint in {model_dir}/{BEST_DIR} or {model_dir}/{CHECKPOINTS_DIR}")
    return found


def build_model(config: TrainConfig, num_classes: int) -> keras.Model:
    """A new model as the run's config describes it (untrained)."""
    return models.get_model(config.model, num_classes, **config.hparams)


def load_checkpoint(
    config: TrainConfig, num_classes: int, checkpoint: str = "best"
) -> tuple[keras.Model, str, int]:
    """Rebuilds the run's model and restores its weights from a checkpoint; returns (model, path, step)."""
    model = build_model(config, num_classes)
    found = find_checkpoint(config.model_dir, checkpoint)
    step = tf.Variable(0, dtype=tf.int64)
    # Every model weight must come from the checkpoint (its optimizer slots are not needed here).
    restored = tf.train.Checkpoint(model=model, step=step).restore(found)
    restored.expect_partial().assert_existing_objects_matched()
    return model, found, int(step.numpy())


def trained_model_file(model_dir: str) -> str:
    """The path of model_dir's model.keras; FileNotFoundError (one line) if there is none."""
    if not tf.io.gfile.isdir(model_dir):
        raise FileNotFoundError(f"model_dir {model_dir} does not exist")
    target = path(model_dir, MODEL_FILE)
    if not tf.io.gfile.exists(target):
        raise FileNotFoundError(
            f"no trained model in {model_dir}: {MODEL_FILE} is missing (training not finished?)"
        )
    return target


def load_keras_model(model_dir: str) -> keras.Model:
    """model.keras, with the project's Keras classes registered first (models.register_all)."""
    target = trained_model_file(model_dir)
    models.register_all()
    return keras.models.load_model(target, compile=False)
