"""The Segment page's pictures: overlays with an opacity and a contrasting outline, probability
heat maps, coloured instances, and compact PNG/JPEG previews for the cache.

Pure numpy + Pillow + scipy. Previews are stored compressed (a few hundred KB per image), never as
full-size arrays, so what the app keeps per image stays small.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from segcore.visualize import PRED_COLOR, TRUTH_COLOR, contour

#: Outline drawn around the prediction: a dark line inside a light one, visible on any stain.
OUTLINE_DARK = (0, 0, 0)
OUTLINE_LIGHT = (255, 255, 255)
#: Probability colour map (dark blue -> teal -> yellow), sampled at 0, 0.5 and 1.
PROBABILITY_STOPS = np.array([[20, 20, 70], [30, 150, 140], [250, 230, 40]], np.float32)
INSTANCE_SEED = 7


def outline_width(shape: tuple[int, ...]) -> int:
    """Outline thickness for a picture of ``shape``: about one pixel per 300."""
    return max(1, round(min(shape[:2]) / 300))


def tinted(
    image: np.ndarray,
    mask: np.ndarray,
    opacity: float = 0.35,
    color: tuple[int, int, int] = PRED_COLOR,
    truth: np.ndarray | None = None,
) -> np.ndarray:
    """The mask tinted over the image at ``opacity`` (0-1), outlined light-and-dark so the edge
    shows on pink and purple stains too; ``truth`` (if given) outlined in green."""
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


def probability_picture(probability: np.ndarray) -> np.ndarray:
    """An HxW probability map (float in [0, 1] or uint8 0-255) as an RGB heat map."""
    p = np.asarray(probability, np.float32)
    if np.asarray(probability).dtype == np.uint8:
        p = p / 255.0
    t = p.clip(0, 1) * (len(PROBABILITY_STOPS) - 1)
    low = np.minimum(t.astype(int), len(PROBABILITY_STOPS) - 2)
    frac = (t - low)[..., None]
    rgb = PROBABILITY_STOPS[low] * (1 - frac) + PROBABILITY_STOPS[low + 1] * frac
    return rgb.round().astype(np.uint8)


def instance_colors(count: int) -> np.ndarray:
    """``count + 1`` distinct bright RGB colours, index 0 (background) black."""
    rng = np.random.default_rng(INSTANCE_SEED)
    colors = rng.integers(60, 256, size=(count + 1, 3)).astype(np.uint8)
    colors[0] = 0
    return colors


def instances_picture(image: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Each labelled object (``labels`` > 0) in its own colour over the image, outlined."""
    labels = np.asarray(labels)
    colors = instance_colors(int(labels.max(initial=0)))
    out = image.astype(np.float32)
    inside = labels > 0
    out[inside] = (1 - opacity) * out[inside] + opacity * colors[labels[inside]]
    out = out.clip(0, 255).astype(np.uint8)
    edge = np.zeros(labels.shape, bool)
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    out[edge & inside] = OUTLINE_DARK
    return out


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An integer label image resized to (height, width) by nearest neighbour."""
    h, w = size
    labels = np.asarray(labels)
    if labels.shape == (h, w):
        return labels
    rows = (np.arange(h) * labels.shape[0] / h).astype(int)
    cols = (np.arange(w) * labels.shape[1] / w).astype(int)
    return labels[rows[:, None], cols[None, :]]


def encode(picture: np.ndarray, fmt: str = "PNG") -> bytes:
    """A uint8 picture (HxW or HxWx3) as PNG or JPEG bytes."""
    buffer = io.BytesIO()
    options = {"quality": 90} if fmt == "JPEG" else {"optimize": False}
    Image.fromarray(np.asarray(picture)).save(buffer, fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    """PNG/JPEG bytes from `encode` back to a uint8 array."""
    return np.asarray(Image.open(io.BytesIO(data), formats=("PNG", "JPEG")))


def side_by_side(pictures: list[np.ndarray], height: int, gap: int = 2) -> np.ndarray:
    """RGB pictures of one size scaled to ``height`` and set side by side on white."""
    h, w = pictures[0].shape[:2]
    width = max(1, round(w * height / h))
    canvas = np.full((height, len(pictures) * (width + gap) - gap, 3), 255, np.uint8)
    for i, picture in enumerate(pictures):
        tile = Image.fromarray(picture).resize((width, height), Image.BILINEAR)
        canvas[:, i * (width + gap) : i * (width + gap) + width] = np.asarray(tile)
    return canvas
