"""Batch augmentation: flips, 90-degree rotations, random scale-crop, brightness/contrast, HED
stain jitter, Gaussian blur and noise.

Geometric transforms run on the uint8 cache arrays (Pillow's C resize for the scale-crop) and are
applied identically to image and mask; intensity changes run on the float32 model input and
touch only the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths; defaults are the ones used for the shipped models."""

    flips: bool = True
    rot90: bool = True
    scale_range: tuple[float, float] = (0.7, 1.0)  # side of the crop as a fraction of the image
    scale_prob: float = 0.5
    brightness: float = 0.1  # added, in [0, 1] pixel units
    contrast: float = 0.15  # multiplicative around the image mean
    stain_jitter: float = 0.0  # HED-space jitter of colour-stained images (segcore.data.stain)
    blur_prob: float = 0.0  # probability of a Gaussian blur (sigma in `blur_sigma`) per image
    blur_sigma: tuple[float, float] = (0.5, 1.5)
    noise_prob: float = 0.0  # probability of additive Gaussian noise (std in `noise_std`)
    noise_std: tuple[float, float] = (0.01, 0.05)


def _scale_crop_one(
    image: np.ndarray, mask: np.ndarray, box: tuple[float, float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """One image and its mask resized from the ``box`` (left, top, right, bottom) of theirs."""
    h, w = image.shape[:2]
    img = Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR, box=box)
    msk = Image.fromarray(mask[..., 0]).resize((w, h), Image.Resampling.NEAREST, box=box)
    return np.asarray(img), np.asarray(msk)[..., None]


def augment_geometry(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Scale-crop, flip and rotate uint8 images (N, S, S, 3) and masks (N, S, S, 1) alike."""
    n, h, w = x.shape[:3]
    x, y = x.copy(), y.copy()
    if cfg.scale_prob > 0:
        for i in np.flatnonzero(rng.random(n) < cfg.scale_prob):
            side = rng.uniform(*cfg.scale_range)
            ch, cw = side * h, side * w
            top, left = rng.random() * (h - ch), rng.random() * (w - cw)
            x[i], y[i] = _scale_crop_one(x[i], y[i], (left, top, left + cw, top + ch))
    if cfg.flips:
        flip = rng.random(n) < 0.5
        x[flip] = x[flip, :, ::-1]
        y[flip] = y[flip, :, ::-1]
    if cfg.rot90 and h == w:
        turns = rng.integers(0, 4, size=n)
        for k in (1, 2, 3):
            sel = turns == k
            if sel.any():
                x[sel] = np.rot90(x[sel], k, axes=(1, 2))
                y[sel] = np.rot90(y[sel], k, axes=(1, 2))
    return x, y


def blur_and_noise(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """A Gaussian blur (in the image plane, sigma from ``cfg.blur_sigma``) on a random
    ``cfg.blur_prob`` of a float32 NHWC batch, then Gaussian noise (std from ``cfg.noise_std``,
    in input units) on a random ``cfg.noise_prob`` of it; in place."""
    from scipy.ndimage import gaussian_filter

    n = x.shape[0]
    for i in np.flatnonzero(rng.random(n) < cfg.blur_prob):
        sigma = rng.uniform(*cfg.blur_sigma)
        x[i] = gaussian_filter(x[i], sigma=(sigma, sigma, 0))
    for i in np.flatnonzero(rng.random(n) < cfg.noise_prob):
        std = rng.uniform(*cfg.noise_std)
        x[i] += rng.normal(0.0, std, size=x[i].shape).astype(np.float32)
    return x


def augment_intensity(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """Random contrast (around each image's mean) and brightness on float32 input in [0, 1],
    after the HED stain jitter when ``cfg.stain_jitter`` is set; then blur and noise
    (`blur_and_noise`) when their probabilities are set."""
    if cfg.stain_jitter > 0:
        from segcore.data.stain import stain_jitter

        x = stain_jitter(x, rng, cfg.stain_jitter)
    if cfg.blur_prob > 0 or cfg.noise_prob > 0:
        x = blur_and_noise(x, rng, cfg)
    if cfg.contrast <= 0 and cfg.brightness <= 0:
        return x
    n = x.shape[0]
    c = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast, size=(n, 1, 1, 1)).astype(np.float32)
    b = rng.uniform(-cfg.brightness, cfg.brightness, size=(n, 1, 1, 1)).astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float32)
    x *= c
    x += mean * (1 - c) + b
    return np.clip(x, 0.0, 1.0, out=x)
