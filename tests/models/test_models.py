import keras
import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf import models
from quickdraw_tf.models.rnn import RnnClassifier

TINY = dict(num_conv=(6, 8), conv_len=(5, 3), num_layers=2, num_nodes=5, batch_norm=True, dropout=0.2)


def _tiny(num_classes=4, **overrides) -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.get_model("rnn", num_classes, **{**TINY, **overrides})


def _randomize_batch_norm(model):
    """Moving statistics far from (0, 1): batch norm then turns padding zeros into non-zeros."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, w.shape) if i != 1 else rng.normal(size=w.shape)
                    for i, w in enumerate(layer.get_weights())
                ]
            )


def _drawings(rng, lengths, padded_to):
    ink = np.zeros((len(lengths), padded_to, 3), np.float32)
    for i, n in enumerate(lengths):
        ink[i, :n, :2] = rng.normal(size=(n, 2)) * 0.1
        ink[i, n - 1, 2] = 1.0
    return ink


def test_padding_does_not_change_the_logits():
    model = _tiny()
    _randomize_batch_norm(model)
    rng = np.random.default_rng(0)
    lengths = np.array([9, 4, 1], np.int32)
    ink = _drawings(rng, lengths, 9)
    logits = model({"ink": ink, "length": lengths}, training=False).numpy()
    longer = np.concatenate([ink, rng.normal(size=(3, 13, 3)).astype(np.float32)], axis=1)  # junk padding
    logits_longer = model({"ink": longer, "length": lengths}, training=False).numpy()
    np.testing.assert_allclose(logits, logits_longer, atol=1e-5)
    for i, n in enumerate(lengths):  # and alone, unpadded
        alone = model({"ink": ink[i : i + 1, :n], "length": lengths[i : i + 1]}, training=False).numpy()
        np.testing.assert_allclose(alone[0], logits[i], atol=1e-5)


def test_zero_length_drawing_gives_finite_logits():
    model = _tiny()
    logits = model({"ink": np.zeros((2, 3, 3), np.float32), "length": np.array([0, 3], np.int32)})
    assert logits.shape == (2, 4) and np.isfinite(logits).all()


def test_lstms_stay_eligible_for_cudnn():
    for layer in _tiny().layers:
        if isinstance(layer, keras.layers.Bidirectional):
            for lstm in (layer.forward_layer, layer.backward_layer):
                config = lstm.get_config()
                assert config["activation"] == "tanh" and config["recurrent_activation"] == "sigmoid"
                assert config["recurrent_dropout"] == 0 and not config["unroll"] and config["use_bias"]


def test_tiny_model_trains_a_step_and_round_trips_through_model_keras(tmp_path):
    model = _tiny()
    rng = np.random.default_rng(0)
    lengths = np.array([7, 3, 5, 2], np.int32)
    inputs = {"ink": _drawings(rng, lengths, 7), "length": lengths}
    labels = np.array([0, 1, 2, 3])
    optimizer = keras.optimizers.Adam(0.01)
    before = [w.numpy().copy() for w in model.trainable_weights]
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, model(inputs, training=True), from_logits=True
        )
    optimizer.apply_gradients(
        zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights, strict=True)
    )
    assert all(np.any(b != w.numpy()) for b, w in zip(before, model.trainable_weights, strict=True))

    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, RnnClassifier) and loaded.get_config() == model.get_config()
    config = loaded.get_config()  # every hyper-parameter is saved, and the tiny values come back
    assert set(models.model_hparams("rnn")) <= set(config)
    assert {key: tuple(v) if isinstance(v, list) else v for key, v in config.items() if key in TINY} == TINY
    np.testing.assert_allclose(loaded(inputs, training=False), model(inputs, training=False), atol=1e-6)


def test_mixed_precision_keeps_float32_logits():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _tiny()
        logits = model({"ink": np.zeros((1, 4, 3), np.float32), "length": np.array([4], np.int32)})
    finally:
        keras.config.set_dtype_policy(previous)
    assert logits.dtype == tf.float32
    assert model.get_layer("conv_0").compute_dtype == "bfloat16"


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'cnn'; known: rnn"):
        models.get_model("cnn", 3)


def test_unknown_hparam_lists_the_known_ones():
    with pytest.raises(
        ValueError, match=r"unknown hparam\(s\) num_units for model 'rnn'; known: num_conv, conv_len"
    ):
        models.get_model("rnn", 3, num_units=4)


def test_parse_hparams_reads_python_literals():
    parsed = models.parse_hparams(
        [
            "num_conv=48,64,96",
            "num_layers=3",
            "dropout=0.3",
            "batch_norm=true",
            "conv_activation=relu",
            "conv_len=5",
        ]
    )
    assert parsed == {
        "num_conv": (48, 64, 96),
        "num_layers": 3,
        "dropout": 0.3,
        "batch_norm": True,
        "conv_activation": "relu",
        "conv_len": 5,
    }
    model = models.get_model("rnn", 2, **{**parsed, "num_conv": 8, "num_layers": 1, "num_nodes": 4})
    assert model.num_conv == (8,) and model.conv_len == (5,)
    with pytest.raises(ValueError, match="key=value"):
        models.parse_hparams(["num_layers"])
