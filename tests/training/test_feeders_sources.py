"""Native-scale crops over several sources: weights, the percentile normalisation, blur/noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segcore.data.augment import AugmentConfig, blur_and_noise
from segcore.data.crops import InstanceCache
from segcore.data.layouts import Sample
from segcore.inference.preprocess import PERCENTILE_CLIP
from segcore.training.feeders import NativeCrops


def cache(sources: list[str], value: int = 200) -> InstanceCache:
    """One 64x64 image per source: a bright square (``value``) on a dim background."""
    images, targets, labels, samples = [], [], [], []
    for i, source in enumerate(sources):
        image = np.full((64, 64, 3), 20, np.uint8)
        image[16:48, 16:48] = value
        lab = np.zeros((64, 64), np.int32)
        lab[16:48, 16:48] = 1
        images.append(image)
        targets.append(np.zeros((64, 64, 2), np.uint8))
        labels.append(lab)
        samples.append(Sample(Path(f"{i}.png"), (), source))
    return InstanceCache(images, targets, labels, samples)


def test_a_source_weight_multiplies_its_crops():
    plain = NativeCrops(cache(["a", "b"]), 32, 2)
    weighted = NativeCrops(cache(["a", "b"]), 32, 2, weights={"b": 3.0})
    count = lambda feed, i: sum(1 for item in feed._items if item[0] == i)  # noqa: E731
    assert count(weighted, 0) == count(plain, 0)
    assert count(weighted, 1) == 3 * count(plain, 1)


def test_percentile_input_does_not_depend_on_the_exposure():
    dim = NativeCrops(cache(["a"], value=60), 64, 1, train=False, normalization="percentile")
    bright = NativeCrops(cache(["a"], value=250), 64, 1, train=False, normalization="percentile")
    x_dim, _ = dim[0]
    x_bright, _ = bright[0]
    np.testing.assert_allclose(x_dim, x_bright, atol=1e-5)
    assert x_dim.max() <= PERCENTILE_CLIP[1] and abs(float(x_dim.max()) - 1.0) < 1e-5
    raw, _ = NativeCrops(cache(["a"], value=60), 64, 1, train=False)[0]
    assert abs(float(raw.max()) - 60 / 255) < 1e-6


def test_blur_and_noise_change_only_the_images_drawn():
    x = np.zeros((6, 16, 16, 3), np.float32)
    x[:, 8, 8] = 1.0
    out = blur_and_noise(x.copy(), np.random.default_rng(0), AugmentConfig(blur_prob=1.0))
    assert (out[:, 8, 8] < 1.0).all() and (out[:, 8, 9] > 0).all()
    same = blur_and_noise(x.copy(), np.random.default_rng(0), AugmentConfig())
    np.testing.assert_array_equal(same, x)
    noisy = blur_and_noise(x.copy(), np.random.default_rng(1), AugmentConfig(noise_prob=1.0))
    assert float(np.abs(noisy - x).mean()) > 0.005
