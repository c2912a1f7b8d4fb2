"""Synthetic images for the image-statistics tests: dermoscopy-like photos and fluorescence-like
microscopy (imported by tests/test_imagestats.py and tests/app)."""

from __future__ import annotations

import numpy as np


def skin_photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """Light pinkish-beige images with one dark brown blob each, like dermoscopy photos."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    out = []
    for _ in range(n):
        base = np.array([215, 170, 150]) + rng.normal(0, 12, 3)
        image = base + rng.normal(0, 6, (96, 96, 3))
        cy, cx, r = rng.integers(35, 60), rng.integers(35, 60), rng.integers(12, 30)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        image[blob] = np.array([110, 70, 50]) + rng.normal(0, 10, 3)
        out.append(image.clip(0, 255).astype(np.uint8))
    return out


def fluorescence(n: int, seed: int = 1) -> list[np.ndarray]:
    """Black images with small bright grey dots, like fluorescence microscopy of nuclei."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    out = []
    for _ in range(n):
        image = np.zeros((96, 96, 3))
        for cy, cx in rng.integers(5, 91, size=(25, 2)):
            image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 9] = rng.integers(120, 255)
        out.append(image.astype(np.uint8))
    return out
