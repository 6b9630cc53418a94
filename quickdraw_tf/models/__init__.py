"""Models by name, each imported on first use: the registry imports no Keras until a model is asked for.

Adding a model: write models/<name>.py with a keras.Model class that keeps the contract of
models/contract.py (its constructor takes `num_classes` plus keyword hyper-parameters with defaults, kept
in one `hparams` dict that get_config returns), add its name to MODEL_NAMES and one branch to model_class
below. train.py passes `--hparams=key=value` flags straight through. A model with its own loss (sketch_rnn,
a generator) also keeps contract.OwnLoss; its own TensorBoard pictures come from _summary_images.

Each model module registers its Keras classes when imported, so keras.models.load_model(".../model.keras")
needs the module of the saved model imported first: register_all() imports every one.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING

from quickdraw_tf.models import contract

if TYPE_CHECKING:
    import keras

MODEL_NAMES = ("rnn", "scatter_raster", "mobilenet", "bitmap_cnn", "sketch_rnn")


def model_class(name: str) -> type[keras.Model]:
    """The keras.Model class of model `name` (its module imported now); ValueError for an unknown name."""
    check_name(name)
    if name == "rnn":
        from quickdraw_tf.models.rnn import RnnClassifier as model
    elif name == "scatter_raster":
        from quickdraw_tf.models.scatter_raster import ScatterRaster as model
    elif name == "mobilenet":
        from quickdraw_tf.models.mobilenet import InkMobileNet as model
    elif name == "bitmap_cnn":
        from quickdraw_tf.models.bitmap_cnn import BitmapCNN as model
    else:
        from quickdraw_tf.models.sketch_rnn import SketchRnn as model
    return model


def check_name(name: str) -> None:
    """ValueError (one line) unless `name` is a registered model."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(MODEL_NAMES)}")


def register_all() -> None:
    """Imports every model module, which registers the project's Keras classes (for load_model)."""
    for name in MODEL_NAMES:
        model_class(name)


def _summary_images(name: str) -> contract.SummaryImages | None:
    """Model `name`'s own TensorBoard pictures, if it has them (a generator draws samples); None: the
    trainer shows eval drawings with their predictions."""
    if name == "sketch_rnn":
        from quickdraw_tf.models.sketch_sampling import summary_images

        return summary_images
    return None


def hooks(name: str, model: keras.Model) -> contract.Hooks:
    """What the trainer and the exporter do with `model`, a model `name`: its contract checked
    (contract.ContractError where it is kept in part), with its own pictures."""
    return contract.check(model, _summary_images(name))


def model_hparams(name: str) -> dict:
    """The hyper-parameters a model accepts, with their defaults."""
    parameters = inspect.signature(model_class(name)).parameters.values()
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
    return model_class(name)(num_classes=num_classes, **hparams)


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
