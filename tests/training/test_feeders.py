"""CachedBatches and augmentation: determinism, shuffling, image/mask alignment, grayscale input."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from scipy import ndimage

from segcore.data.augment import AugmentConfig, augment_geometry, augment_intensity
from segcore.inference.preprocess import to_model_input
from segcore.training.feeders import CachedBatches

SIZE = 32


def box_arrays(n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """n copies of an off-centre bright box (255) on black, and the same box as the mask."""
    images = np.zeros((n, SIZE, SIZE, 3), np.uint8)
    masks = np.zeros((n, SIZE, SIZE, 1), np.uint8)
    images[:, 3:13, 5:27] = 255
    masks[:, 3:13, 5:27] = 1
    return images, masks


def random_arrays(n: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = (rng.random((n, SIZE, SIZE, 1)) > 0.5).astype(np.uint8)
    return images, masks


def near_edge(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels within `width` of the mask's boundary (either side)."""
    grown = ndimage.binary_dilation(mask, iterations=width)
    shrunk = ndimage.binary_erosion(mask, iterations=width, border_value=1)
    return grown & ~shrunk


def test_batches_are_deterministic_per_seed_epoch_index():
    images, masks = random_arrays()
    aug = AugmentConfig()
    ds = CachedBatches(images, masks, 4, augment=aug, shuffle=True, seed=5)
    first = [ds[i] for i in range(len(ds))]
    again = CachedBatches(images, masks, 4, augment=aug, shuffle=True, seed=5)
    for i in reversed(range(len(ds))):  # order of requests does not matter
        np.testing.assert_array_equal(again[i][0], first[i][0])
        np.testing.assert_array_equal(again[i][1], first[i][1])
    with ThreadPoolExecutor(3) as pool:  # nor do worker threads
        threaded = list(pool.map(ds.__getitem__, range(len(ds))))
    for (x, y), (tx, ty) in zip(first, threaded, strict=True):
        np.testing.assert_array_equal(x, tx)
        np.testing.assert_array_equal(y, ty)
    other_seed = CachedBatches(images, masks, 4, augment=aug, shuffle=True, seed=6)
    assert not np.array_equal(other_seed[0][0], first[0][0])


def test_epoch_advances_order_and_augmentation():
    images, masks = random_arrays()
    ds = CachedBatches(images, masks, 4, augment=AugmentConfig(), shuffle=True, seed=1)
    epoch0 = ds[0][0]
    ds.on_epoch_end()
    assert ds.epoch == 1
    assert not np.array_equal(ds[0][0], epoch0)
    resumed = CachedBatches(
        images, masks, 4, augment=AugmentConfig(), shuffle=True, seed=1, epoch=1
    )
    np.testing.assert_array_equal(resumed[0][0], ds[0][0])
    np.testing.assert_array_equal(resumed[2][1], ds[2][1])


def ids_dataset(n: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 3), np.uint8)
    return images, np.zeros((n, 4, 4, 1), np.uint8)


def batch_ids(batch) -> list[int]:
    return [round(float(v) * 255) for v in batch[0][:, 0, 0, 0]]


def test_shuffle_visits_every_image_once_per_epoch():
    images, masks = ids_dataset(10)
    ds = CachedBatches(images, masks, 3, shuffle=True, seed=2)
    assert len(ds) == 4
    for _ in range(3):
        seen = [i for b in range(len(ds)) for i in batch_ids(ds[b])]
        assert sorted(seen) == list(range(10))
        ds.on_epoch_end()
    orders = set()
    for epoch in range(3):
        e = CachedBatches(images, masks, 3, shuffle=True, seed=2, epoch=epoch)
        orders.add(tuple(i for b in range(len(e)) for i in batch_ids(e[b])))
    assert len(orders) == 3


def test_drop_remainder():
    images, masks = ids_dataset(10)
    ds = CachedBatches(images, masks, 3, shuffle=True, drop_remainder=True)
    assert len(ds) == 3
    assert all(len(ds[i][0]) == 3 for i in range(3))
    small = CachedBatches(images[:2], masks[:2], 3, drop_remainder=True)
    assert len(small) == 1 and len(small[0][0]) == 2  # fewer images than a batch: keep them


def test_unaugmented_batches_are_exact_and_ordered():
    images, masks = random_arrays(7)
    ds = CachedBatches(images, masks, 3)  # how validation batches are made
    assert len(ds) == 3
    xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
    x, y = np.concatenate(xs), np.concatenate(ys)
    assert x.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_allclose(x, images.astype(np.float32) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(x, to_model_input(images))
    np.testing.assert_array_equal(y, masks.astype(np.float32))
    ds.on_epoch_end()
    np.testing.assert_array_equal(ds[0][0], xs[0])  # no shuffling either


def test_channels_1_gives_luma():
    images = np.zeros((3, 4, 4, 3), np.uint8)
    images[0, ..., 0] = 255  # red
    images[1, ..., 1] = 255  # green
    images[2] = (10, 100, 200)
    ds = CachedBatches(images, np.zeros((3, 4, 4, 1), np.uint8), 3, channels=1)
    x, _ = ds[0]
    assert x.shape == (3, 4, 4, 1)
    expected = [0.299, 0.587, (0.299 * 10 + 0.587 * 100 + 0.114 * 200) / 255]
    np.testing.assert_allclose(x[:, 0, 0, 0], expected, rtol=1e-5)


def test_augmented_values_are_valid():
    images, masks = random_arrays()
    ds = CachedBatches(images, masks, 5, augment=AugmentConfig(), shuffle=True)
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (5, SIZE, SIZE, 3) and y.shape == (5, SIZE, SIZE, 1)
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
        assert set(np.unique(y)) <= {0.0, 1.0}


def test_augmentation_keeps_image_and_mask_aligned():
    images, masks = box_arrays(8)
    ds = CachedBatches(images, masks, 8, augment=AugmentConfig(scale_prob=0.5), shuffle=True)
    changed = 0
    for epoch in range(4):
        for i in range(len(ds)):
            x, y = ds[i]
            for img, m in zip(x, y[..., 0] > 0.5, strict=True):
                bright = img.mean(axis=2) > 0.5
                assert m.any()
                wrong = bright != m
                assert not (wrong & ~near_edge(m)).any(), f"epoch {epoch} batch {i}"
                changed += not np.array_equal(m, masks[0, ..., 0].astype(bool))
        ds.on_epoch_end()
    assert changed > 16  # the geometry really was augmented


def test_geometry_without_scaling_is_exactly_shared():
    rng = np.random.default_rng(0)
    images, _ = random_arrays(16)
    masks = (images[..., :1] > 128).astype(np.uint8)
    cfg = AugmentConfig(scale_prob=0.0)
    x, y = augment_geometry(images, masks, rng, cfg)
    np.testing.assert_array_equal(y, (x[..., :1] > 128).astype(np.uint8))
    assert not np.array_equal(x, images)
    assert np.array_equal(images[..., :1] > 128, masks.astype(bool))  # inputs untouched


def test_scale_crop_always_on_stays_aligned():
    images, masks = box_arrays(16)
    cfg = AugmentConfig(flips=False, rot90=False, scale_prob=1.0, scale_range=(0.6, 0.9))
    x, y = augment_geometry(images, masks, np.random.default_rng(3), cfg)
    assert x.shape == images.shape and y.shape == masks.shape
    for img, m in zip(x, y[..., 0].astype(bool), strict=True):
        wrong = (img.mean(axis=2) > 127) != m
        assert not (wrong & ~near_edge(m)).any()
    assert all(not np.array_equal(m, masks[0]) for m in y)  # every image was cropped


def test_non_square_images_skip_rotation():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 16, 24, 3), dtype=np.uint8)
    masks = (images[..., :1] > 100).astype(np.uint8)
    x, y = augment_geometry(images, masks, rng, AugmentConfig(scale_prob=0.0))
    assert x.shape == images.shape and y.shape == masks.shape
    np.testing.assert_array_equal(y, (x[..., :1] > 100).astype(np.uint8))


def test_intensity_changes_only_brightness_and_contrast():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.4, 0.6, (6, 8, 8, 3)).astype(np.float32)
    same = augment_intensity(x.copy(), rng, AugmentConfig(brightness=0.0, contrast=0.0))
    np.testing.assert_array_equal(same, x)
    out = augment_intensity(x.copy(), rng, AugmentConfig(brightness=0.0, contrast=0.15))
    # contrast is around each image's own mean: the mean is kept, the spread scales
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), x.mean(axis=(1, 2, 3)), atol=1e-5)
    ratio = out.std(axis=(1, 2, 3)) / x.std(axis=(1, 2, 3))
    assert ((ratio > 0.84) & (ratio < 1.16)).all() and not np.allclose(ratio, 1.0)
    shifted = augment_intensity(x.copy(), rng, AugmentConfig(brightness=0.1, contrast=0.0))
    delta = (shifted - x).reshape(6, -1)
    np.testing.assert_allclose(delta, delta[:, :1].repeat(delta.shape[1], axis=1), atol=1e-6)
    assert (np.abs(delta[:, 0]) <= 0.1 + 1e-6).all()


@pytest.mark.parametrize("kwargs", [{"flips": False, "rot90": False, "scale_prob": 0.0}])
def test_geometry_can_be_switched_off(kwargs):
    images, masks = random_arrays(4)
    x, y = augment_geometry(images, masks, np.random.default_rng(0), AugmentConfig(**kwargs))
    np.testing.assert_array_equal(x, images)
    np.testing.assert_array_equal(y, masks)
