"""What a training run writes into model_dir besides its checkpoints: the run's files at the start
(config.json, preprocessing.json, classes.txt), TensorBoard summaries while it trains (train/, eval/),
and the model at the end (model.keras, export/). Only the chief writes them; the trainer decides who.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import keras
import tensorflow as tf

from quickdraw_tf import export, input_pipeline, plots, preprocess
from quickdraw_tf.train_config import CONFIG_FILE, TrainConfig


def write_run_files(config: TrainConfig) -> None:
    """config.json, and how the inputs were made with the classes beside the model (what a Predictor
    needs). config.json atomically (rename), so that another worker's validate() never reads half a file."""
    tf.io.gfile.makedirs(config.model_dir)
    path = os.path.join(config.model_dir, CONFIG_FILE)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(config.to_json())
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
    max_points = preprocess.run_max_points(dataclasses.asdict(config.input))
    preprocess.record_in_model_dir(config.data_dir, config.model_dir, max_points)


def summary_writers(model_dir: str, chief: bool):
    """(train, eval) TensorBoard writers: model_dir/train and model_dir/eval, or no-ops off the chief."""
    if not chief:
        return tf.summary.create_noop_writer(), tf.summary.create_noop_writer()
    return (
        tf.summary.create_file_writer(os.path.join(model_dir, "train")),
        tf.summary.create_file_writer(os.path.join(model_dir, "eval")),
    )


def write_scalars(writer, step: int, values: dict[str, float]) -> None:
    with writer.as_default(step=step):
        for key, value in values.items():
            tf.summary.scalar(key, value)
    writer.flush()


def summary_batch(config: TrainConfig) -> tuple[dict, tf.Tensor]:
    """The first num_summary_drawings eval drawings: read once, drawn with the predictions at each eval."""
    eval_dataset = input_pipeline.make_dataset(config.data_dir, "eval", config.input, training=False)
    inputs, labels = next(iter(eval_dataset))
    count = config.num_summary_drawings
    return {key: value[:count] for key, value in inputs.items()}, labels[:count]


def write_drawings(
    writer, model: keras.Model, batch: tuple[dict, tf.Tensor], classes: list[str], step: int, count: int
) -> None:
    """The summary drawings rendered with their true and predicted class (or the model's own summary
    images, e.g. a generator's samples per class), as image summaries."""
    if hasattr(model, "summary_images"):
        images = model.summary_images(classes, count)
    else:
        images = {"drawings": _drawings_png(model, batch, classes)}
    with writer.as_default(step=step):
        for name, png in images.items():
            tf.summary.image(name, plots.png_summary_image(png))
    writer.flush()


def _drawings_png(model: keras.Model, batch: tuple[dict, tf.Tensor], classes: list[str]) -> bytes:
    """The summary drawings, titled with their true and predicted class."""
    inputs, labels = batch
    predicted = tf.argmax(model(inputs, training=False), axis=-1).numpy()
    titles = [
        f"true: {classes[t]} / pred: {classes[p]}" for t, p in zip(labels.numpy(), predicted, strict=True)
    ]
    if "ink" in inputs:
        return plots.drawings_png(inputs["ink"].numpy(), inputs["length"].numpy(), titles)
    return plots.bitmaps_png(inputs["image"].numpy(), titles)


def save_model(model: keras.Model, classes: list[str], model_dir: str, chief: bool, serving: bool) -> None:
    """model.keras, and export/ (a SavedModel whose serving signature returns class probabilities) when
    `serving`. Off the chief, saved into a temporary directory (saving runs collectives) and deleted."""
    out_dir = model_dir if chief else tempfile.mkdtemp()
    model.save(os.path.join(out_dir, "model.keras"))
    if serving:
        export.export_saved_model(model, classes, os.path.join(out_dir, "export"))
    if not chief:
        tf.io.gfile.rmtree(out_dir)
