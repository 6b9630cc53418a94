"""What the trainer, the exporter and the Predictor ask of a model, as typing.Protocols, and the one place
that checks a model against them (`check`).

Every registered model (models/__init__.py) is a keras.Model built as `cls(num_classes, **hparams)` that
keeps its hyper-parameters in ONE dict, `hparams` (the constructor's keyword arguments), from which its
get_config is made (`config_with_hparams`): a model.keras file rebuilds it.

A classifier returns logits [B, num_classes] from delta ink {"ink", "length"} or from 28x28 bitmaps
{"image"}: the trainer trains it on cross-entropy and keeps the checkpoint of the best eval MAP@3, and the
export serves its class probabilities with the signature of its inputs.

A model with its own loss (a generator, models/sketch_rnn.py) keeps `OwnLoss` besides: the trainer trains
and evaluates it on `loss_sums`, logs `metric_keys`, keeps the checkpoint of the lowest eval loss, calls
`adapt_to_data` once before step 0 (what it returns goes to data_stats.json), and exports no serving
signature (its outputs are no class probabilities).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

INK = "ink"
IMAGE = "image"
# A classifier's inputs by kind: the names of its Keras inputs.
INPUTS = {frozenset({"ink", "length"}): INK, frozenset({"image"}): IMAGE}

# (model, class names, count) -> {summary name: PNG}: a model's own TensorBoard pictures (a generator's
# samples per class) in place of the eval drawings titled with their predictions.
SummaryImages = Callable[["keras.Model", list[str], int], dict[str, bytes]]


@runtime_checkable
class Model(Protocol):
    """Every registered model."""

    num_classes: int
    hparams: dict[str, Any]  # the constructor's keyword arguments: the one copy of the hyper-parameters

    def __call__(self, inputs: dict[str, tf.Tensor], training: bool = False) -> Any: ...

    def get_config(self) -> dict: ...


@runtime_checkable
class OwnLoss(Protocol):
    """A model trained on its own loss instead of cross-entropy over logits."""

    metric_keys: tuple[str, ...]  # the sums loss_sums returns, with "loss" and "count" among them

    def loss_sums(
        self, inputs: dict[str, tf.Tensor], labels: tf.Tensor, step: tf.Tensor, training: bool
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """(per-example loss [B], metrics summed over the batch)."""

    def adapt_to_data(self, dataset: tf.data.Dataset) -> dict:
        """Sets the model's data-dependent constants from one pass over the training split; returns them."""


OWN_LOSS_MEMBERS = ("metric_keys", "loss_sums", "adapt_to_data")


class ContractError(TypeError):
    """A model that does not keep the contract of this module."""


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What the trainer and the exporter do with one model, decided once by `check`."""

    own_loss: OwnLoss | None  # None: a classifier
    inputs: str | None  # a classifier's input kind (INK or IMAGE): its serving signature; None with own_loss
    summary_images: SummaryImages | None = None  # None: the eval drawings with their predictions

    @property
    def serves(self) -> bool:
        """Whether the export has a serving signature (class probabilities): a classifier's has."""
        return self.own_loss is None


def input_kind(model: keras.Model) -> str:
    """INK or IMAGE, from the names of a classifier's Keras inputs; ContractError for any other inputs."""
    # A subclassed model (a generator) has no Keras inputs at all.
    names = frozenset(tensor.name for tensor in getattr(model, "inputs", None) or ())
    if names not in INPUTS:
        raise ContractError(
            f"{type(model).__name__} takes inputs {sorted(names)}: a classifier takes ink+length or image"
        )
    return INPUTS[names]


def check(model: keras.Model, summary_images: SummaryImages | None = None) -> Hooks:
    """The model's hooks; ContractError when it keeps the contract only in part (e.g. loss_sums without
    adapt_to_data, or no hparams dict)."""
    name = type(model).__name__
    if not isinstance(model, Model) or not isinstance(model.hparams, dict):
        raise ContractError(f"{name} keeps no num_classes and hparams dict (models/contract.py)")
    present = [member for member in OWN_LOSS_MEMBERS if hasattr(model, member)]
    if present and len(present) < len(OWN_LOSS_MEMBERS):
        missing = ", ".join(member for member in OWN_LOSS_MEMBERS if member not in present)
        raise ContractError(f"{name} defines {', '.join(present)} of its own loss but not {missing}")
    if present:
        return Hooks(own_loss=model, inputs=None, summary_images=summary_images)
    return Hooks(own_loss=None, inputs=input_kind(model), summary_images=summary_images)


def config_with_hparams(model: Model, base_config: dict) -> dict:
    """A registered model's get_config: Keras' base config, num_classes and every hyper-parameter.

    Sequences are saved as lists (JSON's own arrays, as model.keras files hold them), and the dtype policy
    is left out: a loaded model is rebuilt under the global policy, as when it was first built."""
    config = {key: value for key, value in base_config.items() if key != "dtype"}
    hparams = {key: list(v) if isinstance(v, tuple) else v for key, v in model.hparams.items()}
    return {**config, "num_classes": model.num_classes, **hparams}
