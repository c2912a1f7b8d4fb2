"""Keras PyDatasets feeding training batches from in-memory caches (backend-agnostic, no tf.data).

`CachedBatches`: resized images and masks (semantic targets). `NativeCrops`: square crops of
full-size images and their instance targets, at native pixel scale: random position, scale
jitter (the crop covers ``crop / s`` source pixels, resampled to ``crop``), flips, 90-degree
turns and brightness/contrast; images smaller than the crop are padded by mirroring, never
stretched. Validation crops are a fixed grid (no jitter), so val scores are comparable.

Training batches are shuffled every epoch and augmented in numpy by worker threads; validation
batches are plain. Randomness derives from (seed, epoch, batch index), so a run is reproducible
whatever the number of workers. Under several processes (``shard=(k, n)``) every process
builds the same global batch order and yields only its k-th slice of each batch; Keras joins the
slices into the global batch.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from segcore.data.augment import AugmentConfig, augment_geometry, augment_intensity
from segcore.data.crops import (
    SCALE_JITTER,
    InstanceCache,
    crop_pair,
    crops_per_image,
    grid_origins,
    pad_to,
)
from segcore.inference.instances import TARGET_SCALE
from segcore.inference.preprocess import (
    NORMALIZATION,
    PERCENTILES,
    percentile_normalize,
    percentile_range,
    to_model_input,
)


def image_ranges(images: list[np.ndarray] | np.ndarray, normalization: str) -> list | None:
    """Each image's percentile range in model-input units (/255) for the ``percentile``
    normalisation, measured once on the whole image as the engine measures it; None for /255."""
    if normalization == NORMALIZATION:
        return None
    return [tuple(v / 255.0 for v in percentile_range(im, PERCENTILES)) for im in images]


def normalized(x: np.ndarray, ranges: list | None, idx) -> np.ndarray:
    """A float32 NHWC batch normalised by its images' ranges (`image_ranges`); unchanged for None."""
    if ranges is None:
        return x
    for row, i in enumerate(idx):
        percentile_normalize(x[row], ranges[i], out=x[row])
    return x


class CachedBatches(keras.utils.PyDataset):
    """Batches of (float32 image, float32 mask) from uint8 arrays held in memory."""

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        batch_size: int,
        channels: int = 3,
        augment: AugmentConfig | None = None,
        shuffle: bool = False,
        seed: int = 0,
        epoch: int = 0,
        drop_remainder: bool = False,
        shard: tuple[int, int] = (0, 1),
        normalization: str = NORMALIZATION,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.images, self.masks = images, masks
        self.ranges = image_ranges(images, normalization)
        self.batch_size, self.channels = batch_size, channels
        self.augment, self.shuffle, self.seed = augment, shuffle, seed
        self.drop_remainder = drop_remainder and len(images) >= batch_size
        self.epoch = epoch
        self.shard = shard
        if batch_size % shard[1]:
            raise ValueError(f"batch size {batch_size} does not split over {shard[1]} processes")
        self._order = self._permutation()

    def _permutation(self) -> np.ndarray:
        n = len(self.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __len__(self) -> int:
        n = len(self.images) / self.batch_size
        return max(1, math.floor(n) if self.drop_remainder else math.ceil(n))

    def __getitem__(self, index: int):
        idx = np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])
        k, n = self.shard
        if n > 1:
            idx = idx[k * len(idx) // n : (k + 1) * len(idx) // n]
        images, masks = self.images[idx], self.masks[idx]
        if self.augment is None:
            x = to_model_input(images, self.channels)
            return normalized(x, self.ranges, idx), masks.astype(np.float32)
        rng = np.random.default_rng([self.seed, self.epoch, index] + ([k] if n > 1 else []))
        images, masks = augment_geometry(images, masks, rng, self.augment)
        x = augment_intensity(to_model_input(images, self.channels), rng, self.augment)
        return normalized(x, self.ranges, idx), masks.astype(np.float32)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._permutation()


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
        normalization: str = NORMALIZATION,
        weights: dict[str, float] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cache, self.crop, self.batch_size, self.channels = cache, crop, batch_size, channels
        self.augment, self.train, self.seed, self.epoch = augment, train, seed, epoch
        self.ranges = image_ranges(cache.images, normalization)
        #: (cached image index, crop origin: None for a random crop at each draw)
        self._items: list[tuple[int, tuple[int, int] | None]]
        if train:
            # a source's weight multiplies its images' crops per epoch (at least one each)
            scale = [
                weights.get(cache.samples[i].source, 1.0) if weights else 1.0
                for i in range(len(cache.images))
            ]
            self._items = [
                (i, None)
                for i, im in enumerate(cache.images)
                for _ in range(max(1, round(crops_per_image(im.shape, crop) * scale[i])))
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
                pad_to(image, self.crop, self.crop),
                pad_to(target, self.crop, self.crop),
            )
            return crop_pair(image, target, top, left, self.crop, self.crop)
        scale = 1.0
        if self.augment is not None:
            scale = math.exp(rng.uniform(*np.log(SCALE_JITTER)))
        side = self.crop / scale
        need = math.ceil(side)
        image, target = pad_to(image, need, need), pad_to(target, need, need)
        h, w = image.shape[:2]
        y, x = rng.uniform(0, h - side), rng.uniform(0, w - side)
        if scale == 1.0:
            y, x = float(int(y)), float(int(x))
        img, tgt = crop_pair(image, target, y, x, side, self.crop)
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
        return normalized(x, self.ranges, [self._items[j][0] for j in idx]), targets

    def on_epoch_end(self) -> None:
        if self.train:
            self.epoch += 1
            self._order = self._permutation()
