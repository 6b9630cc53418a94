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

A run directory is not trusted when it is read: config.json and preprocessing.json are read no further
than 1 MiB and every field's type and range is checked (data/checked_json.py); classes.txt goes through
layout.read_classes (bounded, no blank, repeated or space-padded word) and its count must equal the
model's outputs (check_outputs). Each problem is a ValueError of one line. Local files are written
through data/output_files.py: never through a planted link, never half written.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import tensorflow as tf

from quickdraw_tf import models
from quickdraw_tf.data import checked_json, layout, output_files
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
# What the chief writes into (TensorFlow's writers follow a link there): a planted link is refused.
WRITTEN_DIRS = (CHECKPOINTS_DIR, BEST_DIR, TRAIN_LOGS_DIR, EVAL_LOGS_DIR, EXPORT_DIR)


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
    write_file(path(config.model_dir, CONFIG_FILE), config.to_json())


def write_run_files(config: TrainConfig, classes: list[str]) -> Preprocessing:
    """config.json, preprocessing.json (the data's record with the run's truncation) and classes.txt: all
    a Predictor or a generator needs besides the weights, so that the run does not need its data_dir.
    A planted link where the run writes is refused first (check_writable)."""
    tf.io.gfile.makedirs(config.model_dir)
    check_writable(config.model_dir)
    write_config(config)
    prep = dataclasses.replace(data_preprocessing(config.data_dir), max_points=config.input.truncation)
    prep_json = json.dumps(prep.to_dict(), indent=2, sort_keys=True) + "\n"
    write_file(path(config.model_dir, PREPROCESSING_FILE), prep_json)
    write_file(path(config.model_dir, CLASSES_FILE), layout.classes_text(classes))
    return prep


def write_data_stats(model_dir: str, stats: dict) -> None:
    write_file(path(model_dir, DATA_STATS_FILE), json.dumps(stats, indent=2))


def write_file(target: str, content: str | bytes) -> None:
    """One file of a run directory, whole or not at all: locally through output_files (a planted link
    is refused, OutputPathError), elsewhere (gs://) through tf.io.gfile with a rename."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if _is_local(target):
        output_files.write_bytes(target.removeprefix("file://"), data)
        return
    with tf.io.gfile.GFile(target + ".tmp", "wb") as f:
        f.write(data)
    tf.io.gfile.rename(target + ".tmp", target, overwrite=True)


def check_writable(model_dir: str) -> None:
    """OutputPathError (one line) if a file or directory training writes in model_dir is a planted link:
    checked by trainer.validate before anything is built, and again when the run files are written."""
    for name in (CONFIG_FILE, PREPROCESSING_FILE, CLASSES_FILE, DATA_STATS_FILE, MODEL_FILE):
        check_target(path(model_dir, name))
    for name in WRITTEN_DIRS:
        refuse_link(path(model_dir, name))


def check_target(target: str) -> None:
    """OutputPathError if a local `target` that write_file would write is a link or a directory."""
    if _is_local(target):
        output_files.check_target(target.removeprefix("file://"))


def refuse_link(target: str) -> None:
    """OutputPathError if a local `target` (a directory TensorFlow writes into) is a symbolic link."""
    if _is_local(target):
        output_files.refuse_link(target.removeprefix("file://"))


def _is_local(target: str) -> bool:
    return "://" not in target or target.startswith("file://")


# ---------------------------------------------------------------------------------------------------
# Reading


def _read_bounded(target: str) -> bytes | None:
    """A run file's bytes, no more than checked_json.MAX_FILE_BYTES + 1 of them; None if it is missing."""
    if not tf.io.gfile.exists(target):
        return None
    with tf.io.gfile.GFile(target, "rb") as f:
        return f.read(checked_json.MAX_FILE_BYTES + 1)


def _read_json(target: str) -> object | None:
    data = _read_bounded(target)
    return None if data is None else checked_json.parse(data, target)


def read_config(model_dir: str, required: bool = True) -> TrainConfig | None:
    """The TrainConfig the run saved, with model_dir set to where the run is now (it may have moved).
    A missing config.json raises FileNotFoundError (None when not `required`); one this version cannot
    read, or with a field of the wrong type or range, raises ValueError (one line naming the field)."""
    target = path(model_dir, CONFIG_FILE)
    data = _read_bounded(target)
    if data is None:
        if not required:
            return None
        raise FileNotFoundError(f"no {CONFIG_FILE} in {model_dir}: not a training model_dir")
    config = TrainConfig.from_json(data, target)
    return dataclasses.replace(config, model_dir=model_dir)


def classes_file(model_dir: str) -> str:
    """The class list a run uses: its classes.txt; for a run written without one, its data_dir's.
    FileNotFoundError if neither exists."""
    target = path(model_dir, CLASSES_FILE)
    if not tf.io.gfile.exists(target):
        config = read_config(model_dir, required=False)
        target = path(config.data_dir, CLASSES_FILE) if config else ""
        if not target or not tf.io.gfile.exists(target):
            raise FileNotFoundError(f"no {CLASSES_FILE} in {model_dir} nor in its run's data_dir")
    return target


def read_classes(model_dir: str) -> list[str]:
    """The words of classes_file(model_dir), through layout's one reader (bounded, every word checked)."""
    target = classes_file(model_dir)
    with tf.io.gfile.GFile(target, "rb") as f:
        return layout.read_classes(f, target)


def data_preprocessing(data_dir: str) -> Preprocessing:
    """The data's record (stats.json "preprocessing"); the job's defaults for data converted before it
    was recorded."""
    target = layout.join(data_dir, layout.STATS_FILE)
    stats = _read_json(target) or {}
    if not isinstance(stats, dict):
        raise checked_json.JsonFieldError(f"{target} is not a JSON object")
    if "preprocessing" in stats:
        return Preprocessing.from_dict(stats["preprocessing"], f"{target}: preprocessing")
    return Preprocessing(kind=stats.get("kind", "strokes"))


def read_preprocessing(model_dir: str) -> Preprocessing:
    """The run's preprocessing.json, every field checked; for a run written without one, its data_dir's
    record and its config's truncation."""
    target = path(model_dir, PREPROCESSING_FILE)
    recorded = _read_json(target)
    if recorded is not None:
        return Preprocessing.from_dict(recorded, target)
    config = read_config(model_dir, required=False)
    if config is None:
        return Preprocessing()
    return dataclasses.replace(data_preprocessing(config.data_dir), max_points=config.input.truncation)


def output_count(model: keras.Model) -> int | None:
    """The width of a Keras model's first output (its classes), None when it has no known shape."""
    shape = model.outputs[0].shape if getattr(model, "outputs", None) else None
    return shape[-1] if shape else None


def check_outputs(outputs: int | None, classes: list[str], model_dir: str) -> None:
    """ValueError (one line) unless the model (of `outputs` outputs) has one output per class of the
    run's class list."""
    if outputs != len(classes):
        raise ValueError(
            f"{classes_file(model_dir)} has {len(classes)} words, but the model in {model_dir} has "
            f"{outputs} outputs: the class list is not the one it was trained on"
        )


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
    try:
        model = build_model(config, num_classes)
    except (TypeError, ValueError) as error:  # hparams this model does not take, or cannot build with
        target = path(config.model_dir, CONFIG_FILE)
        raise ValueError(f"{target}: cannot build a {config.model} from its hparams ({error})") from None
    found = find_checkpoint(config.model_dir, checkpoint)
    step = tf.Variable(0, dtype=tf.int64)
    # Every model weight must come from the checkpoint (its optimizer slots are not needed here).
    try:
        restored = tf.train.Checkpoint(model=model, step=step).restore(found)
        restored.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(
            f"checkpoint {found} does not fit a {config.model} of {num_classes} classes (is "
            f"{classes_file(config.model_dir)} the run's own?): {first_line}"
        ) from None
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


def save_keras_model(model: keras.Model, target: str) -> None:
    """model.keras: locally through output_files (never through a planted link, never half written)."""
    if not _is_local(target):
        model.save(target)
        return
    with output_files.replacing_by_name(target.removeprefix("file://")) as private_path:
        model.save(private_path)


def load_keras_model(model_dir: str) -> keras.Model:
    """model.keras, with the project's Keras classes registered first (models.register_all)."""
    target = trained_model_file(model_dir)
    models.register_all()
    return keras.models.load_model(target, compile=False)
