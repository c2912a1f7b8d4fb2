"""Improved U-Net (Isensee et al. 2017, BraTS 2017) in 2D, with a sigmoid output.

Encoder: a 3x3 conv per level (stride 2 between levels) plus a pre-activation residual context
module. Decoder: upsampling modules (upsample + 3x3 conv halving features), concatenation with
the skip, localization modules (3x3 conv, 1x1 conv halving). Deep supervision: 1x1 segmentation
layers from the lowest-resolution decoder levels are upsampled and summed into the final one
before the sigmoid, so the model still has a single output.
"""

from __future__ import annotations

import keras
from keras import layers

from segcore.models.blocks import image_input

LEAKY_SLOPE = 0.01
SUPERVISED_LEVELS = 3  # segmentation layers from decoder levels 0, 1 and 2 (as in the paper)


def _norm_act(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """Instance norm (GroupNormalization with one group per channel) then LeakyReLU(0.01)."""
    x = layers.GroupNormalization(groups=-1, name=f"{name}_in")(x)
    return layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu")(x)


def _conv_norm_act(x: keras.KerasTensor, filters: int, kernel: int, name: str) -> keras.KerasTensor:
    """Convolution, instance norm, LeakyReLU."""
    x = layers.Conv2D(filters, kernel, padding="same", name=f"{name}_conv")(x)
    return _norm_act(x, name)


def context_module(
    x: keras.KerasTensor, filters: int, dropout: float, name: str
) -> keras.KerasTensor:
    """Pre-activation residual block: (IN, LeakyReLU, 3x3 conv) x2 with dropout between, + x."""
    y = _norm_act(x, f"{name}_a")
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_a_conv")(y)
    if dropout:
        y = layers.Dropout(dropout, name=f"{name}_dropout")(y)
    y = _norm_act(y, f"{name}_b")
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_b_conv")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def upsampling_module(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Nearest-neighbour 2x upsampling followed by a 3x3 conv to `filters` features."""
    x = layers.UpSampling2D(2, name=f"{name}_upsample")(x)
    return _conv_norm_act(x, filters, 3, name)


def localization_module(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """3x3 conv keeping the concatenated features, then 1x1 conv halving them to `filters`."""
    x = _conv_norm_act(x, 2 * filters, 3, f"{name}_3x3")
    return _conv_norm_act(x, filters, 1, f"{name}_1x1")


def build_improved_unet(
    *,
    channels: int = 3,
    base_filters: int = 16,
    depth: int = 4,
    dropout: float = 0.3,
    input_size: int | None = None,
    out_channels: int = 1,
) -> keras.Model:
    """Improved U-Net with `depth` stride-2 downsamplings (depth + 1 levels, base*2**level)."""
    inputs = image_input(channels, input_size)
    x = inputs
    skips = []
    for level in range(depth + 1):
        filters = base_filters * 2**level
        strides = 1 if level == 0 else 2
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", name=f"enc{level}_conv")(x)
        x = context_module(x, filters, dropout, name=f"enc{level}_context")
        skips.append(x)

    segmentation = None
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = upsampling_module(x, filters, name=f"dec{level}_up")
        x = layers.Concatenate(name=f"dec{level}_concat")([skips[level], x])
        if level == 0:
            x = _conv_norm_act(x, 2 * filters, 3, name="dec0_final")
        else:
            x = localization_module(x, filters, name=f"dec{level}_localization")
        if level < SUPERVISED_LEVELS:
            seg = layers.Conv2D(out_channels, 1, dtype="float32", name=f"dec{level}_segmentation")(
                x
            )
            if segmentation is not None:
                up = layers.UpSampling2D(2, dtype="float32", name=f"dec{level}_seg_upsample")
                seg = layers.Add(dtype="float32", name=f"dec{level}_seg_sum")(
                    [up(segmentation), seg]
                )
            segmentation = seg
    mask = layers.Activation("sigmoid", dtype="float32", name="mask")(segmentation)
    return keras.Model(inputs, mask, name="improved_unet")
