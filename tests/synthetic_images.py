"""Synthetic test images, made in the tests (no files): every generator of the test suite.

- `disk_image`: bright disks on a dark noisy background, and their mask;
- `box_pair`: a bright box on dark noise, and its mask; `box_labels`: boxes as a label image;
- `disk_labels`: bright disks and their instance labels; `painted_nuclei`: three nuclei (two
  touching) painted as a two-channel model's ideal output;
- `skin_photos` / `fluorescence`: dermoscopy-like photos and fluorescence-like microscopy.
"""

from __future__ import annotations

import numpy as np

from segcore.inference.instances import instance_targets, labels_from_masks


def disk_image(
    height: int, width: int, centers: list[tuple[int, int, int]], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """An RGB uint8 image of bright disks (cy, cx, r) on a dark noisy background, and its mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    mask = np.zeros((height, width), dtype=bool)
    for cy, cx, r in centers:
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    noise = rng.integers(0, 40, size=(height, width, 3))
    image = np.where(mask[..., None], 215 + noise, 10 + noise).astype(np.uint8)
    return image, mask


def box_pair(
    height: int, width: int, box: tuple[int, int, int, int], seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(RGB uint8 image, bool mask) with a bright box (top, left, bottom, right) on dark noise."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), dtype=bool)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = True
    noise = rng.integers(0, 30, size=(height, width, 3))
    image = np.where(mask[..., None], 220 + noise, 10 + noise).astype(np.uint8)
    return image, mask


def box_labels(*boxes: tuple[int, int, int, int], shape=(20, 20)) -> np.ndarray:
    """An int32 label image with the filled boxes (y0, x0, y1, x1) as ids 1, 2, ..."""
    out = np.zeros(shape, dtype=np.int32)
    for i, (y0, x0, y1, x1) in enumerate(boxes, start=1):
        out[y0:y1, x0:x1] = i
    return out


def disk_labels(height: int, width: int, seed: int, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """RGB image with ``n`` bright disks of radius 6 at random places and their labels (1..n)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    labels = np.zeros((height, width), np.int32)
    for i in range(1, n + 1):
        cy, cx = rng.integers(8, height - 8), rng.integers(8, width - 8)
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = i
    image = np.where(labels[..., None] > 0, 230, 20).astype(np.uint8).repeat(3, axis=2)
    return image, labels


def painted_nuclei(shape=(90, 150), markers: str = "boundary") -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, truth labels): 3 nuclei, two of them touching; red = nucleus, green = the
    marker target (inner ring, or distance map)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    discs = [(45, 40, 16), (45, 71, 16), (30, 120, 12)]
    masks = [(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2 for cy, cx, r in discs]
    masks[1] &= ~masks[0]
    labels = labels_from_masks(masks, shape)
    target = instance_targets(labels, markers=markers)
    image = np.zeros((*shape, 3), np.uint8)
    image[..., 0] = target[..., 1]  # targets are stored 0..255
    image[..., 1] = target[..., 0]
    return image, labels


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
