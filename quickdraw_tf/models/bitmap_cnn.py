"""The small CNN of the seed pictionary app, on Quick, Draw!'s 28x28 numpy bitmaps.

{"image": uint8 [B, 28, 28]} → [0, 1] → (3x3 conv, batch norm, ReLU, 2x2 max pool) per entry of
`filters` → dense → logits. The bitmaps are already rasterized (numpy_bitmap files), so this model
takes images, not strokes; its export serves images.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from quickdraw_tf.data.features import BITMAP_SIZE
from quickdraw_tf.models import contract


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class BitmapCNN(keras.Model):
    """Classifies 28x28 bitmaps {"image": uint8 [B, 28, 28]} → logits [B, C].

    Args:
      num_classes: number of output logits.
      filters: channels of each conv block (each halves the resolution).
      dense_units: width of the hidden dense layer.
      batch_norm: batch-normalize each convolution.
      dropout: before the hidden dense layer and before the logits (0 disables it).
    """

    def __init__(
        self,
        num_classes: int,
        filters: Sequence[int] = (32, 64, 128),
        dense_units: int = 128,
        batch_norm: bool = True,
        dropout: float = 0.3,
        **kwargs,
    ):
        filters = tuple(filters)
        image = keras.Input(shape=(BITMAP_SIZE, BITMAP_SIZE), dtype="uint8", name="image")
        x = keras.layers.Reshape((BITMAP_SIZE, BITMAP_SIZE, 1), name="add_channel")(image)
        x = keras.layers.Rescaling(1 / 255, name="rescale")(x)
        for i, count in enumerate(filters):
            x = keras.layers.Conv2D(count, 3, padding="same", use_bias=not batch_norm, name=f"conv_{i}")(x)
            if batch_norm:
                x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
            x = keras.layers.ReLU(name=f"relu_{i}")(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
        x = keras.layers.Flatten(name="flatten")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="dense_dropout")(x)
        x = keras.layers.Dense(dense_units, activation="relu", name="dense")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="logits_dropout")(x)
        # float32 logits under mixed precision: softmax and the loss need the range.
        logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
        super().__init__(inputs={"image": image}, outputs=logits, **kwargs)
        self.num_classes = num_classes
        self.hparams = dict(filters=filters, dense_units=dense_units, batch_norm=batch_norm, dropout=dropout)

    def get_config(self) -> dict:
        return contract.config_with_hparams(self, super().get_config())
