"""UNet++ (Zhou et al. 2018): nested dense skip pathways with optional deep supervision.

Node X^{i,j} (level i, column j) is a conv+BN+ReLU block over the concatenation of
X^{i,0..j-1} and the upsampled X^{i+1,j-1}. With deep supervision the model outputs one sigmoid
channel per top node X^{0,1..depth}: the side outputs first (coarse to fine) and the main
`mask` (from X^{0,depth}) last, concatenated in a layer named "deep_supervision".
"""

from __future__ import annotations

import keras
from keras import layers

from segcore.models.blocks import conv_block, image_input, mask_head, sigmoid_head, up_conv


def build_unetpp(
    *,
    channels: int = 3,
    base_filters: int = 32,
    depth: int = 4,
    dropout: float = 0.0,
    deep_supervision: bool = True,
    input_size: int | None = None,
    out_channels: int = 1,
) -> keras.Model:
    """UNet++ with `depth` down-steps, filters base*2**level, dropout on the deepest node."""
    inputs = image_input(channels, input_size)
    nodes: dict[tuple[int, int], keras.KerasTensor] = {}
    x = inputs
    for i in range(depth + 1):
        if i > 0:
            x = layers.MaxPooling2D(2, name=f"x{i - 1}0_pool")(nodes[i - 1, 0])
        x = conv_block(x, base_filters * 2**i, batch_norm=True, name=f"x{i}0")
        if i == depth and dropout:
            x = layers.Dropout(dropout, name=f"x{i}0_dropout")(x)
        nodes[i, 0] = x

    for j in range(1, depth + 1):
        for i in range(depth + 1 - j):
            filters = base_filters * 2**i
            up = up_conv(nodes[i + 1, j - 1], filters, name=f"x{i}{j}_up")
            x = layers.Concatenate(name=f"x{i}{j}_concat")([*(nodes[i, k] for k in range(j)), up])
            nodes[i, j] = conv_block(x, filters, batch_norm=True, name=f"x{i}{j}")

    mask = mask_head(nodes[0, depth], out_channels)
    if not deep_supervision:
        return keras.Model(inputs, mask, name="unetpp")
    sides = [
        sigmoid_head(nodes[0, j], name=f"side_{j}", out_channels=out_channels)
        for j in range(1, depth)
    ]
    output = layers.Concatenate(dtype="float32", name="deep_supervision")([*sides, mask])
    return keras.Model(inputs, output, name="unetpp")
