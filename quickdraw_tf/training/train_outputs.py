"""What a training run writes into model_dir besides its checkpoints and its run files (run_dir.py):
TensorBoard summaries while it trains (train/, eval/) and the model at the end (model.keras, export/,
model.onnx).
Only the chief writes them; the trainer decides who.
"""

from __future__ import annotations

import tempfile

import keras
import tensorflow as tf
from absl import logging

from quickdraw_tf.models import contract
from quickdraw_tf.pictures import charts
from quickdraw_tf.training import export, input_pipeline, onnx_export, run_dir
from quickdraw_tf.training.train_config import TrainConfig


def summary_writers(model_dir: str, chief: bool):
    """(train, eval) TensorBoard writers: model_dir/train and model_dir/eval, or no-ops off the chief."""
    if not chief:
        return tf.summary.create_noop_writer(), tf.summary.create_noop_writer()
    return (
        tf.summary.create_file_writer(run_dir.path(model_dir, run_dir.TRAIN_LOGS_DIR)),
        tf.summary.create_file_writer(run_dir.path(model_dir, run_dir.EVAL_LOGS_DIR)),
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
    writer,
    model: keras.Model,
    batch: tuple[dict, tf.Tensor],
    classes: list[str],
    step: int,
    count: int,
    own_images: contract.SummaryImages | None = None,
) -> None:
    """The summary drawings rendered with their true and predicted class, or the model's own pictures
    (`own_images`, its hooks' summary_images: e.g. a generator's samples per class), as image summaries."""
    if own_images is not None:
        images = own_images(model, classes, count)
    else:
        images = {"drawings": _drawings_png(model, batch, classes)}
    with writer.as_default(step=step):
        for name, png in images.items():
            tf.summary.image(name, png_summary_image(png))
    writer.flush()


def _drawings_png(model: keras.Model, batch: tuple[dict, tf.Tensor], classes: list[str]) -> bytes:
    """The summary drawings, titled with their true and predicted class."""
    inputs, labels = batch
    predicted = tf.argmax(model(inputs, training=False), axis=-1).numpy()
    titles = [
        f"true: {classes[t]} / pred: {classes[p]}" for t, p in zip(labels.numpy(), predicted, strict=True)
    ]
    if "ink" in inputs:
        return charts.drawings_png(inputs["ink"].numpy(), inputs["length"].numpy(), titles)
    return charts.bitmaps_png(inputs["image"].numpy(), titles)


def save_model(model: keras.Model, classes: list[str], model_dir: str, chief: bool, serving: bool) -> None:
    """model.keras, and when `serving` export/ (a SavedModel whose serving signature returns class
    probabilities) and model.onnx (the same signature; on the chief only: a conversion runs no
    collectives). Off the chief, saved into a temporary directory (saving runs collectives) and deleted.

    A model that cannot be converted to ONNX (or a machine without the onnx extra) keeps its
    model.keras and export/: the reason is logged, and `python -m quickdraw_tf.export_onnx` says it
    again."""
    out_dir = model_dir if chief else tempfile.mkdtemp()
    run_dir.save_keras_model(model, run_dir.path(out_dir, run_dir.MODEL_FILE))
    if serving:
        export.export_saved_model(model, classes, run_dir.path(out_dir, run_dir.EXPORT_DIR))
        if chief:
            try:
                onnx_export.export_onnx(model, classes, run_dir.path(out_dir, run_dir.ONNX_FILE))
            except onnx_export.OnnxExportError as error:
                logging.warning("%s not written: %s", run_dir.ONNX_FILE, error)
    if not chief:
        tf.io.gfile.rmtree(out_dir)


def png_summary_image(png: bytes) -> tf.Tensor:
    """PNG bytes → uint8 [1, H, W, 4], the batch tf.summary.image wants."""
    return tf.image.decode_png(png, channels=4)[None]
