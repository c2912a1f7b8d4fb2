"""Native-resolution prediction by overlapping tiles, blended with Gaussian weights.

The image is never resized. Along each axis an image no longer than the tile is one window,
padded (mirrored, window by window) up to a multiple of the model's size divisor; a longer one is covered by
windows of the tile size overlapping by ``overlap`` (the last one flush with the far edge).
Every window's prediction is weighted by a Gaussian centred on the window (sigma = 1/8 of its
side, as nnU-Net and MONAI's ``sliding_window_inference`` do), so seams between tiles vanish;
the weighted sum is divided by the summed weights. Model-agnostic: ``run`` maps an NHWC float32
batch to NHWK probabilities (onnxruntime in the engine, Keras in evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

SIGMA_SCALE = 0.125  # Gaussian sigma as a fraction of the window side
MIN_WEIGHT = 1e-3  # floor of the (max-normalised) weights, so window corners still count


def window_starts(length: int, window: int, overlap: float) -> list[int]:
    """Start offsets of windows of ``window`` covering ``length`` with the given overlap."""
    if length <= window:
        return [0]
    step = max(1, int(window * (1.0 - overlap)))
    n = math.ceil((length - window) / step) + 1
    starts = [min(i * step, length - window) for i in range(n)]
    return sorted(set(starts))


def gaussian_weights(height: int, width: int) -> np.ndarray:
    """HxW float32 Gaussian importance map, max 1, floored at MIN_WEIGHT."""
    axes = []
    for n in (height, width):
        x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        axes.append(np.exp(-0.5 * (x / (SIGMA_SCALE * n)) ** 2))
    w = np.outer(*axes)
    return np.maximum(w / w.max(), MIN_WEIGHT).astype(np.float32)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def predict_tiled(
    image: np.ndarray,
    run: Callable[[np.ndarray], np.ndarray],
    tile: int,
    overlap: float,
    multiple: int = 1,
    batch_size: int = 4,
) -> np.ndarray:
    """HxWxK probabilities for an HxWxC float32 image, predicted window by window and blended.

    ``tile`` must be a multiple of ``multiple`` (the model's size divisor); shorter axes are
    mirror-padded to a multiple of it and cropped back afterwards.
    """
    if tile % multiple:
        raise ValueError(f"tile {tile} is not a multiple of {multiple}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap {overlap} must be in [0, 1)")
    h, w = image.shape[:2]
    win_h = tile if h > tile else _round_up(h, multiple)
    win_w = tile if w > tile else _round_up(w, multiple)
    origins = [
        (top, left)
        for top in window_starts(max(h, win_h), win_h, overlap)
        for left in window_starts(max(w, win_w), win_w, overlap)
    ]
    weights = gaussian_weights(win_h, win_w)[..., None]
    total: np.ndarray | None = None
    norm = np.zeros((h, w, 1), dtype=np.float32)
    for start in range(0, len(origins), max(1, batch_size)):
        chunk = origins[start : start + batch_size]
        batch = np.stack([_window(image, t, lf, win_h, win_w) for t, lf in chunk])
        out = np.asarray(run(batch), dtype=np.float32)
        if total is None:
            total = np.zeros((h, w, out.shape[-1]), dtype=np.float32)
        for (t, lf), pred in zip(chunk, out, strict=True):
            vh, vw = min(win_h, h - t), min(win_w, w - lf)  # the window's part inside the image
            total[t : t + vh, lf : lf + vw] += pred[:vh, :vw] * weights[:vh, :vw]
            norm[t : t + vh, lf : lf + vw] += weights[:vh, :vw]
    assert total is not None
    total /= norm
    return total


def _window(image: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The window at (top, left), mirror-padded at the far edges where the image is shorter
    (only the one window of such an axis): nothing beyond one window is ever padded, so a 1 x N
    image costs its own pixels, not a window-high copy."""
    crop = image[top : top + height, left : left + width]
    short_h, short_w = height - crop.shape[0], width - crop.shape[1]
    if short_h or short_w:
        crop = np.pad(crop, ((0, short_h), (0, short_w), (0, 0)), mode="symmetric")
    return crop
