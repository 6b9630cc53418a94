"""The 8th-place Kaggle "Quick, Draw!" design: learned per-point features scattered into an image.

Per-point inputs (absolute position, deltas, pen state, stroke and time fractions) → dilated Conv1D
stack → `point_features` channels per point → scatter-mean into a grid_size x grid_size image at each
point's absolute position (quickdraw_tf.models.raster.scatter) → (SE-)ResNeXt whose stem takes those
channels → logits. The sequence module learns what to draw; the CNN sees where it is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import tensorflow as tf

from quickdraw_tf.models import contract, raster, resnext
from quickdraw_tf.models.augment import RandomInkAffine
from quickdraw_tf.models.layers import AtLeastOneStep, SequenceMask, ZeroPadding

NUM_POINT_INPUTS = 7


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class PointInputs(keras.layers.Layer):
    """[ink [B, T, 3], length [B]] → (per-point inputs float32 [B, T, 7], grid cells int32 [B, T, 2]).

    Row k describes the point the k-th move reaches: x, y in [-1, 1] (the drawing fitted into the
    unit box, aspect kept), dx, dy on the same scale, end of stroke, the stroke's index and the
    point's index as fractions of the drawing's strokes and points. Padded rows are zero. Always
    float32: cumulative sums of deltas lose the drawing under float16.
    """

    def __init__(self, grid_size: int, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.grid_size = grid_size

    def call(self, ink, length):
        geometry = raster.ink_geometry(ink, length)
        positions = geometry["positions"]
        valid = tf.cast(geometry["valid"][:, 1:], tf.float32)
        steps = tf.shape(ink)[1]
        stroke = tf.cast(geometry["stroke"][:, 1:], tf.float32)
        last_stroke = tf.cast(tf.maximum(geometry["num_strokes"] - 1, 1), tf.float32)[:, None]
        last_step = tf.cast(tf.maximum(length - 1, 1), tf.float32)[:, None]
        inputs = tf.concat(
            [
                positions[:, 1:] * 2.0 - 1.0,
                positions[:, 1:] - positions[:, :-1],
                geometry["end_of_stroke"][:, 1:, None],
                (stroke / last_stroke)[..., None],
                (tf.range(steps, dtype=tf.float32)[None, :] / last_step)[..., None],
            ],
            axis=-1,
        )
        cells = tf.cast(tf.floor(positions[:, 1:] * self.grid_size), tf.int32)
        return inputs * valid[..., None], tf.minimum(cells, self.grid_size - 1)

    def compute_output_shape(self, ink_shape, length_shape=None):
        return (*ink_shape[:2], NUM_POINT_INPUTS), (*ink_shape[:2], 2)

    def get_config(self):
        config = super().get_config()
        config.pop("dtype", None)  # always float32 (see __init__)
        config.update({"grid_size": self.grid_size})
        return config


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class ScatterMean(keras.layers.Layer):
    """[features [B, T, C], cells [B, T, 2], mask [B, T]] → the mean feature per cell [B, H, W, C]."""

    def __init__(self, grid_size: int, **kwargs):
        super().__init__(**kwargs)
        self.grid_size = grid_size
        # Takes the points' mask explicitly and consumes the implicit one: the image has no time axis.
        self.supports_masking = True

    def compute_mask(self, *args, **kwargs):
        return None

    def call(self, features, cells, mask):
        return raster.scatter(features, cells, (self.grid_size, self.grid_size), mask=mask)

    def compute_output_shape(self, features_shape, cells_shape=None, mask_shape=None):
        return (features_shape[0], self.grid_size, self.grid_size, features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"grid_size": self.grid_size})
        return config


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class ScatterRaster(keras.Model):
    """Classifies delta ink {"ink": float32 [B, T, 3], "length": int32 [B]} → logits [B, C].

    Train on batches of mixed lengths (--bucket_boundaries= empty, or one bucket with static
    shapes): the scattered image's statistics follow the drawing's length, and batch norm trained
    on length buckets normalizes differently from its moving averages (measured 500 steps into a
    bucketed run: eval top-1 0.44 with the moving averages, 0.63 with batch statistics).

    Args:
      num_classes: number of output logits.
      grid_size: side of the scattered image.
      conv_filters: channels of each dilated Conv1D (kernel 3, batch norm over valid points, ReLU).
      dilations: dilation of each Conv1D (same length as conv_filters).
      point_features: channels per point after a final 1x1 Conv1D: the image's channels.
      blocks, widths, strides: the CNN's stages (blocks per stage, output width, first stride).
      stem_width, cardinality, bottleneck_ratio, se_ratio: see models/resnext.py.
      dropout: before the logits (0 disables it).
      augment_rotation, augment_shear: training only, each drawing is rotated by up to this many
        degrees and sheared by up to this factor (models/augment.py); 0 disables it.
    """

    def __init__(
        self,
        num_classes: int,
        grid_size: int = 32,
        conv_filters: Sequence[int] = (32, 32, 32, 32),
        dilations: Sequence[int] = (1, 2, 4, 8),
        point_features: int = 64,
        blocks: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (256, 512, 1024, 2048),
        strides: Sequence[int] = (1, 2, 2, 2),
        stem_width: int = 64,
        cardinality: int = 32,
        bottleneck_ratio: float = 0.5,
        se_ratio: float = 0.0625,
        dropout: float = 0.2,
        augment_rotation: float = 0.0,
        augment_shear: float = 0.0,
        **kwargs,
    ):
        conv_filters, dilations = tuple(conv_filters), tuple(dilations)
        blocks, widths, strides = tuple(blocks), tuple(widths), tuple(strides)
        if len(conv_filters) != len(dilations):
            raise ValueError(f"conv_filters {conv_filters} and dilations {dilations} differ in length")
        ink = keras.Input(shape=(None, 3), dtype="float32", name="ink")
        length = keras.Input(shape=(), dtype="int32", name="length")
        padded = AtLeastOneStep(name="at_least_one_step")(ink)
        augmented = RandomInkAffine(augment_rotation, augment_shear, name="augment")(padded)
        mask = SequenceMask(name="mask")([padded, length])
        x, cells = PointInputs(grid_size, name="point_inputs")(augmented, length)
        layers = [(f, 3, d) for f, d in zip(conv_filters, dilations, strict=True)] + [(point_features, 1, 1)]
        for i, (filters, width, dilation) in enumerate(layers):
            # Zero the padding first: 'same' convolutions then see zeros past the drawing's end.
            x = ZeroPadding(name=f"zero_padding_{i}")(x, mask)
            x = keras.layers.Conv1D(
                filters, width, padding="same", dilation_rate=dilation, use_bias=False, name=f"point_conv_{i}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"point_bn_{i}")(x, mask=mask)
            x = keras.layers.ReLU(name=f"point_relu_{i}")(x)
        x = ScatterMean(grid_size, name="scatter")(x, cells, mask)
        x = resnext.resnext(
            x, blocks, widths, strides, stem_width, cardinality, bottleneck_ratio, se_ratio, name="cnn"
        )
        if dropout:
            x = keras.layers.Dropout(dropout, name="logits_dropout")(x)
        # float32 logits under mixed precision: softmax and the loss need the range.
        logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
        super().__init__(inputs={"ink": ink, "length": length}, outputs=logits, **kwargs)
        self.num_classes = num_classes
        self.hparams = dict(
            grid_size=grid_size,
            conv_filters=conv_filters,
            dilations=dilations,
            point_features=point_features,
            blocks=blocks,
            widths=widths,
            strides=strides,
            stem_width=stem_width,
            cardinality=cardinality,
            bottleneck_ratio=bottleneck_ratio,
            se_ratio=se_ratio,
            dropout=dropout,
            augment_rotation=augment_rotation,
            augment_shear=augment_shear,
        )

    def get_config(self) -> dict:
        return contract.config_with_hparams(self, super().get_config())
