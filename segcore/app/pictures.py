"""The Segment page's pictures: probability heat maps, label resizing, and compact PNG/JPEG
previews for the cache (the overlays themselves are `segcore.inference.visualize`'s, as in the CLI).

Pure numpy + Pillow + scipy. Previews are stored compressed (a few hundred KB per image), never as
full-size arrays, so what the app keeps per image stays small.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

#: Probability colour map (dark blue -> teal -> yellow), sampled at 0, 0.5 and 1.
PROBABILITY_STOPS = np.array([[20, 20, 70], [30, 150, 140], [250, 230, 40]], np.float32)


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
        tile = Image.fromarray(picture).resize((width, height), Image.Resampling.BILINEAR)
        canvas[:, i * (width + gap) : i * (width + gap) + width] = np.asarray(tile)
    return canvas
