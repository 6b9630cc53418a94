"""An LSTM cell with layer normalization and recurrent dropout, as sketch-rnn's LayerNormLSTMCell.

Keras' LSTMCell has neither option in this form: its recurrent_dropout drops the hidden state, while
sketch-rnn (after Semeniuta et al. 2016) drops the cell's candidate update g, which never erases memory.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class LayerNormLSTMCell(keras.layers.Layer):
    """LSTM cell: gates from [x, h] @ W, each gate layer-normalized (optional), dropout on g (optional).

    Used as keras.layers.RNN(LayerNormLSTMCell(...)); states are [h, c] like Keras' LSTMCell.
    """

    def __init__(
        self,
        units: int,
        layer_norm: bool = True,
        recurrent_dropout: float = 0.0,
        forget_bias: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.layer_norm = layer_norm
        self.recurrent_dropout = recurrent_dropout
        self.forget_bias = forget_bias
        self.state_size = [units, units]
        self.output_size = units
        self.seed_generator = keras.random.SeedGenerator()

    def build(self, input_shape):
        width = input_shape[-1] + self.units
        self.kernel = self.add_weight(
            shape=(width, 4 * self.units), initializer="glorot_uniform", name="kernel"
        )
        # Without layer norm the gates need a bias; with it, each gate's norm has its own beta.
        self.bias = None if self.layer_norm else self.add_weight(shape=(4 * self.units,), initializer="zeros")
        if self.layer_norm:
            self.gate_norms = [keras.layers.LayerNormalization(name=f"gate_norm_{i}") for i in range(4)]
            self.cell_norm = keras.layers.LayerNormalization(name="cell_norm")
            for norm in self.gate_norms + [self.cell_norm]:
                norm.build((None, self.units))

    def call(self, inputs, states, training=False):
        h, c = states
        gates = ops.matmul(ops.concatenate([inputs, h], axis=-1), self.kernel)
        if self.bias is not None:
            gates = gates + self.bias
        i, g, f, o = ops.split(gates, 4, axis=-1)
        if self.layer_norm:
            i, g, f, o = (norm(gate) for norm, gate in zip(self.gate_norms, (i, g, f, o), strict=True))
        g = ops.tanh(g)
        if training and self.recurrent_dropout > 0:
            g = keras.random.dropout(g, self.recurrent_dropout, seed=self.seed_generator)
        c = c * ops.sigmoid(f + self.forget_bias) + ops.sigmoid(i) * g
        h = ops.tanh(self.cell_norm(c) if self.layer_norm else c) * ops.sigmoid(o)
        return h, [h, c]

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "layer_norm": self.layer_norm,
                "recurrent_dropout": self.recurrent_dropout,
                "forget_bias": self.forget_bias,
            }
        )
        return config
