"""Instance training data at native pixel scale: per-nucleus labels, targets, random crops.

`build_instance_cache` decodes every image at its own size with its per-nucleus masks kept apart
(an int32 label image), and turns the labels into the two-channel instance target of
`segcore.instances` (marker channel: boundary or distance; stored as uint8 0..TARGET_SCALE).
`NativeCrops` feeds square crops of those full-size arrays: random position,
scale jitter (the crop covers ``crop / s`` source pixels, resampled to ``crop``), flips,
90-degree turns and brightness/contrast; images smaller than the crop are padded by mirroring,
never stretched. Validation crops are a fixed grid (no jitter), so val scores are comparable.
"""

from __future__ import annotations

import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import keras
import numpy as np
from PIL import Image

from segcore.data.augment import AugmentConfig, augment_intensity
from segcore.data.layouts import Sample, load_labels
from segcore.instances import TARGET_SCALE, instance_targets
from segcore.preprocess import ImageError, to_model_input

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

    ``markers`` names the targets' first channel (`segcore.instances.MARKERS`).
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


def _pad_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
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
    img = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR, box=box))
    tgt = np.stack(
        [
            np.asarray(Image.fromarray(target[..., c]).resize((size, size), Image.NEAREST, box=box))
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


class NativeCrops(keras.utils.PyDataset):
    """Batches of (float32 image crops, float32 target crops in [0, 1]) at native scale."""

    def __init__(
        self,
        cache: InstanceCache,
        crop: int,
        batch_size: int,
        channels: int = 3,
        augment: AugmentConfig | None = None,
        train: bool = True,
        seed: int = 0,
        epoch: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cache, self.crop, self.batch_size, self.channels = cache, crop, batch_size, channels
        self.augment, self.train, self.seed, self.epoch = augment, train, seed, epoch
        if train:
            self._items = [
                (i, None)
                for i, im in enumerate(cache.images)
                for _ in range(crops_per_image(im.shape, crop))
            ]
        else:
            self._items = [
                (i, origin)
                for i, im in enumerate(cache.images)
                for origin in grid_origins(im.shape, crop)
            ]
        self._order = self._permutation()

    def _permutation(self) -> np.ndarray:
        n = len(self._items)
        if not self.train:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __len__(self) -> int:
        n = len(self._items) / self.batch_size
        return max(1, math.floor(n) if self.train and n >= 1 else math.ceil(n))

    def _one(self, item: tuple[int, tuple[int, int] | None], rng: np.random.Generator):
        i, origin = item
        image, target = self.cache.images[i], self.cache.targets[i]
        if origin is not None:
            top, left = origin
            image, target = (
                _pad_to(image, self.crop, self.crop),
                _pad_to(target, self.crop, self.crop),
            )
            return crop_pair(image, target, top, left, self.crop, self.crop)
        scale = 1.0
        if self.augment is not None:
            scale = math.exp(rng.uniform(*np.log(SCALE_JITTER)))
        side = self.crop / scale
        need = math.ceil(side)
        image, target = _pad_to(image, need, need), _pad_to(target, need, need)
        h, w = image.shape[:2]
        top, left = rng.uniform(0, h - side), rng.uniform(0, w - side)
        if scale == 1.0:
            top, left = float(int(top)), float(int(left))
        img, tgt = crop_pair(image, target, top, left, side, self.crop)
        if self.augment is not None:
            if self.augment.flips and rng.random() < 0.5:
                img, tgt = img[:, ::-1], tgt[:, ::-1]
            if self.augment.rot90:
                k = int(rng.integers(0, 4))
                img, tgt = np.rot90(img, k), np.rot90(tgt, k)
        return img, tgt

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        idx = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        pairs = [self._one(self._items[j], rng) for j in idx]
        images = np.stack([p[0] for p in pairs])
        targets = np.stack([p[1] for p in pairs]).astype(np.float32) / TARGET_SCALE
        x = to_model_input(images, self.channels)
        if self.augment is not None:
            x = augment_intensity(x, rng, self.augment)
        return x, targets

    def on_epoch_end(self) -> None:
        if self.train:
            self.epoch += 1
            self._order = self._permutation()
