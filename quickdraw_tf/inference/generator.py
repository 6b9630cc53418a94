"""A trained Sketch-RNN loaded from its run directory, for `python -m quickdraw_tf.generate` and the
server's "finish my drawing"."""

from __future__ import annotations

import keras

from quickdraw_tf.training import input_pipeline, run_dir


def load_generator(
    model_dir: str, checkpoint: str = "best", data_dir: str | None = None
) -> tuple[keras.Model, list[str], int]:
    """(model, classes, step) of a Sketch-RNN training run. Its classes are the run's own (run_dir), or
    those of data_dir when given."""
    config = run_dir.read_config(model_dir)
    if config.model != "sketch_rnn":
        raise ValueError(f"{model_dir} holds a {config.model} model, not sketch_rnn")
    classes = input_pipeline.read_classes(data_dir) if data_dir else run_dir.read_classes(model_dir)
    model, _, step = run_dir.load_checkpoint(config, len(classes), checkpoint)
    return model, classes, step
