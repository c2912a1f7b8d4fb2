"""Pictures of predictions: tinted overlays with contours and image | truth | prediction panels.

Pure numpy + Pillow (no Keras), shared by evaluation, batch prediction and the app.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

TRUTH_COLOR = (0, 200, 90)
PRED_COLOR = (255, 64, 64)
GOLDEN_RATIO_STEP = 0.618034


def contour(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean outline of a binary mask, ``width`` pixels thick."""
    mask = np.asarray(mask, dtype=bool)
    inner = ndimage.binary_erosion(mask, iterations=width, border_value=0)
    return mask & ~inner


def overlay(
    image: np.ndarray, mask: np.ndarray, color=PRED_COLOR, alpha: float = 0.35
) -> np.ndarray:
    """RGB uint8 image with the mask tinted in ``color`` and outlined in full colour."""
    out = image.astype(np.float32).copy()
    m = np.asarray(mask, dtype=bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float32)
    width = max(1, round(min(m.shape) / 256))
    out[contour(m, width)] = color
    return out.clip(0, 255).astype(np.uint8)


def mask_to_rgb(mask: np.ndarray) -> np.ndarray:
    """Binary mask as a white-on-black RGB uint8 image."""
    gray = np.asarray(mask, dtype=np.uint8) * 255
    return np.repeat(gray[..., None], 3, axis=2)


def triptych(
    image: np.ndarray, truth: np.ndarray, pred: np.ndarray, caption: str = "", height: int = 256
) -> Image.Image:
    """One picture: image | truth | prediction (prediction over the image), with a caption."""
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    panels = [image, mask_to_rgb(truth), overlay(image, pred)]
    tiles = [Image.fromarray(p).resize((width, height), Image.BILINEAR) for p in panels]
    band = 18 if caption else 0
    canvas = Image.new("RGB", (3 * width + 4, height + band), (255, 255, 255))
    for i, tile in enumerate(tiles):
        canvas.paste(tile, (i * (width + 2), band))
    if caption:
        ImageDraw.Draw(canvas).text((4, 3), caption, fill=(0, 0, 0))
    return canvas


def label_colors(n: int) -> np.ndarray:
    """(n + 1) x 3 uint8 distinct bright colours for ids 0..n (row 0, background, is black)."""
    hues = (np.arange(n) * GOLDEN_RATIO_STEP + 0.1) % 1.0  # neighbouring ids far apart in hue
    rgb = [colorsys.hsv_to_rgb(h, 0.8, 1.0) for h in hues]
    return (np.array([(0.0, 0.0, 0.0), *rgb]) * 255).round().astype(np.uint8)


def instance_overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """RGB uint8 image with every instance tinted in its own colour and outlined in white."""
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    colors = label_colors(int(labels.max(initial=0))).astype(np.float32)
    out = image.astype(np.float32).copy()
    inside = labels > 0
    out[inside] = (1 - alpha) * out[inside] + alpha * colors[labels[inside]]
    out[find_boundaries(labels, mode="inner")] = (255, 255, 255)
    return out.clip(0, 255).astype(np.uint8)
