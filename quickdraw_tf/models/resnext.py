"""A (SE-)ResNeXt image backbone of configurable depth and width, applied to a Keras tensor.

ResNet's bottleneck block with grouped 3x3 convolutions (ResNeXt, Xie et al. 2017) and optional
squeeze-and-excitation (Hu et al. 2018). cardinality=1 and se_ratio=0 give a plain ResNet bottleneck;
cardinality=32, bottleneck_ratio=0.5, se_ratio=1/16, blocks (3, 4, 6, 3) and widths (256, 512, 1024,
2048) give SE-ResNeXt-50 (32x4d). No pretrained weights: the stem takes any number of channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras


def _conv_bn(x, filters: int, kernel: int, name: str, strides: int = 1, groups: int = 1, relu: bool = True):
    x = keras.layers.Conv2D(
        filters, kernel, strides=strides, padding="same", groups=groups, use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _squeeze_excite(x, ratio: float, name: str):
    """Channel gates from the global average: 2 dense layers, the second a sigmoid."""
    channels = x.shape[-1]
    gate = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    reduced = max(1, int(channels * ratio))
    gate = keras.layers.Conv2D(reduced, 1, activation="relu", name=f"{name}_reduce")(gate)
    gate = keras.layers.Conv2D(channels, 1, activation="sigmoid", name=f"{name}_expand")(gate)
    return keras.layers.Multiply(name=f"{name}_scale")([x, gate])


def _block(x, width: int, strides: int, cardinality: int, bottleneck_ratio: float, se_ratio: float, name):
    # The inner width must split into `cardinality` equal groups.
    inner = max(cardinality, int(width * bottleneck_ratio) // cardinality * cardinality)
    shortcut = x
    if strides != 1 or x.shape[-1] != width:
        shortcut = _conv_bn(x, width, 1, f"{name}_shortcut", strides=strides, relu=False)
    x = _conv_bn(x, inner, 1, f"{name}_1")
    x = _conv_bn(x, inner, 3, f"{name}_2", strides=strides, groups=cardinality)
    x = _conv_bn(x, width, 1, f"{name}_3", relu=False)
    if se_ratio:
        x = _squeeze_excite(x, se_ratio, f"{name}_se")
    x = keras.layers.Add(name=f"{name}_add")([shortcut, x])
    return keras.layers.ReLU(name=f"{name}_out")(x)


def resnext(
    x,
    blocks: Sequence[int],
    widths: Sequence[int],
    strides: Sequence[int],
    stem_width: int = 64,
    cardinality: int = 32,
    bottleneck_ratio: float = 0.5,
    se_ratio: float = 1 / 16,
    name: str = "resnext",
):
    """Stem (3x3 conv, stride 1: small inputs keep their resolution) → stages → [B, widths[-1]]."""
    if not len(blocks) == len(widths) == len(strides):
        raise ValueError(f"blocks {blocks}, widths {widths} and strides {strides} must have the same length")
    x = _conv_bn(x, stem_width, 3, f"{name}_stem")
    for stage, (count, width, stride) in enumerate(zip(blocks, widths, strides, strict=True)):
        for i in range(count):
            x = _block(
                x, width, stride if i == 0 else 1, cardinality, bottleneck_ratio, se_ratio,
                f"{name}_stage{stage}_block{i}",
            )  # fmt: skip
    return keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
