"""FusedLSTM (BlockLSTMV2 on CPU) against keras.layers.LSTM with the same weights: outputs, states and
gradients within 1e-5, with right-padded masks, inside Bidirectional and alone."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf.models.fused_lstm import FusedLSTM, block_lstm_sequence, fused_lstm_available
from quickdraw_tf.models.rnn import RnnClassifier

pytestmark = pytest.mark.skipif(not fused_lstm_available(), reason="the fused path runs only without a GPU")

BATCH, STEPS, FEATURES, UNITS = 4, 9, 5, 6
LENGTHS = np.array([9, 4, 1, 6], np.int32)  # right-padded, one full, one of a single step


def _inputs(scale: float = 1.0):
    x = np.random.default_rng(0).normal(size=(BATCH, STEPS, FEATURES)).astype("float32") * scale
    return tf.constant(x), tf.sequence_mask(LENGTHS, STEPS)


def _twin(layer_cls, wrap, **kwargs):
    """The same layer twice, as keras.layers.LSTM and as FusedLSTM, with the same weights."""
    keras.utils.set_random_seed(1)
    plain = wrap(keras.layers.LSTM(UNITS, **kwargs))
    fused = wrap(layer_cls(UNITS, **kwargs))
    return plain, fused


def _weights_like(tensor):
    return tf.reshape(tf.sin(tf.range(tf.size(tensor), dtype=tensor.dtype)), tf.shape(tensor))


def _run(layer, x, mask):
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = layer(x, mask=mask)
        flat = tf.nest.flatten(outputs)
        # Weighted sum: each output element gets its own gradient.
        loss = sum(tf.reduce_sum(o * _weights_like(o)) for o in flat)
    grads = tape.gradient(loss, [x, *layer.trainable_variables])
    return flat, grads


def _assert_equal_runs(plain, fused, x, mask):
    plain_out, plain_grads = _run(plain, x, mask)
    fused.build(x.shape)
    fused.set_weights(plain.get_weights())
    fused_out, fused_grads = _run(fused, x, mask)
    assert len(plain_out) == len(fused_out)
    for a, b in zip(plain_out, fused_out, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0)
    for a, b in zip(plain_grads, fused_grads, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0)


@pytest.mark.parametrize("scale", [1.0, 20.0])  # 20: saturated gates, large cell states (no clipping)
def test_bidirectional_sequences_match_keras(scale):
    plain, fused = _twin(FusedLSTM, keras.layers.Bidirectional, return_sequences=True)
    x, mask = _inputs(scale)
    _assert_equal_runs(plain, fused, x, mask)


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_single_direction_with_states_matches_keras(go_backwards, return_sequences):
    plain, fused = _twin(
        FusedLSTM,
        lambda layer: layer,
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards,
    )
    x, mask = _inputs()
    _assert_equal_runs(plain, fused, x, mask)


def test_without_mask_matches_keras():
    plain, fused = _twin(FusedLSTM, keras.layers.Bidirectional, return_sequences=True)
    x, _ = _inputs()
    _assert_equal_runs(plain, fused, x, None)


def test_matches_keras_inside_tf_function():
    plain, fused = _twin(FusedLSTM, keras.layers.Bidirectional, return_sequences=True)
    x, mask = _inputs()
    expected = plain(x, mask=mask).numpy()
    fused.build(x.shape)
    fused.set_weights(plain.get_weights())
    np.testing.assert_allclose(tf.function(fused)(x, mask=mask).numpy(), expected, atol=1e-5, rtol=0)


def test_uses_the_fused_op():
    """The point of the layer: one BlockLSTMV2 per direction in the graph, no while loop."""
    layer = keras.layers.Bidirectional(FusedLSTM(UNITS, return_sequences=True))
    x, mask = _inputs()
    graph = tf.function(lambda x, mask: layer(x, mask=mask)).get_concrete_function(x, mask).graph
    ops = [op.type for op in graph.get_operations()]
    assert ops.count("BlockLSTMV2") == 2
    assert "While" not in ops and "StatelessWhile" not in ops


def test_falls_back_to_keras_with_recurrent_dropout():
    layer = FusedLSTM(UNITS, recurrent_dropout=0.5)
    x, mask = _inputs()
    graph = tf.function(lambda x, mask: layer(x, mask=mask)).get_concrete_function(x, mask).graph
    assert "BlockLSTMV2" not in [op.type for op in graph.get_operations()]


def test_takes_keras_loop_under_xla():
    plain, fused = _twin(FusedLSTM, keras.layers.Bidirectional, return_sequences=True)
    x, mask = _inputs()
    expected = plain(x, mask=mask).numpy()
    fused.build(x.shape)
    fused.set_weights(plain.get_weights())
    compiled = tf.function(lambda x, mask: fused(x, mask=mask), jit_compile=True)
    graph = compiled.get_concrete_function(x, mask).graph
    assert "BlockLSTMV2" not in [op.type for op in graph.get_operations()]
    np.testing.assert_allclose(compiled(x, mask).numpy(), expected, atol=1e-5, rtol=0)


def test_left_padded_mask_is_refused():
    layer = FusedLSTM(UNITS)
    x, _ = _inputs()
    left_padded = tf.reverse(tf.sequence_mask(LENGTHS, STEPS), axis=[1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="right-padded"):
        layer(x, mask=left_padded)


def test_empty_sequence_keeps_the_initial_state():
    x, _ = _inputs()
    h0 = tf.ones([BATCH, UNITS])
    c0 = 2 * tf.ones([BATCH, UNITS])
    weights = [tf.ones([FEATURES, 4 * UNITS]), tf.ones([UNITS, 4 * UNITS]), tf.zeros([4 * UNITS])]
    h, last_h, last_c = block_lstm_sequence(x, tf.constant([0, 1, 2, 3]), h0, c0, *weights)
    np.testing.assert_array_equal(last_h[0].numpy(), h0[0].numpy())
    np.testing.assert_array_equal(last_c[0].numpy(), c0[0].numpy())
    np.testing.assert_array_equal(h[0].numpy(), np.zeros([STEPS, UNITS]))


def test_rnn_classifier_fused_equals_keras_loop():
    """The tutorial model (small) with and without the fused kernel: same logits and gradients on a
    padded batch, and the same weight names (checkpoints move between the two)."""
    hparams = dict(num_conv=(4,), conv_len=(3,), num_layers=2, num_nodes=UNITS, dropout=0.0)
    keras.utils.set_random_seed(2)
    plain = RnnClassifier(3, fused_lstm=False, **hparams)
    fused = RnnClassifier(3, **hparams)
    assert [w.path for w in fused.weights] == [w.path for w in plain.weights]
    fused.set_weights(plain.get_weights())
    x, _ = _inputs()
    inputs = {"ink": x[:, :, :3], "length": tf.constant(LENGTHS)}
    results = []
    for model in (plain, fused):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = tf.reduce_sum(logits * _weights_like(logits))
        results.append([logits, *tape.gradient(loss, model.trainable_variables)])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0)
