"""The in-memory cache: shapes, dtypes, mask values, and unreadable files skipped with a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from segcore.data import find_samples
from segcore.data.cache import build_cache


@pytest.mark.parametrize("workers", [1, 3])
def test_cache_shapes_and_dtypes(plain_dir: Path, workers: int):
    _, samples = find_samples(plain_dir)
    cache = build_cache(samples, 16, workers=workers)
    assert len(cache) == 6
    assert cache.images.shape == (6, 16, 16, 3) and cache.images.dtype == np.uint8
    assert cache.masks.shape == (6, 16, 16, 1) and cache.masks.dtype == np.uint8
    assert set(np.unique(cache.masks)) <= {0, 1}
    assert cache.samples == samples and cache.failed == []


def test_cache_content_matches_decoding(isic_dir: Path):
    from segcore.data import load_sample
    from segcore.inference.preprocess import resize_image, resize_mask

    _, samples = find_samples(isic_dir)
    cache = build_cache(samples, 24)
    for i, s in enumerate(samples):
        image, mask = load_sample(s)
        np.testing.assert_array_equal(cache.images[i], resize_image(image, (24, 24)))
        np.testing.assert_array_equal(cache.masks[i, ..., 0], resize_mask(mask, (24, 24)))
        # the mask lies on the bright pixels
        bright = cache.images[i].mean(axis=2) > 128
        assert (bright == cache.masks[i, ..., 0].astype(bool)).mean() > 0.9


def test_corrupt_files_are_skipped_with_a_warning(plain_dir: Path, caplog):
    (plain_dir / "images" / "case01.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (plain_dir / "masks" / "case03.png").write_bytes(b"")  # unreadable mask
    good = (plain_dir / "images" / "case04.png").read_bytes()
    (plain_dir / "images" / "case04.png").write_bytes(good[: len(good) // 2])  # truncated
    _, samples = find_samples(plain_dir)
    with caplog.at_level(logging.WARNING, logger="segcore.data.cache"):
        cache = build_cache(samples, 16, workers=2)
    assert [s.name for s in cache.samples] == ["case00", "case02", "case05"]
    assert cache.images.shape[0] == cache.masks.shape[0] == 3
    assert sorted(s.name for s, _ in cache.failed) == ["case01", "case03", "case04"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    for stem in ("case01", "case03", "case04"):
        assert any(stem in w for w in warnings), (stem, warnings)
    assert any("masks" in w and "case03.png" in w for w in warnings)  # names the bad mask file
    # the survivors are the right pictures, not shifted rows
    ref = build_cache([s for s in samples if s.name in ("case00", "case02", "case05")], 16)
    np.testing.assert_array_equal(cache.images, ref.images)
    np.testing.assert_array_equal(cache.masks, ref.masks)


def test_all_corrupt_gives_empty_cache(plain_dir: Path):
    for p in (plain_dir / "images").iterdir():
        p.write_bytes(b"nope")
    _, samples = find_samples(plain_dir)
    cache = build_cache(samples, 16)
    assert len(cache) == 0 and cache.images.shape == (0, 16, 16, 3) and len(cache.failed) == 6


def test_masks_of_another_size_are_resized_with_one_warning(plain_dir: Path, caplog):
    from PIL import Image

    for stem in ("case01", "case04"):  # 32x32 images, 16x16 masks
        path = plain_dir / "masks" / f"{stem}.png"
        Image.open(path).resize((16, 16), Image.NEAREST).save(path)
    _, samples = find_samples(plain_dir)
    with caplog.at_level(logging.WARNING, logger="segcore.data.cache"):
        cache = build_cache(samples, 32, workers=3)
    assert len(cache) == 6 and cache.failed == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert (
        warnings[0].startswith("2 of 6 pairs have a mask of another size")
        and "case0" in warnings[0]
    )
    ref = build_cache([s for s in samples if s.name == "case01"], 32)  # resized to the image
    assert ref.masks.shape == (1, 32, 32, 1) and ref.masks.any()
