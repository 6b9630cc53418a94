"""The TF "Recurrent Neural Networks for Drawing Classification" tutorial model, in Keras 3.

Conv1D stack → bidirectional LSTM stack → sum of the LSTM outputs over the valid steps → logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from quickdraw_tf.models import contract
from quickdraw_tf.models.fused_lstm import FusedLSTM, check_kernel
from quickdraw_tf.models.layers import AtLeastOneStep, MaskedSum, SequenceMask, ZeroPadding


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class RnnClassifier(keras.Model):
    """Classifies delta ink: inputs {"ink": float32 [B, T, 3], "length": int32 [B]} → logits [B, C].

    Padding never changes the result: padded steps are zeroed right before every convolution ('same'
    padding then sees zeros beyond the drawing's end, exactly as at the end of an unpadded batch), the
    LSTMs get a right-padded mask (which keeps them eligible for cuDNN on GPU), and the sum skips them.

    Args:
      num_classes: number of output logits.
      num_conv: filters of each Conv1D layer.
      conv_len: kernel width of each Conv1D layer (same length as num_conv).
      num_layers: number of bidirectional LSTM layers.
      num_nodes: units of each LSTM direction.
      batch_norm: batch-normalize (over valid steps only) before each convolution.
      dropout: dropout rate before every convolution but the first, before every LSTM layer and
        before the logits (0 disables it).
      conv_activation: activation of the convolutions; None (linear) as in the tutorial.
      lstm_kernel: how each LSTM runs on CPU (models/fused_lstm.py; same weights, same results within
        float rounding): "auto" (the kernel measured fastest: "projected"), "projected", "block"
        (TensorFlow's fused BlockLSTMV2) or "keras" (Keras' per-step loop). No effect on GPU (cuDNN).
    """

    def __init__(
        self,
        num_classes: int,
        num_conv: Sequence[int] = (48, 64, 96),
        conv_len: Sequence[int] = (5, 5, 3),
        num_layers: int = 3,
        num_nodes: int = 128,
        batch_norm: bool = False,
        dropout: float = 0.3,
        conv_activation: str | None = None,
        lstm_kernel: str = "auto",
        **kwargs,
    ):
        num_conv, conv_len = tuple(num_conv), tuple(conv_len)
        if len(num_conv) != len(conv_len):
            raise ValueError(f"num_conv {num_conv} and conv_len {conv_len} must have the same length")
        check_kernel(lstm_kernel)
        ink = keras.Input(shape=(None, 3), dtype="float32", name="ink")
        length = keras.Input(shape=(), dtype="int32", name="length")
        x = AtLeastOneStep(name="at_least_one_step")(ink)
        mask = SequenceMask(name="mask")([x, length])
        for i, (filters, width) in enumerate(zip(num_conv, conv_len, strict=True)):
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"batch_norm_{i}")(x, mask=mask)
            if i > 0 and dropout:
                x = keras.layers.Dropout(dropout, name=f"conv_dropout_{i}")(x)
            # Last before the convolution: batch norm's shift would otherwise un-zero the padding.
            x = ZeroPadding(name=f"zero_padding_{i}")(x, mask)
            x = keras.layers.Conv1D(
                filters, width, padding="same", activation=conv_activation, name=f"conv_{i}"
            )(x)
        for i in range(num_layers):
            if dropout:
                x = keras.layers.Dropout(dropout, name=f"lstm_dropout_{i}")(x)
            # Keras' LSTM, with our kernel on CPU (cuDNN on GPU as before).
            lstm = FusedLSTM(num_nodes, kernel=lstm_kernel, return_sequences=True, name=f"lstm_{i}")
            x = keras.layers.Bidirectional(lstm, name=f"bilstm_{i}")(x, mask=mask)
        x = MaskedSum(name="sum_over_time")(x, mask)
        if dropout:
            x = keras.layers.Dropout(dropout, name="logits_dropout")(x)
        # float32 logits under mixed precision: softmax and the loss need the range.
        logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
        super().__init__(inputs={"ink": ink, "length": length}, outputs=logits, **kwargs)
        self.num_classes = num_classes
        self.hparams = dict(
            num_conv=num_conv,
            conv_len=conv_len,
            num_layers=num_layers,
            num_nodes=num_nodes,
            batch_norm=batch_norm,
            dropout=dropout,
            conv_activation=conv_activation,
            lstm_kernel=lstm_kernel,
        )

    def get_config(self) -> dict:
        return contract.config_with_hparams(self, super().get_config())

    @classmethod
    def from_config(cls, config: dict, custom_objects=None) -> RnnClassifier:
        config = dict(config)
        if "fused_lstm" in config:  # saved when the choice was fused_lstm (True: our CPU kernel)
            config.setdefault("lstm_kernel", "auto" if config.pop("fused_lstm") else "keras")
        return super().from_config(config, custom_objects)


def with_lstm_kernel(model: RnnClassifier, kernel: str) -> RnnClassifier:
    """A copy of `model` (same weights) whose LSTMs run `kernel`: e.g. "keras" for the graph of Keras' own
    LSTM layer, which a graph converter may know better than our kernels."""
    twin = RnnClassifier.from_config({**model.get_config(), "lstm_kernel": kernel})
    twin.set_weights(model.get_weights())
    return twin
