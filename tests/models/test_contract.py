"""The contract every registered model keeps (quickdraw_tf/models/contract.py), checked on each model at its
tiny size (tests/harness.py TINY_HPARAMS) with real sample drawings: it builds with its hyper-parameters in
one dict and passes the hooks' check, one training step of the trainer's own moves every weight, model.keras
saves and loads it (outputs and hyper-parameters), the model.keras files of the saved format keep loading, a
classifier's export serves its class probabilities (and a model with its own loss exports none), a stroke
classifier's logits ignore the padding, and mixed precision keeps the logits float32."""

from __future__ import annotations

import json
import os
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf import models
from quickdraw_tf.models import contract
from quickdraw_tf.models.bitmap_cnn import BitmapCNN
from quickdraw_tf.training import export, train_outputs, trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import TINY_HPARAMS, tiny_config
from tests.sample import eye_bitmaps, ink_batch, sample_drawings

NUM_CLASSES = 4
BATCH = 8
# Each model's kind as the contract sees it: the input kind of a classifier, None for a model with its own
# loss. test_each_model_is_of_its_kind holds this table to the models themselves.
KINDS = {"rnn": "ink", "scatter_raster": "ink", "mobilenet": "ink", "bitmap_cnn": "image", "sketch_rnn": None}
# The larger models (seconds a test on 2 shared cores): the integration tier runs their step and round trip.
SLOW = {"scatter_raster", "mobilenet"}
SAVED = os.path.join(os.path.dirname(__file__), "saved")  # model.keras files as the saved format holds them


def _tiered(names) -> list:
    return [pytest.param(name, marks=pytest.mark.integration) if name in SLOW else name for name in names]


ALL = _tiered(models.MODEL_NAMES)
STROKE_CLASSIFIERS = [name for name, kind in KINDS.items() if kind == contract.INK]
CLASSIFIERS = [name for name, kind in KINDS.items() if kind is not None]


def _build(name: str, **overrides) -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.get_model(name, NUM_CLASSES, **{**TINY_HPARAMS[name], **overrides})


def _batch(name: str) -> tuple[dict, np.ndarray]:
    """Real inputs of the model's kind (sample drawings, or the sample's eye bitmaps) and labels."""
    if KINDS[name] == contract.IMAGE:
        inputs = {"image": eye_bitmaps(BATCH)}
    else:
        inputs = ink_batch(sample_drawings(per_class=1)[:BATCH])
    return inputs, np.arange(BATCH) % NUM_CLASSES


def _outputs(model: keras.Model, inputs: dict, labels: np.ndarray) -> np.ndarray:
    """What the model gives in evaluation: a classifier's logits, or the per-drawing loss of its own."""
    hooks = contract.check(model)
    if hooks.own_loss is None:
        return np.asarray(model(inputs, training=False))
    return np.asarray(hooks.own_loss.loss_sums(inputs, labels, step=tf.constant(0), training=False)[0])


def test_every_registered_model_is_in_the_suite():
    assert set(TINY_HPARAMS) == set(KINDS) == set(models.MODEL_NAMES)


@pytest.mark.parametrize("name", ALL)
def test_each_model_is_of_its_kind(name):
    hooks = models.hooks(name, _build(name))
    assert hooks.inputs == KINDS[name]
    assert hooks.serves == (KINDS[name] is not None)
    assert (hooks.own_loss is None) == hooks.serves


@pytest.mark.parametrize("name", ALL)
def test_hyper_parameters_live_in_one_dict_that_get_config_returns(name):
    model = _build(name)
    expected = {**models.model_hparams(name), **TINY_HPARAMS[name]}
    assert dict(model.hparams) == expected and model.num_classes == NUM_CLASSES
    config = model.get_config()
    listed = {key: list(value) if isinstance(value, tuple) else value for key, value in expected.items()}
    assert {key: config[key] for key in listed} == listed  # sequences as JSON lists, as model.keras holds
    assert config["num_classes"] == NUM_CLASSES and "dtype" not in config


@pytest.mark.parametrize("name", ALL)
def test_evaluation_outputs_of_a_batch(name):
    model = _build(name)
    inputs, labels = _batch(name)
    hooks = models.hooks(name, model)
    if hooks.own_loss is None:
        logits = model(inputs, training=False)
        assert logits.shape == (BATCH, NUM_CLASSES) and logits.dtype == tf.float32
        assert np.isfinite(logits).all()
    else:
        per_example, sums = hooks.own_loss.loss_sums(inputs, labels, step=tf.constant(0), training=False)
        assert per_example.shape == (BATCH,) and np.isfinite(per_example).all()
        assert set(sums) | {"loss"} == set(hooks.own_loss.metric_keys)  # the trainer adds "loss"


@pytest.mark.parametrize("name", ALL)
def test_one_training_step_of_the_trainer_moves_every_weight(name, tmp_path):
    config = tiny_config("", str(tmp_path), model=name, input=InputConfig(batch_size=BATCH))
    keras.utils.set_random_seed(0)
    state = trainer.TrainState.create(config, NUM_CLASSES)
    assert state.hooks == models.hooks(name, state.model)
    before = [w.numpy().copy() for w in state.model.trainable_weights]
    sums, norm = trainer.train_step_fn(state, config)(*_batch(name))
    assert set(sums) == set(state.metric_keys) and all(np.isfinite(float(v)) for v in sums.values())
    assert float(sums["count"]) > 0 and np.isfinite(float(norm)) and float(norm) > 0
    weights = zip(before, state.model.trainable_weights, strict=True)
    unchanged = [w.path for b, w in weights if np.array_equal(b, w.numpy())]
    assert unchanged == []  # every weight gets a gradient: nothing is cut off from the loss


@pytest.mark.parametrize("name", ALL)
def test_model_keras_round_trip(name, tmp_path):
    model = _build(name)
    inputs, labels = _batch(name)
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    assert dict(loaded.hparams) == dict(model.hparams)
    assert models.hooks(name, loaded).inputs == KINDS[name]
    np.testing.assert_array_equal(_outputs(loaded, inputs, labels), _outputs(model, inputs, labels))


@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_model_keras_files_of_the_saved_format_keep_loading(name):
    """Files written by the model classes as they kept one attribute per hyper-parameter: the same config
    and weights load (a hyper-parameter added since takes its default), give the outputs saved with them,
    and rebuild from their own hyper-parameters."""
    path = os.path.join(SAVED, f"{name}.keras")
    saved = np.load(os.path.join(SAVED, "outputs.npz"))
    models.register_all()  # as `import quickdraw_tf` does: load_model finds every model class
    loaded = keras.models.load_model(path)
    models.hooks(name, loaded)
    if name == "sketch_rnn":
        inputs = {key: saved[key] for key in ("ink", "length", "class_index")}
        outputs = loaded(inputs, training=False)["output"]
    else:
        outputs = loaded({"image": saved["image"]} if name == "bitmap_cnn" else
                         {"ink": saved["ink"], "length": saved["length"]}, training=False)  # fmt: skip
    np.testing.assert_allclose(outputs, saved[name], rtol=1e-5, atol=1e-6)
    with zipfile.ZipFile(path) as archive:
        saved_config = json.loads(archive.read("config.json"))["config"]
    config = json.loads(json.dumps(loaded.get_config()))  # as model.keras would hold it now
    assert {key: config[key] for key in saved_config} == saved_config  # every saved setting comes back
    added = set(config) - set(saved_config)  # hyper-parameters the model gained since: at their defaults
    defaults = json.loads(json.dumps(models.model_hparams(name)))
    assert {key: config[key] for key in added} == {key: defaults[key] for key in added}
    rebuilt = models.get_model(name, loaded.num_classes, **loaded.hparams).get_config()
    assert {**rebuilt, "name": loaded.name} == loaded.get_config()


@pytest.mark.integration  # a SavedModel traced and loaded per model
@pytest.mark.parametrize("name", models.MODEL_NAMES)
def test_a_classifier_exports_its_probabilities_and_a_generator_nothing(name, tmp_path):
    model = _build(name)
    hooks = models.hooks(name, model)
    classes = [f"class {i}" for i in range(NUM_CLASSES)]
    train_outputs.save_model(model, classes, str(tmp_path), chief=True, serving=hooks.serves)
    assert (tmp_path / "model.keras").exists()
    if not hooks.serves:
        assert not (tmp_path / "export").exists()
        return
    inputs, _ = _batch(name)
    served = tf.saved_model.load(str(tmp_path / "export")).signatures[export.SIGNATURE](
        **{key: tf.constant(value) for key, value in inputs.items()}
    )
    expected = tf.nn.softmax(model(inputs, training=False))
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5)
    top = np.argsort(-served["probabilities"].numpy(), axis=-1)[:, :3]
    assert served["top_k_classes"].numpy().tolist() == [[classes[i].encode() for i in row] for row in top]


def _randomize_batch_norm(model: keras.Model) -> None:
    """Moving statistics far from (0, 1): batch norm then turns padding zeros into non-zeros."""
    rng = np.random.default_rng(1)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(
                [rng.uniform(0.5, 2, w.shape) if i != 1 else rng.normal(size=w.shape)
                 for i, w in enumerate(layer.get_weights())]
            )  # fmt: skip


@pytest.mark.parametrize("name", STROKE_CLASSIFIERS)
def test_padding_does_not_change_a_stroke_classifiers_logits(name):
    # The rnn's batch norm is off at its tiny size; on, its moving statistics are what could leak padding.
    model = _build(name, **({"batch_norm": True, "num_layers": 2} if name == "rnn" else {}))
    _randomize_batch_norm(model)
    records = sample_drawings(per_class=1)[:BATCH]
    exact = model(ink_batch(records), training=False).numpy()
    padded = model(ink_batch(records, pad_to=300, junk=7.0), training=False)  # junk past every length
    np.testing.assert_allclose(padded, exact, rtol=1e-4, atol=1e-5)
    for i, record in enumerate(records[:3]):  # and each drawing alone, unpadded
        alone = model(ink_batch([record]), training=False).numpy()
        np.testing.assert_allclose(alone[0], exact[i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_mixed_precision_keeps_the_logits_float32(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _build(name)
    finally:
        keras.config.set_dtype_policy(previous)
    logits = model(_batch(name)[0], training=False)
    assert logits.dtype == tf.float32 and np.isfinite(logits).all()
    assert any(layer.compute_dtype == "float16" for layer in model._flatten_layers())  # the policy applied


class _HalfGenerator(BitmapCNN):
    """A classifier that declares a loss of its own without the rest of the hooks."""

    metric_keys = ("loss", "count")

    def loss_sums(self, inputs, labels, step, training):
        logits = self(inputs, training=training)
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True), {}


def test_a_contract_kept_in_part_is_refused():
    half = "defines metric_keys, loss_sums of its own loss but not adapt_to_data"
    with pytest.raises(contract.ContractError, match=half):
        contract.check(_HalfGenerator(NUM_CLASSES, **TINY_HPARAMS["bitmap_cnn"]))
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(NUM_CLASSES)])
    with pytest.raises(contract.ContractError, match="keeps no num_classes and hparams dict"):
        contract.check(plain)
