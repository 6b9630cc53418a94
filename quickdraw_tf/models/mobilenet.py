"""MobileNet on drawings rendered inside the model, as the Kaggle "Greyscale MobileNet" kernel.

{"ink", "length"} → RenderInk (quickdraw_tf.models.raster.render: image_size x image_size, time colouring by
stroke order by default) → keras.applications MobileNetV2 / V3 (weights=None: any size and channel
count) → logits. Rendering in the graph means the exported model serves strokes, like the RNN.
"""

from __future__ import annotations

import keras

from quickdraw_tf.models import contract
from quickdraw_tf.models.augment import RandomInkAffine
from quickdraw_tf.models.layers import AtLeastOneStep
from quickdraw_tf.models.raster import RenderInk

VERSIONS = ("v2", "v3_small", "v3_large")


def _backbone(version: str, input_shape, alpha: float, minimalistic: bool, momentum: float) -> keras.Model:
    common = dict(input_shape=input_shape, alpha=alpha, include_top=False, weights=None, pooling="avg")
    if version == "v2":
        backbone = keras.applications.MobileNetV2(**common)
    else:
        # V3's own preprocessing layer would rescale [0, 255]; the images arrive in [-1, 1] already.
        small = version == "v3_small"
        v3 = keras.applications.MobileNetV3Small if small else keras.applications.MobileNetV3Large
        backbone = v3(**common, minimalistic=minimalistic, include_preprocessing=False)
    # keras.applications' 0.999 suits fine-tuning; from scratch, the moving averages would still hold
    # mostly their initial values after a few thousand steps (measured: eval predicted one class).
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
    return backbone


@keras.saving.register_keras_serializable(package="quickdraw_tf")
class InkMobileNet(keras.Model):
    """Classifies delta ink {"ink": float32 [B, T, 3], "length": int32 [B]} → logits [B, C].

    Args:
      num_classes: number of output logits.
      version: "v2", "v3_small" or "v3_large".
      image_size: side of the rendered image (the kernel: 64).
      colour: "stroke_order" (the kernel's time colouring), "binary" or "stroke_palette".
      channels: image channels (1 greyscale; 3 repeats it, or is required by stroke_palette).
      line_width: in pixels of the rendered image (the kernel: 6 at 256, resized to 64: 1.5).
      antialias: anti-aliased lines.
      alpha: MobileNet width multiplier.
      minimalistic: MobileNetV3's minimalistic variant (no SE, hard-swish or 5x5 convolutions).
      dropout: before the logits (0 disables it).
      batch_norm_momentum: of the backbone's batch norm moving averages.
      augment_rotation, augment_shear: training only, each drawing is rotated by up to this many
        degrees and sheared by up to this factor (models/augment.py); 0 disables it.
    """

    def __init__(
        self,
        num_classes: int,
        version: str = "v2",
        image_size: int = 64,
        colour: str = "stroke_order",
        channels: int = 1,
        line_width: float = 1.5,
        antialias: bool = True,
        alpha: float = 1.0,
        minimalistic: bool = False,
        dropout: float = 0.2,
        batch_norm_momentum: float = 0.99,
        augment_rotation: float = 0.0,
        augment_shear: float = 0.0,
        **kwargs,
    ):
        if version not in VERSIONS:
            raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
        ink = keras.Input(shape=(None, 3), dtype="float32", name="ink")
        length = keras.Input(shape=(), dtype="int32", name="length")
        padded = AtLeastOneStep(name="at_least_one_step")(ink)
        augmented = RandomInkAffine(augment_rotation, augment_shear, name="augment")(padded)
        render = RenderInk(
            size=image_size, line_width=line_width, antialias=antialias, colour=colour, channels=channels,
            name="render",
        )  # fmt: skip
        images = render(augmented, length)
        # [0, 1] → [-1, 1], the range MobileNet's preprocess_input gives.
        x = keras.layers.Rescaling(2.0, offset=-1.0, name="rescale")(images)
        shape = (image_size, image_size, channels)
        x = _backbone(version, shape, alpha, minimalistic, batch_norm_momentum)(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name="logits_dropout")(x)
        # float32 logits under mixed precision: softmax and the loss need the range.
        logits = keras.layers.Dense(num_classes, dtype="float32", name="logits")(x)
        super().__init__(inputs={"ink": ink, "length": length}, outputs=logits, **kwargs)
        self.num_classes = num_classes
        self.hparams = dict(
            version=version,
            image_size=image_size,
            colour=colour,
            channels=channels,
            line_width=line_width,
            antialias=antialias,
            alpha=alpha,
            minimalistic=minimalistic,
            dropout=dropout,
            batch_norm_momentum=batch_norm_momentum,
            augment_rotation=augment_rotation,
            augment_shear=augment_shear,
        )

    def get_config(self) -> dict:
        return contract.config_with_hparams(self, super().get_config())
