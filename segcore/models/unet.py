"""U-Net (Ronneberger et al. 2015), plain or with BatchNorm after every convolution."""

from __future__ import annotations

import keras
from keras import layers

from segcore.models.blocks import conv_block, encoder, image_input, mask_head, up_conv


def _build(
    *,
    batch_norm: bool,
    channels: int,
    base_filters: int,
    depth: int,
    dropout: float,
    input_size: int | None,
    name: str,
    out_channels: int,
) -> keras.Model:
    """U-Net with `depth` max-pool steps, filters base*2**level, dropout at the bottleneck."""
    inputs = image_input(channels, input_size)
    x, skips = encoder(inputs, base_filters, depth, batch_norm, dropout)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        x = up_conv(x, filters, name=f"dec{level}_up")
        x = layers.Concatenate(name=f"dec{level}_concat")([skips[level], x])
        x = conv_block(x, filters, batch_norm=batch_norm, name=f"dec{level}")
    return keras.Model(inputs, mask_head(x, out_channels), name=name)


def build_unet(
    *,
    channels: int = 3,
    base_filters: int = 64,
    depth: int = 4,
    dropout: float = 0.5,
    input_size: int | None = None,
    out_channels: int = 1,
) -> keras.Model:
    """Classic U-Net: two 3x3 conv+ReLU per level, 2x2 transposed-conv upsampling, no norm."""
    return _build(
        batch_norm=False,
        channels=channels,
        base_filters=base_filters,
        depth=depth,
        dropout=dropout,
        input_size=input_size,
        out_channels=out_channels,
        name="unet",
    )


def build_unet_bn(
    *,
    channels: int = 3,
    base_filters: int = 64,
    depth: int = 4,
    dropout: float = 0.0,
    input_size: int | None = None,
    out_channels: int = 1,
) -> keras.Model:
    """U-Net with BatchNormalization after each convolution (conv, BN, ReLU)."""
    return _build(
        batch_norm=True,
        channels=channels,
        base_filters=base_filters,
        depth=depth,
        dropout=dropout,
        input_size=input_size,
        out_channels=out_channels,
        name="unet_bn",
    )
