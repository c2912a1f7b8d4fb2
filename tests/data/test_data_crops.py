"""``segcore.data.crops``: per-nucleus labels kept apart, native-scale crops aligned with targets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from synthetic_images import disk_labels

from segcore.data import find_samples, load_labels, load_sample
from segcore.data.augment import AugmentConfig
from segcore.data.crops import InstanceCache, crops_per_image, grid_origins
from segcore.inference.instances import instance_targets
from segcore.training.feeders import NativeCrops


def _cache(shapes: list[tuple[int, int]]) -> InstanceCache:
    pairs = [disk_labels(h, w, i) for i, (h, w) in enumerate(shapes)]
    return InstanceCache(
        [p[0] for p in pairs], [instance_targets(p[1]) for p in pairs], [p[1] for p in pairs], []
    )


def test_dsb_layout_keeps_each_nucleus(tmp_path: Path):
    folder = tmp_path / "stage1_train" / "a"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    image, labels = disk_labels(40, 50, 0)
    Image.fromarray(image).save(folder / "images" / "a.png")
    for i in range(1, labels.max() + 1):
        Image.fromarray(((labels == i) * 255).astype(np.uint8)).save(folder / "masks" / f"m{i}.png")
    _, samples = find_samples(tmp_path)
    img, got = load_labels(samples[0])
    assert got.dtype == np.int32 and got.max() == len(samples[0].masks)
    np.testing.assert_array_equal(got > 0, load_sample(samples[0])[1])
    np.testing.assert_array_equal(img, image)


def test_training_crops_align_image_and_target():
    cache = _cache([(100, 130), (40, 50)])  # the second is smaller than the crop: padded
    data = NativeCrops(cache, crop=64, batch_size=4, augment=AugmentConfig(), seed=3)
    for index in range(len(data)):
        x, y = data[index]
        assert x.shape[1:] == (64, 64, 3) and y.shape[1:] == (64, 64, 2)
        assert x.dtype == np.float32 and set(np.unique(y)) <= {0.0, 1.0}
        bright = x.mean(axis=-1) > 0.5
        # the foreground target follows the bright disks through jitter, flips and turns
        agreement = (bright == (y[..., 1] > 0)).mean()
        assert agreement > 0.95
        assert not (y[..., 0] > y[..., 1]).any()  # boundary only inside the foreground


def test_epochs_reshuffle_reproducibly():
    cache = _cache([(100, 130), (90, 90), (70, 200)])
    a = NativeCrops(cache, crop=64, batch_size=2, augment=AugmentConfig(), seed=1)
    b = NativeCrops(cache, crop=64, batch_size=2, augment=AugmentConfig(), seed=1)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    first = a[0][0].copy()
    a.on_epoch_end()
    assert not np.array_equal(first, a[0][0])


def test_validation_crops_are_a_fixed_grid():
    cache = _cache([(100, 130), (40, 50)])
    data = NativeCrops(cache, crop=64, batch_size=8, train=False)
    x, y = data[0]
    assert len(x) == len(grid_origins((100, 130), 64)) + 1 == 5
    np.testing.assert_array_equal(y[0], cache.targets[0][:64, :64] / 255.0)
    assert set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_array_equal(x, data[0][0])
    assert crops_per_image((40, 50), 64) == 1 and crops_per_image((1000, 1000), 64) == 4
