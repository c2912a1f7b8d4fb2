"""Building blocks shared by the U-Net family: input, conv blocks, up-sampling and the mask head."""

from __future__ import annotations

import keras
from keras import layers


def image_input(channels: int, input_size: int | None) -> keras.KerasTensor:
    """The model input named "image": square `input_size` or dynamic H/W when None."""
    size = input_size if input_size else None
    return keras.Input((size, size, channels), name="image")


def conv_block(
    x: keras.KerasTensor, filters: int, *, batch_norm: bool, name: str
) -> keras.KerasTensor:
    """Two 3x3 convolutions, each followed by ReLU (conv, BN, ReLU when `batch_norm`)."""
    for i in (1, 2):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv{i}"
        )(x)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def up_conv(x: keras.KerasTensor, filters: int, *, name: str) -> keras.KerasTensor:
    """2x2 transposed convolution with stride 2 (doubles H and W)."""
    return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=name)(x)


def sigmoid_head(x: keras.KerasTensor, *, name: str, out_channels: int = 1) -> keras.KerasTensor:
    """1x1 convolution to `out_channels` + sigmoid, in float32 (safe under mixed precision)."""
    return layers.Conv2D(out_channels, 1, activation="sigmoid", dtype="float32", name=name)(x)


def mask_head(x: keras.KerasTensor, out_channels: int = 1) -> keras.KerasTensor:
    """The main prediction: a `sigmoid_head` named "mask" (`out_channels` target channels)."""
    return sigmoid_head(x, name="mask", out_channels=out_channels)


def encoder(
    inputs: keras.KerasTensor, base_filters: int, depth: int, batch_norm: bool, dropout: float = 0.0
) -> tuple[keras.KerasTensor, list[keras.KerasTensor]]:
    """U-Net contracting path: conv blocks + max-pooling, then the bottleneck block.

    Returns (bottleneck features, skip tensors from the finest level to the coarsest).
    """
    x, skips = inputs, []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level, batch_norm=batch_norm, name=f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = conv_block(x, base_filters * 2**depth, batch_norm=batch_norm, name="bottleneck")
    if dropout:
        x = layers.Dropout(dropout, name="bottleneck_dropout")(x)
    return x, skips
