"""The raster models (scatter_raster, mobilenet, bitmap_cnn) beyond the contract every model keeps
(test_contract.py): grouped convolutions, gradients through the scatter, float32 where float16 would lose
the drawing, augmentation, and the shared train/evaluate/export loop, also under MirroredStrategy."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf import models
from quickdraw_tf.models.augment import RandomInkAffine
from quickdraw_tf.training import evaluation, export, input_pipeline, trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.harness import TINY_HPARAMS, tiny_config, write_eye_records
from tests.sample import ink_batch, sample_drawings

# Beside the tiny models of tests/harness.py: the ones these tests need, test key -> (model name, hparams).
TINY = {
    **{name: (name, TINY_HPARAMS[name]) for name in ("scatter_raster", "mobilenet", "bitmap_cnn")},
    # Grouped convolutions (Keras runs them through XLA on CPU).
    "scatter_raster_resnext": ("scatter_raster", dict(
        grid_size=8, conv_filters=(8,), dilations=(1,), point_features=8, blocks=(1,), widths=(16,),
        strides=(1,), stem_width=8, cardinality=4,
    )),
    "mobilenet_v3": ("mobilenet", dict(
        version="v3_small", minimalistic=True, image_size=32, alpha=0.35, colour="stroke_palette", channels=3,
    )),
}  # fmt: skip


def _model(key: str, num_classes: int = 4) -> keras.Model:
    name, hparams = TINY[key]
    return models.get_model(name, num_classes, **hparams)


def _ink_batch(count: int = 8) -> dict:
    return ink_batch(sample_drawings(per_class=1)[:count])


@pytest.mark.integration  # grouped convolutions compile through XLA: seconds on 2 shared cores
def test_grouped_convolutions_train_a_step_and_round_trip_through_model_keras(tmp_path):
    model, inputs = _model("scatter_raster_resnext"), _ink_batch()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(inputs, training=True) ** 2)
    grads = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)
    keras.optimizers.Adam(1e-2).apply_gradients(zip(grads, model.trainable_weights, strict=True))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded(inputs, training=False), model(inputs, training=False))
    assert loaded.get_config() == model.get_config()


def test_scatter_raster_gradients_reach_the_sequence_module_through_the_scatter():
    model, inputs = _model("scatter_raster"), _ink_batch()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(inputs, training=True) ** 2)
    first_conv = model.get_layer("point_conv_0").kernel
    gradient = tape.gradient(loss, first_conv)
    assert gradient is not None and np.count_nonzero(gradient) == gradient.shape.num_elements()


def test_mixed_precision_keeps_the_scatter_and_the_render_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        scatter_model, mobilenet = _model("scatter_raster"), _model("mobilenet")
    finally:
        keras.config.set_dtype_policy(previous)
    assert mobilenet.get_layer("render").compute_dtype == "float32"
    assert scatter_model.get_layer("point_inputs").compute_dtype == "float32"
    # The scatter layer hands float16 on but sums in float32: 100 points of 1000 in one cell.
    scatter = scatter_model.get_layer("scatter")
    features = tf.fill([1, 100, 2], tf.constant(1000.0, tf.float16))
    means = scatter(features, tf.zeros([1, 100, 2], tf.int32), tf.ones([1, 100], tf.bool))
    assert means.dtype == tf.float16 and np.all(means.numpy()[0, 0, 0] == 1000.0)


def loop_config(data_dir, model_dir, key, train_steps):
    name, hparams = TINY[key]
    return tiny_config(
        data_dir, model_dir, model=name, steps=train_steps, hparams=hparams, eval_every=2, checkpoint_every=2,
        log_every=2, num_summary_drawings=2,
        input=InputConfig(batch_size=8, shuffle_buffer=50, bucket_boundaries=(64,)),
    )  # fmt: skip


@pytest.mark.integration
@pytest.mark.parametrize(
    "key",
    # MobileNet takes ~1.5 minutes here (tracing the loop and the SavedModel): run with -m slow.
    ["scatter_raster", "bitmap_cnn", pytest.param("mobilenet_v3", marks=pytest.mark.slow)],
)
def test_registered_model_trains_resumes_evaluates_and_exports(key, tfrecord_dir, tmp_path):
    data_dir = tfrecord_dir
    if key == "bitmap_cnn":
        data_dir = str(tmp_path / "images")
        os.makedirs(data_dir)
        write_eye_records(data_dir, 160)
    model_dir = str(tmp_path / "run")
    trainer.train(loop_config(data_dir, model_dir, key, train_steps=2))
    trainer.train(loop_config(data_dir, model_dir, key, train_steps=4))  # resumes from step 2
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-4")
    results = evaluation.evaluate(model_dir, data_dir, split="test", batch_size=16)
    assert 0 <= results["top1"] <= results["map3"] <= results["top3"] <= 1 and results["step"] > 0
    # The export serves what the training data holds (strokes or bitmaps), as model.keras predicts.
    inputs, _ = next(iter(input_pipeline.make_dataset(data_dir, "test", InputConfig(batch_size=3), False)))
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    served = tf.saved_model.load(os.path.join(model_dir, "export")).signatures[export.SIGNATURE](**inputs)
    np.testing.assert_allclose(served["probabilities"], tf.nn.softmax(model(inputs)), atol=1e-5)


MIRRORED_SCRIPT = """
import dataclasses, json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from quickdraw_tf.training import trainer
from tests.models.test_raster_models import loop_config
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = dataclasses.replace(loop_config(sys.argv[1], sys.argv[2], sys.argv[3], 2), num_summary_drawings=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, **trainer.train(config, strategy)}))
"""


@pytest.mark.integration
@pytest.mark.parametrize("key", ["scatter_raster", pytest.param("mobilenet_v3", marks=pytest.mark.slow)])
def test_mirrored_strategy_trains_a_raster_model(key, tfrecord_dir, tmp_path):
    # Two logical CPUs must be set up before TensorFlow starts: a fresh process.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1", "PYTHONPATH": os.getcwd()}
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, tfrecord_dir, str(tmp_path), key],
        capture_output=True, text=True, timeout=400, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["replicas"] == 2 and np.isfinite(summary["loss"]) and 0 <= summary["top1"] <= 1
    assert (tmp_path / "export" / "saved_model.pb").exists()


def test_ink_affine_augmentation_rotates_only_in_training():
    layer = RandomInkAffine(rotation=90.0)
    inputs = _ink_batch()["ink"]
    np.testing.assert_array_equal(layer(inputs, training=False), inputs)
    rotated = layer(inputs, training=True).numpy()
    assert not np.allclose(rotated[..., :2], inputs[..., :2])
    # A rotation keeps every move's length and every pen flag.
    np.testing.assert_allclose(np.hypot(*rotated[..., :2].T), np.hypot(*inputs[..., :2].T), atol=1e-6)
    np.testing.assert_array_equal(rotated[..., 2], inputs[..., 2])
    # One angle per drawing: the angle between a move and its rotation is the same all along it.
    before, after = inputs[0, :5, 0] + 1j * inputs[0, :5, 1], rotated[0, :5, 0] + 1j * rotated[0, :5, 1]
    turns = after / before
    np.testing.assert_allclose(turns, turns[0], atol=1e-5)
