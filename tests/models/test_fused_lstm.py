"""FusedLSTM's CPU kernels (projected; BlockLSTMV2) against keras.layers.LSTM with the same weights: outputs,
states and gradients within 1e-5, with right-padded masks, inside Bidirectional and alone; and which kernel
runs where."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from quickdraw_tf.models.fused_lstm import FusedLSTM, fused_lstm_available
from quickdraw_tf.models.lstm_kernels import block_lstm_sequence, projected_lstm_sequence
from quickdraw_tf.models.rnn import RnnClassifier, with_lstm_kernel
from quickdraw_tf.training import input_pipeline
from quickdraw_tf.training.input_pipeline import InputConfig

pytestmark = pytest.mark.skipif(not fused_lstm_available(), reason="our kernels run only without a GPU")

BATCH, STEPS, FEATURES, UNITS = 4, 9, 5, 6
LENGTHS = np.array([9, 4, 1, 6], np.int32)  # right-padded, one full, one of a single step
KERNELS = ["projected", "block"]
SEQUENCE_KERNELS = [projected_lstm_sequence, block_lstm_sequence]


def _inputs(scale: float = 1.0):
    x = np.random.default_rng(0).normal(size=(BATCH, STEPS, FEATURES)).astype("float32") * scale
    return tf.constant(x), tf.sequence_mask(LENGTHS, STEPS)


def _twin(kernel, wrap, **kwargs):
    """The same layer twice, as keras.layers.LSTM and as FusedLSTM running `kernel`."""
    keras.utils.set_random_seed(1)
    plain = wrap(keras.layers.LSTM(UNITS, **kwargs))
    ours = wrap(FusedLSTM(UNITS, kernel=kernel, **kwargs))
    return plain, ours


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


def _assert_equal_runs(plain, ours, x, mask):
    plain_out, plain_grads = _run(plain, x, mask)
    ours.build(x.shape)
    ours.set_weights(plain.get_weights())
    ours_out, ours_grads = _run(ours, x, mask)
    assert len(plain_out) == len(ours_out)
    for a, b in zip(plain_out, ours_out, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0)
    for a, b in zip(plain_grads, ours_grads, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0)


def _op_types(fn, *args) -> list[str]:
    return [op.type for op in tf.function(fn).get_concrete_function(*args).graph.get_operations()]


def _loop_body_matmuls(fn, *args) -> list[int]:
    """MatMul ops in each forward while-loop body of fn's graph (gradient loops left out)."""
    graph_def = tf.function(fn).get_concrete_function(*args).graph.as_graph_def()
    return [
        sum(node.op in ("MatMul", "BatchMatMulV2") for node in function.node_def)
        for function in graph_def.library.function
        if "while_body" in function.signature.name and "gradients" not in function.signature.name
    ]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("scale", [1.0, 20.0])  # 20: saturated gates, large cell states (no clipping)
def test_bidirectional_sequences_match_keras(kernel, scale):
    plain, ours = _twin(kernel, keras.layers.Bidirectional, return_sequences=True)
    x, mask = _inputs(scale)
    _assert_equal_runs(plain, ours, x, mask)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_single_direction_with_states_matches_keras(kernel, go_backwards, return_sequences):
    plain, ours = _twin(
        kernel,
        lambda layer: layer,
        return_sequences=return_sequences,
        return_state=True,
        go_backwards=go_backwards,
    )
    x, mask = _inputs()
    _assert_equal_runs(plain, ours, x, mask)


@pytest.mark.parametrize("kernel", KERNELS)
def test_without_mask_matches_keras(kernel):
    plain, ours = _twin(kernel, keras.layers.Bidirectional, return_sequences=True)
    x, _ = _inputs()
    _assert_equal_runs(plain, ours, x, None)


@pytest.mark.parametrize("kernel", KERNELS)
def test_matches_keras_inside_tf_function(kernel):
    plain, ours = _twin(kernel, keras.layers.Bidirectional, return_sequences=True)
    x, mask = _inputs()
    expected = plain(x, mask=mask).numpy()
    ours.build(x.shape)
    ours.set_weights(plain.get_weights())
    np.testing.assert_allclose(tf.function(ours)(x, mask=mask).numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("batch", [8, 64])  # the two batch sizes the choice was measured at
def test_auto_runs_the_projected_kernel_on_cpu(batch):
    layer = FusedLSTM(UNITS)
    assert layer.kernel_for(tf.zeros([batch, STEPS, FEATURES])) == "projected"
    assert FusedLSTM(UNITS, kernel="block").kernel_for(tf.zeros([batch, STEPS, FEATURES])) == "block"
    assert FusedLSTM(UNITS, kernel="keras").kernel_for(tf.zeros([batch, STEPS, FEATURES])) == "keras"


def test_projected_kernel_loops_over_the_recurrent_matmul_only():
    """The point of the kernel: one matmul per step forward (Keras' loop has two), no BlockLSTMV2."""
    x, mask = _inputs()
    for kernel, matmuls in (("projected", [1, 1]), ("keras", [2, 2])):
        layer = keras.layers.Bidirectional(FusedLSTM(UNITS, kernel=kernel, return_sequences=True))
        assert _loop_body_matmuls(lambda x, mask, layer=layer: layer(x, mask=mask), x, mask) == matmuls
        assert "BlockLSTMV2" not in _op_types(lambda x, mask, layer=layer: layer(x, mask=mask), x, mask)


def _all_op_types(fn, *args) -> set[str]:
    """Op types of fn's graph and of every function it calls (loop bodies among them)."""
    graph_def = tf.function(fn).get_concrete_function(*args).graph.as_graph_def()
    nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
    return {node.op for node in nodes}


def test_the_default_model_graph_holds_no_fused_op():
    """What an exporter (SavedModel, a graph converter) sees of the default model: plain ops only."""
    model = RnnClassifier(3, num_conv=(4,), conv_len=(3,), num_layers=1, num_nodes=UNITS)
    x, _ = _inputs()
    inputs = {"ink": x[:, :, :3], "length": tf.constant(LENGTHS)}
    ops = _all_op_types(lambda inputs: model(inputs, training=False), inputs)
    assert "BlockLSTMV2" not in ops and "MatMul" in ops
    block = with_lstm_kernel(model, "block")
    assert "BlockLSTMV2" in _all_op_types(lambda inputs: block(inputs, training=False), inputs)


def test_block_kernel_uses_the_fused_op():
    """One BlockLSTMV2 per direction in the graph, no while loop."""
    layer = keras.layers.Bidirectional(FusedLSTM(UNITS, kernel="block", return_sequences=True))
    x, mask = _inputs()
    ops = _op_types(lambda x, mask: layer(x, mask=mask), x, mask)
    assert ops.count("BlockLSTMV2") == 2
    assert "While" not in ops and "StatelessWhile" not in ops


@pytest.mark.parametrize("kernel", ["auto", *KERNELS])
def test_falls_back_to_keras_with_recurrent_dropout(kernel):
    layer = FusedLSTM(UNITS, kernel=kernel, recurrent_dropout=0.5)
    x, _ = _inputs()
    assert layer.kernel_for(x) == "keras"


@pytest.mark.parametrize("kernel, compiled_kernel", [("projected", "projected"), ("block", "keras")])
def test_under_xla_block_takes_keras_loop_and_projected_compiles(kernel, compiled_kernel):
    plain, ours = _twin(kernel, keras.layers.Bidirectional, return_sequences=True)
    x, mask = _inputs()
    expected = plain(x, mask=mask).numpy()
    ours.build(x.shape)
    ours.set_weights(plain.get_weights())
    chosen = []

    def call(x, mask):
        chosen.append(ours.forward_layer.kernel_for(x))
        return ours(x, mask=mask)

    compiled = tf.function(call, jit_compile=True)
    graph = compiled.get_concrete_function(x, mask).graph
    assert chosen == [compiled_kernel]
    assert "BlockLSTMV2" not in [op.type for op in graph.get_operations()]
    np.testing.assert_allclose(compiled(x, mask).numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_left_padded_mask_is_refused(kernel):
    layer = FusedLSTM(UNITS, kernel=kernel)
    x, _ = _inputs()
    left_padded = tf.reverse(tf.sequence_mask(LENGTHS, STEPS), axis=[1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="right-padded"):
        layer(x, mask=left_padded)


def test_unknown_kernel_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown LSTM kernel 'cudnn'; known: auto, projected, block, keras"):
        RnnClassifier(3, lstm_kernel="cudnn")


@pytest.mark.parametrize("sequence_kernel", SEQUENCE_KERNELS)
def test_empty_sequence_keeps_the_initial_state(sequence_kernel):
    x, _ = _inputs()
    h0 = tf.ones([BATCH, UNITS])
    c0 = 2 * tf.ones([BATCH, UNITS])
    weights = [tf.ones([FEATURES, 4 * UNITS]), tf.ones([UNITS, 4 * UNITS]), tf.zeros([4 * UNITS])]
    h, last_h, last_c = sequence_kernel(x, tf.constant([0, 1, 2, 3]), h0, c0, *weights)
    np.testing.assert_array_equal(last_h[0].numpy(), h0[0].numpy())
    np.testing.assert_array_equal(last_c[0].numpy(), c0[0].numpy())
    np.testing.assert_array_equal(h[0].numpy(), np.zeros([STEPS, UNITS]))


def test_rnn_classifier_gives_the_same_results_with_every_kernel(tfrecord_dir):
    """The tutorial model (small) on a batch of real drawings, run by each kernel: same logits and
    gradients, and the same weight names (checkpoints move between them)."""
    hparams = dict(num_conv=(4,), conv_len=(3,), num_layers=2, num_nodes=UNITS, dropout=0.0)
    keras.utils.set_random_seed(2)
    plain = RnnClassifier(10, lstm_kernel="keras", **hparams)
    config = InputConfig(batch_size=8, shuffle_buffer=1, bucket_boundaries=())
    inputs, _ = next(iter(input_pipeline.make_dataset(tfrecord_dir, "train", config, training=False)))
    assert len(set(inputs["length"].numpy())) > 1  # padded: the drawings differ in length
    results = {}
    for kernel in ("keras", "auto", *KERNELS):
        model = with_lstm_kernel(plain, kernel)
        assert [w.path for w in model.weights] == [w.path for w in plain.weights]
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = tf.reduce_sum(logits * _weights_like(logits))
        results[kernel] = [logits, *tape.gradient(loss, model.trainable_variables)]
    for kernel in ("auto", *KERNELS):
        for a, b in zip(results["keras"], results[kernel], strict=True):
            np.testing.assert_allclose(b.numpy(), a.numpy(), atol=1e-5, rtol=0)


def test_models_saved_with_the_fused_lstm_flag_load():
    """Configs written when the choice was the boolean `fused_lstm` map onto the kernels."""
    config = RnnClassifier(3, num_conv=(4,), conv_len=(3,), num_layers=1, num_nodes=UNITS).get_config()
    del config["lstm_kernel"]
    for fused, kernel in ((True, "auto"), (False, "keras")):
        assert RnnClassifier.from_config({**config, "fused_lstm": fused}).hparams["lstm_kernel"] == kernel
    layer_config = FusedLSTM(UNITS).get_config()
    del layer_config["kernel"]
    assert FusedLSTM.from_config({**layer_config, "fused": False}).lstm_kernel == "keras"
