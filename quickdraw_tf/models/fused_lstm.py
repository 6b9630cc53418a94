"""Keras' LSTM with the CPU kernel chosen by measurement (models/lstm_kernels.py) when no GPU is present.

On CPU Keras 3 runs an LSTM as a tf.while_loop of small ops per time step: an input matmul, a recurrent
matmul, the gates and the mask's selects forward, and their gradients (two weight-gradient matmuls per
step among them) backward. `FusedLSTM` keeps Keras' weights, names and checkpoints and swaps only that
inner loop for one of the kernels in `KERNELS`:

- "projected" (what "auto" runs on CPU): the input projection of all steps as one matmul and a loop over
  the recurrent part only, with a hand-written gradient. The fastest for training at batch 8, level with
  Keras' loop at 64 where the matmuls' arithmetic bounds both (docs/models.md; measured by
  `python -m benchmarks.train_vs_peers --kernels=keras,block`); plain TensorFlow ops, so exported graphs
  and XLA take it too.
- "block": TensorFlow's fused op BlockLSTMV2, kept for comparison (slower than Keras' own loop for
  training at batch 8 and 64); it has no XLA kernel, so inside jit_compile it takes Keras' loop.
- "keras": Keras' own loop.

Either kernel of ours runs only where it is eligible: TensorFlow backend, no GPU visible (with a GPU,
Keras' own path is left untouched and picks cuDNN), the configuration cuDNN also needs (tanh / sigmoid,
bias, no unroll) plus no dropout / recurrent dropout inside the layer, and float32; otherwise the layer
is plain `keras.layers.LSTM`. Like the cuDNN path, our kernels need a right-padded mask (the first
`length` steps valid), which is asserted at run time.

Masked steps give what Keras gives: zeros (inside Bidirectional, `zero_output_for_mask`) or the last
valid output, and the state after the last valid step; `go_backwards` reverses each sequence within
its own length (as Keras' cuDNN path does) and returns the outputs in Keras' reversed order.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from tensorflow.python.framework import ops as tf_ops
from tensorflow.python.ops import control_flow_util

from quickdraw_tf.models.lstm_kernels import block_lstm_sequence, projected_lstm_sequence

KERNELS = ("auto", "projected", "block", "keras")
_SEQUENCE_KERNELS = {"projected": projected_lstm_sequence, "block": block_lstm_sequence}


def fused_lstm_available() -> bool:
    """True where our CPU kernels can replace Keras' loop: TensorFlow backend and no GPU."""
    return keras.backend.backend() == "tensorflow" and not tf.config.list_logical_devices("GPU")


def _in_xla_context() -> bool:
    """True while tracing inside tf.function(jit_compile=True), where BlockLSTMV2 cannot compile."""
    return control_flow_util.GraphOrParentsInXlaContext(tf_ops.get_default_graph())


def check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"unknown LSTM kernel {kernel!r}; known: {', '.join(KERNELS)}")


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class FusedLSTM(keras.layers.LSTM):
    """keras.layers.LSTM whose inner loop is the kernel `kernel` names where eligible (see module doc).

    kernel: "auto" (our choice: "projected" on CPU, Keras' own path on GPU), "projected", "block" or
    "keras". The weights are the same whichever runs.
    """

    def __init__(self, units: int, kernel: str = "auto", **kwargs):
        check_kernel(kernel)
        super().__init__(units, **kwargs)
        self.lstm_kernel = kernel

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"kernel": self.lstm_kernel})
        return config

    @classmethod
    def from_config(cls, config: dict) -> FusedLSTM:
        config = dict(config)
        if "fused" in config:  # saved when the layer took `fused` (True: our CPU kernel, False: Keras')
            config.setdefault("kernel", "auto" if config.pop("fused") else "keras")
        return super().from_config(config)

    def kernel_for(self, sequences: tf.Tensor) -> str:
        """The kernel a call on `sequences` runs: "projected", "block" or "keras"."""
        kernel = "projected" if self.lstm_kernel == "auto" else self.lstm_kernel
        if kernel == "keras" or not self._eligible(sequences):
            return "keras"
        if kernel == "block" and _in_xla_context():
            return "keras"
        return kernel

    def _eligible(self, sequences) -> bool:
        cell = self.cell
        return (
            fused_lstm_available()
            and cell.activation in (keras.activations.tanh, tf.tanh)
            and cell.recurrent_activation in (keras.activations.sigmoid, tf.sigmoid)
            and cell.use_bias
            and not self.unroll
            and not cell.dropout
            and not cell.recurrent_dropout
            and sequences.dtype == tf.float32
        )

    def inner_loop(self, sequences, initial_state, mask, training=False):
        kernel = self.kernel_for(sequences)
        if kernel == "keras":
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
            h, last_h, last_c = _SEQUENCE_KERNELS[kernel](
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
