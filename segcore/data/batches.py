"""Keras PyDataset feeding batches from the in-memory cache (backend-agnostic, no tf.data).

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
from segcore.preprocess import to_model_input


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
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.images, self.masks = images, masks
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
            return to_model_input(images, self.channels), masks.astype(np.float32)
        rng = np.random.default_rng([self.seed, self.epoch, index] + ([k] if n > 1 else []))
        images, masks = augment_geometry(images, masks, rng, self.augment)
        x = augment_intensity(to_model_input(images, self.channels), rng, self.augment)
        return x, masks.astype(np.float32)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order = self._permutation()
