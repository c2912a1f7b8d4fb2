"""Decode every pair once, in parallel, into in-memory uint8 arrays at the training size."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from segcore.data.layouts import Sample, decode_sample
from segcore.errors import ImageError
from segcore.inference.preprocess import resize_image, resize_mask


def default_workers() -> int:
    """Decoding/augmenting threads when none are asked for: one per core, at most 8."""
    return min(8, os.cpu_count() or 1)


log = logging.getLogger(__name__)


@dataclass
class ArrayCache:
    """Resized images (N, S, S, 3) uint8, masks (N, S, S, 1) uint8 in {0, 1}, and their samples."""

    images: np.ndarray
    masks: np.ndarray
    samples: list[Sample]
    failed: list[tuple[Sample, str]]

    def __len__(self) -> int:
        return len(self.samples)


def _decode(sample: Sample, size: int) -> tuple[np.ndarray, np.ndarray, int]:
    image, mask, resized = decode_sample(sample)
    return resize_image(image, (size, size)), resize_mask(mask, (size, size)), resized


def build_cache(samples: list[Sample], size: int, workers: int | None = None) -> ArrayCache:
    """Decode and resize all samples with a thread pool; unreadable pairs are skipped and logged.

    Each skipped pair is reported with a warning naming the file; ``failed`` lists them. Masks
    of another size than their image are resized to it, with one warning giving their count.
    """
    workers = workers or default_workers()
    images = np.zeros((len(samples), size, size, 3), dtype=np.uint8)
    masks = np.zeros((len(samples), size, size, 1), dtype=np.uint8)
    ok: list = []
    failed: list = []
    resized: list = []

    def job(i: int):
        try:
            return i, _decode(samples[i], size), None
        except ImageError as exc:
            return i, None, str(exc)

    with ThreadPoolExecutor(workers) as pool:
        for i, arrays, error in pool.map(job, range(len(samples))):
            if error is not None:
                log.warning("skipping %s: %s", samples[i].image.name, error)
                failed.append((samples[i], error))
                continue
            images[len(ok)], masks[len(ok), ..., 0], n_resized = arrays
            ok.append(samples[i])
            if n_resized:
                resized.append(samples[i])
    if resized:
        log.warning(
            "%d of %d pairs have a mask of another size than their image (first: %s); "
            "resized to the image with nearest-neighbour sampling",
            len(resized),
            len(samples),
            resized[0].image.name,
        )
    n = len(ok)
    return ArrayCache(images[:n], masks[:n], ok, failed)
