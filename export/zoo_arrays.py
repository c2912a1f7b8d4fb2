"""Pictures and test tensors of a BioImage Model Zoo package, computed from a real sample.

The test input is what another tool feeds the package: a batch of one uint8 image in the model's
axis order (batch, y, x, channel), at the size the engine would run it (the card's input size for
whole-image models, the sample's own size cut to a multiple of the stride for tiled models). The
test output is the model's raw output on that input after the package's pre-processing (x / 255,
or the image's percentiles to 0 and 1, clipped), so the package reproduces it. Light: numpy, Pillow and the onnxruntime engine.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segcore.card import ModelCard
from segcore.inference.engine import Engine
from segcore.inference.instances import decode
from segcore.inference.preprocess import (
    load_image,
    percentile_normalize,
    percentile_range,
    resize_image,
)
from segcore.inference.visualize import instance_overlay, overlay

#: Longest side of a tiled model's test input (keeps the package small and the test fast).
MAX_TEST_SIDE = 512
#: Side of each square half of the cover picture (image | prediction: 2:1, as bioimage.io asks).
COVER_SIDE = 256
#: ITU-R 601 luma weights: how the engine turns RGB into one channel (segcore.inference.preprocess).
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class TestTensors:
    """A package's test input (1, H, W, C uint8), its output (1, H, W, K float32), the RGB view."""

    __test__ = False  # not a pytest class, despite the name

    image: np.ndarray
    output: np.ndarray
    rgb: np.ndarray


def test_view(rgb: np.ndarray, card: ModelCard) -> np.ndarray:
    """The RGB image at the size the engine runs it: resized to the card's input size, or (tiled)
    cropped to a multiple of the stride of at most `MAX_TEST_SIDE` pixels per side."""
    if card.mode != "tiled":
        return resize_image(rgb, (card.input_size, card.input_size))
    step = card.stride
    h, w = (max(step, min(side, MAX_TEST_SIDE) // step * step) for side in rgb.shape[:2])
    return rgb[:h, :w]


def model_channels(rgb: np.ndarray, channels: int) -> np.ndarray:
    """HxWxC uint8 input of a 1- or 3-channel model (one channel: the engine's luma, rounded)."""
    if channels == 3:
        return rgb
    luma = rgb.astype(np.float32) @ LUMA
    return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]


def package_input(image: np.ndarray, card: ModelCard) -> np.ndarray:
    """The model input the package's pre-processing makes of a test input (1xHxWxC): x / 255,
    or for a ``percentile`` card the sample's percentiles over all pixels and channels mapped to
    0 and 1, clipped as the engine clips (`segcore.inference.preprocess.PERCENTILE_CLIP`)."""
    x = image.astype(np.float32)
    if card.normalization == "percentile":
        return percentile_normalize(x, percentile_range(x, card.percentiles))
    return x / np.float32(255.0)


def test_tensors(engine: Engine, sample: Path) -> TestTensors:
    """Test input and output of ``engine``'s model computed from the image file ``sample``."""
    rgb = test_view(load_image(sample), engine.card)
    image = model_channels(rgb, engine.channels)[None]
    output = engine.channel_maps(package_input(image, engine.card))
    return TestTensors(image, np.asarray(output, dtype=np.float32), rgb)


def prediction_picture(rgb: np.ndarray, output: np.ndarray, card: ModelCard) -> np.ndarray:
    """The prediction drawn over the image: coloured nuclei (instance models, decoded with the
    card's settings) or the thresholded mask tinted and outlined."""
    if card.instances is not None:
        return instance_overlay(rgb, decode(output[..., -1], output[..., 0], card.instances))
    return overlay(rgb, output[..., -1] > card.threshold)


def cover_png(tensors: TestTensors, card: ModelCard) -> bytes:
    """PNG bytes of the cover: image | prediction, the centre squares side by side (2:1)."""
    rgb = tensors.rgb
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    panels = [rgb, prediction_picture(rgb, tensors.output[0], card)]
    canvas = Image.new("RGB", (2 * COVER_SIDE, COVER_SIDE))
    for i, panel in enumerate(panels):
        square = Image.fromarray(panel[top : top + side, left : left + side])
        canvas.paste(
            square.resize((COVER_SIDE, COVER_SIDE), Image.Resampling.BILINEAR), (i * COVER_SIDE, 0)
        )
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()
