"""Keras' LSTM with TensorFlow's fused CPU kernel (BlockLSTMV2) when no GPU is present.

On CPU, Keras 3 runs an LSTM as a tf.while_loop of small ops per time step (a matmul, a split, four
activations, a few element-wise ops and the mask's selects), and their per-op overhead dominates at
small batches. `tf.raw_ops.BlockLSTMV2` is one op for the whole sequence, with one fused gradient op
(BlockLSTMGradV2): the same equations in the same gate order as Keras (i, f, c, o; no peepholes,
no cell clipping), so the layer keeps Keras' weights, names and checkpoints.

When the fused path runs: TensorFlow backend, no GPU visible (`tf.config.list_logical_devices("GPU")`
empty: with a GPU, Keras' own path is left untouched and picks cuDNN), the configuration cuDNN also
needs (tanh / sigmoid, bias, no unroll) plus no dropout / recurrent dropout inside the layer, and
float32. Otherwise it is plain `keras.layers.LSTM`. Like the cuDNN path, the fused path needs a
right-padded mask (the first `length` steps valid), which is asserted at run time.

Masked steps give what Keras gives: zeros (inside Bidirectional, `zero_output_for_mask`) or the last
valid output, and the state after the last valid step; `go_backwards` reverses each sequence within
its own length (as Keras' cuDNN path does) and returns the outputs in Keras' reversed order.
BlockLSTMV2 has no XLA kernel: traced inside a jit_compile'd tf.function, the layer takes Keras' loop.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util


def fused_lstm_available() -> bool:
    """True where the fused kernel replaces Keras' loop: TensorFlow backend and no GPU."""
    return keras.backend.backend() == "tensorflow" and not tf.config.list_logical_devices("GPU")


def _in_xla_context() -> bool:
    """True while tracing inside tf.function(jit_compile=True), where BlockLSTMV2 cannot compile."""
    return control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


@tf.custom_gradient
def _block_lstm(x, cs_prev, h_prev, w, b):
    """BlockLSTMV2 over time-major x [T, B, D] → (cs, h), each [T, B, U].

    The gradient is BlockLSTMGradV2, given here explicitly: TensorFlow registers the V1 gradient
    (BlockLSTMGrad, gate order i, c, f, o) for BlockLSTMV2 too (tensorflow/python/ops/rnn_grad.py),
    which gives wrong gradients for V2's i, f, c, o gates.
    """
    zeros = tf.zeros(tf.shape(b)[:1] // 4, x.dtype)
    args = dict(
        seq_len_max=tf.cast(tf.shape(x)[0], tf.int64),
        x=x,
        cs_prev=cs_prev,
        h_prev=h_prev,
        w=w,
        wci=zeros,
        wcf=zeros,
        wco=zeros,
        b=b,
    )
    # cell_clip <= 0: no clipping, as in Keras.
    i, cs, f, o, ci, co, h = tf.raw_ops.BlockLSTMV2(**args, cell_clip=0.0, use_peephole=False)

    def grad(cs_grad, h_grad):
        cs_grad = tf.zeros_like(cs) if cs_grad is None else cs_grad
        h_grad = tf.zeros_like(h) if h_grad is None else h_grad
        x_grad, cs_prev_grad, h_prev_grad, w_grad, _, _, _, b_grad = tf.raw_ops.BlockLSTMGradV2(
            **args,
            i=i,
            cs=cs,
            f=f,
            o=o,
            ci=ci,
            co=co,
            h=h,
            cs_grad=cs_grad,
            h_grad=h_grad,
            use_peephole=False,
        )
        return x_grad, cs_prev_grad, h_prev_grad, w_grad, b_grad

    return (cs, h), grad


def block_lstm_sequence(
    x: tf.Tensor,
    lengths: tf.Tensor,
    h0: tf.Tensor,
    c0: tf.Tensor,
    kernel: tf.Tensor,
    recurrent_kernel: tf.Tensor,
    bias: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Runs BlockLSTMV2 forward over right-padded x [B, T, D] → (h [B, T, U] zero past each length,
    last h [B, U], last c [B, U]); a sequence of length 0 keeps (h0, c0)."""
    steps = tf.shape(x)[1]
    w = tf.concat([kernel, recurrent_kernel], axis=0)
    # Read the bias here, as a tensor: a (distributed) variable read inside the custom-gradient function
    # would need a grad_fn taking `variables` (seen under MirroredStrategy in eager mode).
    bias = tf.convert_to_tensor(bias)
    c, h = _block_lstm(tf.transpose(x, [1, 0, 2]), c0, h0, w, bias)  # the kernel is time-major
    h = tf.transpose(h, [1, 0, 2])
    c = tf.transpose(c, [1, 0, 2])
    valid = tf.sequence_mask(lengths, steps, dtype=x.dtype)[:, :, None]
    # Past its length a sequence runs on over the padding; those outputs are zeroed (they get no
    # gradient) and the state is read at the last valid step.
    last = tf.maximum(lengths - 1, 0)
    empty = tf.equal(lengths, 0)[:, None]
    last_h = tf.where(empty, h0, tf.gather(h, last, batch_dims=1))
    last_c = tf.where(empty, c0, tf.gather(c, last, batch_dims=1))
    return h * valid, last_h, last_c


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class FusedLSTM(keras.layers.LSTM):
    """keras.layers.LSTM whose inner loop is BlockLSTMV2 when `fused_lstm_available()` (see module doc).

    fused=False: always Keras' own inner loop (for comparisons; the weights are the same either way).
    """

    def __init__(self, units: int, fused: bool = True, **kwargs):
        super().__init__(units, **kwargs)
        self.fused = fused

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"fused": self.fused})
        return config

    def _fused_eligible(self, sequences) -> bool:
        cell = self.cell
        return (
            self.fused
            and fused_lstm_available()
            and not _in_xla_context()
            and cell.activation in (keras.activations.tanh, tf.tanh)
            and cell.recurrent_activation in (keras.activations.sigmoid, tf.sigmoid)
            and cell.use_bias
            and not self.unroll
            and not cell.dropout
            and not cell.recurrent_dropout
            and sequences.dtype == tf.float32
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        if not self._fused_eligible(sequences):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        if isinstance(mask, list | tuple):
            mask = mask[0]
        if mask is None:
            lengths = tf.fill([tf.shape(sequences)[0]], tf.shape(sequences)[1])
            checks = []
        else:
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
            checks = [
                tf.debugging.assert_equal(
                    tf.sequence_mask(lengths, tf.shape(mask)[1]),
                    tf.cast(mask, tf.bool),
                    message="FusedLSTM needs a right-padded mask (the first `length` steps valid)",
                )
            ]
        with tf.control_dependencies(checks):
            x = sequences
            if self.go_backwards:
                x = tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)
            h, last_h, last_c = block_lstm_sequence(
                x,
                lengths,
                initial_state[0],
                initial_state[1],
                self.cell.kernel.value,
                self.cell.recurrent_kernel.value,
                self.cell.bias.value,
            )
        if self.go_backwards:
            # Keras' go_backwards order: output t is the step at T-1-t; the padding comes first, and
            # there Keras outputs zeros either way.
            h = tf.reverse(tf.reverse_sequence(h, lengths, seq_axis=1, batch_axis=0), axis=[1])
        elif not self.zero_output_for_mask:
            # Keras repeats the last valid output over the padding unless told to zero it.
            valid = tf.sequence_mask(lengths, tf.shape(h)[1], dtype=h.dtype)[:, :, None]
            h += (1.0 - valid) * last_h[:, None, :]
        if not self.return_sequences:
            h = last_h[:, None, :]
        return last_h, h, [last_h, last_c]
