"""The raster models (scatter_raster, mobilenet, bitmap_cnn) at tiny size: training steps, .keras round
trips, padding, mixed precision, and the shared train/evaluate/export loop, also under MirroredStrategy."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf import models
from quickdraw_tf.data import features, ink
from quickdraw_tf.models.augment import RandomInkAffine
from quickdraw_tf.training import evaluation, export, input_pipeline, trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from tests.conftest import sample_drawings, write_manifest

# Tiny versions of each registered raster model: test key → (model name, hparams).
TINY = {
    "scatter_raster": ("scatter_raster", dict(
        grid_size=8, conv_filters=(8, 8), dilations=(1, 2), point_features=8, blocks=(1, 1),
        widths=(16, 32), strides=(1, 2), stem_width=8, cardinality=1, se_ratio=0.25,
    )),
    # Grouped convolutions (Keras runs them through XLA on CPU): kept out of the slower loop tests.
    "scatter_raster_resnext": ("scatter_raster", dict(
        grid_size=8, conv_filters=(8,), dilations=(1,), point_features=8, blocks=(1,), widths=(16,),
        strides=(1,), stem_width=8, cardinality=4,
    )),
    "mobilenet": ("mobilenet", dict(image_size=32, alpha=0.35)),
    "mobilenet_v3": ("mobilenet", dict(
        version="v3_small", minimalistic=True, image_size=32, alpha=0.35, colour="stroke_palette", channels=3,
    )),
    "bitmap_cnn": ("bitmap_cnn", dict(filters=(4, 8), dense_units=8)),
}  # fmt: skip
EYE_BITMAPS = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "data", "sample", "bitmap")


def _model(key: str, num_classes: int = 4) -> keras.Model:
    name, hparams = TINY[key]
    return models.get_model(name, num_classes, **hparams)


def _ink_batch(count: int = 8, pad_to: int | None = None, junk: float = 0.0):
    inks = [ink.to_ink(record["drawing"]) for record in sample_drawings(per_class=1)[:count]]
    steps = pad_to or max(map(len, inks))
    batch = np.full((len(inks), steps, 3), junk, np.float32)
    for i, one in enumerate(inks):
        batch[i, : len(one)] = one
    return {"ink": batch, "length": np.array([len(one) for one in inks], np.int32)}


def _eye_bitmaps(count: int = 8) -> np.ndarray:
    rows = np.load(os.path.join(EYE_BITMAPS, "sukumr-Doodle-Classifier", "eye.npy"))  # [3000, 1, 784]
    return rows[:count].reshape(-1, 28, 28)


def _inputs(key: str):
    return {"image": _eye_bitmaps()} if key == "bitmap_cnn" else _ink_batch()


# A training step and a model.keras round trip: 5-8 s each on 2 shared cores for the raster models, so
# only bitmap_cnn's (under 1 s) stays in the fast tier; the others are integration.
@pytest.mark.parametrize(
    "key", [k if k == "bitmap_cnn" else pytest.param(k, marks=pytest.mark.integration) for k in sorted(TINY)]
)
def test_tiny_model_trains_a_step_and_round_trips_through_model_keras(key, tmp_path):
    model, inputs = _model(key), _inputs(key)
    labels = np.arange(8) % 4
    optimizer = keras.optimizers.Adam(1e-2)
    before = [w.numpy().copy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        logits = model(inputs, training=True)
        loss = keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
    grads = tape.gradient(loss, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
    assert logits.shape == (8, 4) and np.all(np.isfinite(loss))
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights, strict=True)]
    assert all(changed)  # every weight gets a gradient: nothing is cut off from the loss
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_array_equal(loaded(inputs, training=False), model(inputs, training=False))
    assert loaded.get_config() == model.get_config()
    # Every hyper-parameter is saved, and the tiny (non-default) values come back.
    name, hparams = TINY[key]
    config = loaded.get_config()
    assert set(models.model_hparams(name)) <= set(config)
    for hparam, value in hparams.items():
        assert tuple(config[hparam]) == value if isinstance(value, tuple) else config[hparam] == value, hparam


def test_scatter_raster_gradients_reach_the_sequence_module_through_the_scatter():
    model, inputs = _model("scatter_raster"), _ink_batch()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(model(inputs, training=True) ** 2)
    first_conv = model.get_layer("point_conv_0").kernel
    gradient = tape.gradient(loss, first_conv)
    assert gradient is not None and np.count_nonzero(gradient) == gradient.shape.num_elements()


@pytest.mark.parametrize("key", ["scatter_raster", "mobilenet"])
def test_padding_does_not_change_the_logits(key):
    model = _model(key)
    exact = model(_ink_batch(), training=False)
    padded = model(_ink_batch(pad_to=300, junk=7.0), training=False)  # junk beyond every length
    np.testing.assert_allclose(padded, exact, rtol=1e-4, atol=1e-5)


def test_mixed_precision_keeps_the_scatter_and_the_render_in_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        scatter_model, mobilenet = _model("scatter_raster"), _model("mobilenet")
    finally:
        keras.config.set_dtype_policy(previous)
    inputs = _ink_batch()
    assert scatter_model(inputs).dtype == tf.float32 and mobilenet(inputs).dtype == tf.float32
    assert mobilenet.get_layer("render").compute_dtype == "float32"
    assert scatter_model.get_layer("point_inputs").compute_dtype == "float32"
    # The scatter layer hands float16 on but sums in float32: 100 points of 1000 in one cell.
    scatter = scatter_model.get_layer("scatter")
    features = tf.fill([1, 100, 2], tf.constant(1000.0, tf.float16))
    means = scatter(features, tf.zeros([1, 100, 2], tf.int32), tf.ones([1, 100], tf.bool))
    assert means.dtype == tf.float16 and np.all(means.numpy()[0, 0, 0] == 1000.0)


def _write_image_records(data_dir: str) -> None:
    """Real eye bitmaps as class 0 and the same bitmaps transposed as class 1: a learnable pair."""
    words, eyes = ["eye", "eye transposed"], _eye_bitmaps(160)
    images = [(image, 0) for image in eyes[:80]] + [(image.T, 1) for image in eyes[80:]]
    for split, part in (("train", images[::2]), ("eval", images[1::4]), ("test", images[3::4])):
        path = os.path.join(data_dir, f"quickdraw-{split}.tfrecord-00000-of-00001")
        with tf.io.TFRecordWriter(path) as writer:
            for i, (image, label) in enumerate(part):
                writer.write(features.serialize_image_example(image, label, i, words[label]))
    with open(os.path.join(data_dir, "classes.txt"), "w") as f:
        f.write("".join(f"{word}\n" for word in words))
    write_manifest(data_dir, "images", num_shards=1, num_classes=len(words))


def _config(data_dir, model_dir, key, train_steps):
    name, hparams = TINY[key]
    return trainer.TrainConfig(
        data_dir=data_dir, model_dir=model_dir, model=name, hparams=hparams,
        input=InputConfig(batch_size=8, shuffle_buffer=50, bucket_boundaries=(64,)), train_steps=train_steps,
        eval_every=2, checkpoint_every=2, log_every=2, learning_rate=3e-3, num_summary_drawings=2,
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
        _write_image_records(data_dir)
    model_dir = str(tmp_path / "run")
    trainer.train(_config(data_dir, model_dir, key, train_steps=2))
    trainer.train(_config(data_dir, model_dir, key, train_steps=4))  # resumes from step 2
    assert tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints")).endswith("ckpt-4")
    results = evaluation.evaluate(model_dir, data_dir, split="test", batch_size=16)
    assert 0 <= results["top1"] <= results["map3"] <= results["top3"] <= 1 and results["step"] > 0
    # The export serves what the training data holds (strokes or bitmaps), as model.keras predicts.
    inputs, _ = next(iter(input_pipeline.make_dataset(data_dir, "test", InputConfig(batch_size=3), False)))
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    served = tf.saved_model.load(os.path.join(model_dir, "export")).signatures[export.SIGNATURE](**inputs)
    np.testing.assert_allclose(served["probabilities"], tf.nn.softmax(model(inputs)), atol=1e-5)


MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from quickdraw_tf.training import trainer
from quickdraw_tf.training.input_pipeline import InputConfig
from quickdraw_tf.models.augment import RandomInkAffine
from tests.models.test_raster_models import TINY
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
name, hparams = TINY[sys.argv[3]]
config = trainer.TrainConfig(
    data_dir=sys.argv[1], model_dir=sys.argv[2], model=name, hparams=hparams,
    input=InputConfig(batch_size=8, shuffle_buffer=50, bucket_boundaries=(64,)),
    train_steps=2, eval_every=2, checkpoint_every=2, log_every=2, num_summary_drawings=0,
)
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
