"""Small sequence layers shared by the stroke models: masks built from the `length` input.

They are registered Keras layers (not Lambda layers) so that model.keras files load in safe mode.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class AtLeastOneStep(keras.layers.Layer):
    """Pads [B, 0, C] to [B, 1, C] with zeros: LSTMs cannot run over zero steps.

    tf.distribute hands a replica that gets no drawing of a final partial batch an empty [0, 0, 3]
    batch; the zero step is then masked like any padding.
    """

    def call(self, x):
        missing = ops.maximum(1 - ops.shape(x)[1], 0)
        return ops.pad(x, [[0, 0], [0, missing], [0, 0]])

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class SequenceMask(keras.layers.Layer):
    """[ink [B, T, C], length [B]] → bool [B, T], True on the first max(length, 1) steps.

    Lengths are clamped to at least 1 so that no all-False row reaches an LSTM (cuDNN rejects
    zero-length sequences); a drawing of length 0 is read as one zero step.
    """

    def call(self, inputs):
        ink, length = inputs
        steps = ops.arange(ops.shape(ink)[1], dtype="int32")
        length = ops.maximum(ops.cast(length, "int32"), 1)
        return ops.less(steps[None, :], length[:, None])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:2])


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class ZeroPadding(keras.layers.Layer):
    """Zeroes the padded steps: x [B, T, C] * mask [B, T]."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Batch norm attaches its mask to its output; the padding is zero from here on and the
        # layers after get the mask explicitly, so it stops here (the convolution would warn).
        self.supports_masking = True

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def call(self, x, mask_values):
        return x * ops.cast(mask_values, x.dtype)[:, :, None]

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class MaskedSum(keras.layers.Layer):
    """Sum over the valid steps: x [B, T, C], mask [B, T] → [B, C]."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # consumes the LSTM's implicit mask: the output has no time axis

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def call(self, x, mask_values):
        return ops.sum(x * ops.cast(mask_values, x.dtype)[:, :, None], axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
