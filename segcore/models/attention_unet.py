"""Attention U-Net (Oktay et al. 2018): U-Net whose skips pass through additive attention gates."""

from __future__ import annotations

import keras
from keras import layers

from segcore.models.blocks import conv_block, encoder, image_input, mask_head, up_conv


def attention_gate(
    x: keras.KerasTensor, g: keras.KerasTensor, inter_filters: int, name: str
) -> keras.KerasTensor:
    """Scale skip `x` by attention coefficients computed from it and the coarser gating `g`.

    theta(x) is a 1x1 conv with stride 2 (to g's resolution), phi(g) a 1x1 conv; their sum goes
    through ReLU, a 1x1 conv to one channel and a sigmoid, is upsampled back to x's resolution
    (nearest: Keras' bilinear UpSampling2D does not export with dynamic H/W) and multiplies x
    channel-wise.
    """
    theta = layers.Conv2D(inter_filters, 1, strides=2, use_bias=False, name=f"{name}_theta_x")(x)
    phi = layers.Conv2D(inter_filters, 1, name=f"{name}_phi_g")(g)
    f = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    alpha = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(f)
    alpha = layers.UpSampling2D(2, name=f"{name}_upsample")(alpha)
    return layers.Multiply(name=f"{name}_multiply")([x, alpha])


def build_attention_unet(
    *,
    channels: int = 3,
    base_filters: int = 32,
    depth: int = 4,
    dropout: float = 0.0,
    input_size: int | None = None,
    out_channels: int = 1,
) -> keras.Model:
    """Attention U-Net with conv+BN+ReLU blocks, filters base*2**level, bottleneck dropout."""
    inputs = image_input(channels, input_size)
    x, skips = encoder(inputs, base_filters, depth, batch_norm=True, dropout=dropout)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        gated = attention_gate(skips[level], x, max(filters // 2, 1), name=f"dec{level}_gate")
        x = up_conv(x, filters, name=f"dec{level}_up")
        x = layers.Concatenate(name=f"dec{level}_concat")([gated, x])
        x = conv_block(x, filters, batch_norm=True, name=f"dec{level}")
    return keras.Model(inputs, mask_head(x, out_channels), name="attention_unet")
