"""Pictures of predictions: tinted overlays with contours and image | truth | prediction panels.

Pure numpy + Pillow (no Keras): the one drawing of a prediction, shared by evaluation, batch
prediction and the app.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw

TRUTH_COLOR = (0, 200, 90)
PRED_COLOR = (255, 64, 64)
#: Outline drawn around a prediction: a dark line inside a light one, visible on any stain.
OUTLINE_DARK = (0, 0, 0)
OUTLINE_LIGHT = (255, 255, 255)
GOLDEN_RATIO_STEP = 0.618034


def contour(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean outline of a binary mask, ``width`` pixels thick."""
    from scipy import ndimage  # here, not at the top: importing this module stays instant

    mask = np.asarray(mask, dtype=bool)
    inner = ndimage.binary_erosion(mask, iterations=width, border_value=0)
    return mask & ~inner


def outline_width(shape: tuple[int, ...]) -> int:
    """Outline thickness for a picture of ``shape``: about one pixel per 300."""
    return max(1, round(min(shape[:2]) / 300))


def overlay(
    image: np.ndarray,
    mask: np.ndarray,
    opacity: float = 0.35,
    color: tuple[int, int, int] = PRED_COLOR,
    truth: np.ndarray | None = None,
) -> np.ndarray:
    """The mask tinted over an RGB uint8 image at ``opacity`` (0-1), outlined dark inside light
    so the edge shows on pink and purple stains too; ``truth`` (if given) outlined in green."""
    out = image.astype(np.float32)
    m = np.asarray(mask, bool)
    out[m] = (1 - opacity) * out[m] + opacity * np.asarray(color, np.float32)
    out = out.clip(0, 255).astype(np.uint8)
    width = outline_width(m.shape)
    edge = contour(m, width)
    out[contour(m, 2 * width) & ~edge] = OUTLINE_LIGHT
    out[edge] = OUTLINE_DARK
    if truth is not None:
        out[contour(np.asarray(truth, bool), width)] = TRUTH_COLOR
    return out


def mask_to_rgb(mask: np.ndarray) -> np.ndarray:
    """Binary mask as a white-on-black RGB uint8 image."""
    gray = np.asarray(mask, dtype=np.uint8) * 255
    return np.repeat(gray[..., None], 3, axis=2)


#: The titles over a triptych's three panels.
TRIPTYCH_TITLES = ("image", "truth", "prediction")
#: Height in pixels of a text line (a title or the caption) over the panels.
TEXT_BAND = 16


def triptych(
    image: np.ndarray, truth: np.ndarray, pred: np.ndarray, caption: str = "", height: int = 256
) -> Image.Image:
    """One picture: image | truth | prediction (prediction over the image), each panel under its
    title (`TRIPTYCH_TITLES`), with an optional caption line on top."""
    h, w = image.shape[:2]
    width = max(1, round(w * height / h))
    panels = [image, mask_to_rgb(truth), overlay(image, pred)]
    tiles = [Image.fromarray(p).resize((width, height), Image.Resampling.BILINEAR) for p in panels]
    top = TEXT_BAND if caption else 0
    canvas = Image.new("RGB", (3 * width + 4, height + top + TEXT_BAND), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    if caption:
        draw.text((4, 2), caption, fill=(0, 0, 0))
    for i, (tile, title) in enumerate(zip(tiles, TRIPTYCH_TITLES, strict=True)):
        left = i * (width + 2)
        draw.text((left + 4, top + 2), title, fill=(0, 0, 0))
        canvas.paste(tile, (left, top + TEXT_BAND))
    return canvas


def label_colors(n: int) -> np.ndarray:
    """(n + 1) x 3 uint8 distinct bright colours for ids 0..n (row 0, background, is black)."""
    hues = (np.arange(n) * GOLDEN_RATIO_STEP + 0.1) % 1.0  # neighbouring ids far apart in hue
    rgb = [colorsys.hsv_to_rgb(h, 0.8, 1.0) for h in hues]
    return (np.array([(0.0, 0.0, 0.0), *rgb]) * 255).round().astype(np.uint8)


def instance_overlay(image: np.ndarray, labels: np.ndarray, opacity: float = 0.4) -> np.ndarray:
    """RGB uint8 image with every instance tinted in its own colour at ``opacity`` and the
    boundaries between objects and background drawn dark."""
    from skimage.segmentation import find_boundaries

    labels = np.asarray(labels)
    colors = label_colors(int(labels.max(initial=0))).astype(np.float32)
    out = image.astype(np.float32)
    inside = labels > 0
    out[inside] = (1 - opacity) * out[inside] + opacity * colors[labels[inside]]
    out = out.clip(0, 255).astype(np.uint8)
    out[find_boundaries(labels, mode="inner")] = OUTLINE_DARK
    return out
