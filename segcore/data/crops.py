"""Instance training data at native pixel scale: per-nucleus labels, targets, random crops.

`build_instance_cache` decodes every image at its own size with its per-nucleus masks kept apart
(an int32 label image), and turns the labels into the two-channel instance target of
`segcore.inference.instances` (marker channel: boundary or distance; stored as uint8 0..TARGET_SCALE).
The crop geometry lives here (`crop_pair`, `crops_per_image`, `grid_origins`); the Keras
feeder that draws random crops from the cache is `segcore.training.feeders.NativeCrops`.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from segcore.data.layouts import Sample, load_labels
from segcore.errors import ImageError
from segcore.inference.instances import instance_targets

log = logging.getLogger(__name__)

SCALE_JITTER = (0.75, 1.33)  # crop scale factors (log-uniform): >1 magnifies
MAX_CROPS_PER_IMAGE = 4  # large images give up to this many crops per epoch


@dataclass
class InstanceCache:
    """Full-size images (HxWx3 uint8), their targets (HxWx2 uint8, 0..TARGET_SCALE) and labels."""

    images: list[np.ndarray]
    targets: list[np.ndarray]
    labels: list[np.ndarray]
    samples: list[Sample]

    def __len__(self) -> int:
        return len(self.samples)


def build_instance_cache(
    samples: list[Sample], workers: int | None = None, markers: str = "boundary"
) -> InstanceCache:
    """Decode all samples at native size with a thread pool; unreadable pairs are logged, skipped.

    ``markers`` names the targets' first channel (`segcore.inference.instances.MARKERS`).
    """
    workers = workers or min(8, os.cpu_count() or 1)

    def job(sample: Sample):
        try:
            image, labels = load_labels(sample)
        except ImageError as exc:
            return sample, None, str(exc)
        return sample, (image, instance_targets(labels, markers=markers), labels), None

    cache = InstanceCache([], [], [], [])
    with ThreadPoolExecutor(workers) as pool:
        for sample, arrays, error in pool.map(job, samples):
            if error is not None:
                log.warning("skipping %s: %s", sample.image.name, error)
                continue
            cache.images.append(arrays[0])
            cache.targets.append(arrays[1])
            cache.labels.append(arrays[2])
            cache.samples.append(sample)
    return cache


def pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mirror-pad the bottom/right of an HxWxC array to at least height x width."""
    h, w = array.shape[:2]
    if h >= height and w >= width:
        return array
    pad = ((0, max(0, height - h)), (0, max(0, width - w)), (0, 0))
    return np.pad(array, pad, mode="symmetric")


def crop_pair(
    image: np.ndarray, target: np.ndarray, top: float, left: float, side: float, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The source square (top, left, side) of image and target resampled to size x size.

    Bilinear for the image, nearest for the target; the arrays must cover the square.
    """
    box = (left, top, left + side, top + side)
    if side == size and float(top).is_integer() and float(left).is_integer():
        t, lf = int(top), int(left)
        return image[t : t + size, lf : lf + size], target[t : t + size, lf : lf + size]
    img = np.asarray(
        Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR, box=box)
    )
    tgt = np.stack(
        [
            np.asarray(
                Image.fromarray(target[..., c]).resize(
                    (size, size), Image.Resampling.NEAREST, box=box
                )
            )
            for c in range(target.shape[2])
        ],
        axis=-1,
    )
    return img, tgt


def crops_per_image(shape: tuple[int, ...], crop: int) -> int:
    """How many crops an image gives per epoch: about one per two crop areas, 1..MAX."""
    return int(np.clip(math.ceil(shape[0] * shape[1] / (2 * crop * crop)), 1, MAX_CROPS_PER_IMAGE))


def grid_origins(shape: tuple[int, ...], crop: int) -> list[tuple[int, int]]:
    """Fixed validation crop origins: a grid of up to MAX crops covering the image's corners."""
    h, w = shape[:2]
    tops = sorted({0, max(0, h - crop)})
    lefts = sorted({0, max(0, w - crop)})
    return [(t, lf) for t in tops for lf in lefts][:MAX_CROPS_PER_IMAGE]
