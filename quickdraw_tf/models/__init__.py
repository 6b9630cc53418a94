"""Models by name. Adding a model: write models/<name>.py with a keras.Model class whose constructor
takes `num_classes` plus keyword hyper-parameters with defaults (and a get_config returning them),
then add one line to _MODELS below. train.py passes `--hparams=key=value` flags straight through.
A model with its own loss (sketch_rnn, a generator) also defines the trainer's hooks (see trainer.py).
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable, Iterable

import keras

from quickdraw_tf.models import bitmap_cnn, mobilenet, rnn, scatter_raster, sketch_rnn

_MODELS: dict[str, Callable[..., keras.Model]] = {
    "rnn": rnn.RnnClassifier,
    "scatter_raster": scatter_raster.ScatterRaster,
    "mobilenet": mobilenet.InkMobileNet,
    "bitmap_cnn": bitmap_cnn.BitmapCNN,
    "sketch_rnn": sketch_rnn.SketchRnn,
}

MODEL_NAMES = tuple(_MODELS)


def _constructor(name: str) -> Callable[..., keras.Model]:
    if name not in _MODELS:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(MODEL_NAMES)}")
    return _MODELS[name]


def model_hparams(name: str) -> dict:
    """The hyper-parameters a model accepts, with their defaults."""
    parameters = inspect.signature(_constructor(name)).parameters.values()
    return {
        p.name: p.default
        for p in parameters
        if p.name != "num_classes" and p.kind is p.POSITIONAL_OR_KEYWORD and p.default is not p.empty
    }


def _coerce(key: str, value, default):
    """Shapes a flag value like the default: a scalar where a sequence is expected becomes (scalar,)."""
    if isinstance(default, (tuple, list)) and not isinstance(value, (tuple, list)):
        return (value,)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ValueError(f"hparam {key} must be true or false, got {value!r}")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def check_hparams(name: str, hparams: Iterable[str]) -> dict:
    """Model `name`'s defaults; unknown names or hyper-parameters raise ValueError listing the known ones."""
    defaults = model_hparams(name)
    unknown = sorted(set(hparams) - set(defaults))
    if unknown:
        raise ValueError(
            f"unknown hparam(s) {', '.join(unknown)} for model '{name}'; known: {', '.join(defaults)}"
        )
    return defaults


def get_model(name: str, num_classes: int, **hparams) -> keras.Model:
    """Builds model `name`; unknown names or hyper-parameters raise ValueError listing the known ones."""
    defaults = check_hparams(name, hparams)
    hparams = {key: _coerce(key, value, defaults[key]) for key, value in hparams.items()}
    return _constructor(name)(num_classes=num_classes, **hparams)


def _parse_value(text: str):
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", ""):
        return None
    try:
        return ast.literal_eval(text.strip())  # 3 → int, 0.3 → float, 48,64,96 → tuple
    except (ValueError, SyntaxError):
        return text.strip()  # a bare word such as relu


def parse_hparams(assignments: Iterable[str]) -> dict:
    """["num_layers=2", "num_conv=48,64", "batch_norm=true", "conv_activation=relu"] → dict."""
    hparams = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"hparams must look like key=value, got {assignment!r}")
        hparams[key.strip()] = _parse_value(value)
    return hparams
