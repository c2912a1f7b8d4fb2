"""Fixtures for the data tests: tiny datasets in every supported layout, generated with Pillow.

Images are a bright rectangle on a dark noisy background; masks mark the rectangle exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import synthetic_images
from PIL import Image


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    """Save a uint8/bool array with Pillow (bool -> 0/255), creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    Image.fromarray(array).save(path, **kwargs)
    return path


def _boxes(n: int, size: int, seed: int = 0) -> list[tuple[int, int, int, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        top, left = (int(v) for v in rng.integers(0, size // 2, size=2))
        h, w = (int(v) for v in rng.integers(size // 4, size // 2, size=2))
        out.append((top, left, top + h, left + w))
    return out


@pytest.fixture(scope="session")
def box_pair():
    """`synthetic_images.box_pair`: (height, width, (top, left, bottom, right), seed) -> (image, mask)."""
    return synthetic_images.box_pair


@pytest.fixture(scope="session")
def save_array():
    """`save`: (path, array, **pillow_kwargs) -> path."""
    return save


def write_isic(
    root: Path,
    n: int = 6,
    size: int = 32,
    image_dir: str = "images",
    mask_dir: str = "masks",
) -> Path:
    """ISIC layout: <image_dir>/ISIC_000000i.jpg + <mask_dir>/ISIC_000000i_segmentation.png."""
    for i, box in enumerate(_boxes(n, size)):
        image, mask = synthetic_images.box_pair(size, size, box, seed=i)
        save(root / image_dir / f"ISIC_{i:07d}.jpg", image, quality=95)
        save(root / mask_dir / f"ISIC_{i:07d}_segmentation.png", mask)
    return root


def write_plain(root: Path, n: int = 6, size: int = 32) -> Path:
    """Plain layout: images/<stem>.png + masks/<stem>.png."""
    for i, box in enumerate(_boxes(n, size, seed=1)):
        image, mask = synthetic_images.box_pair(size, size, box, seed=i)
        save(root / "images" / f"case{i:02d}.png", image)
        save(root / "masks" / f"case{i:02d}.png", mask)
    return root


def write_dsb(root: Path, n: int = 4, size: int = 32, nuclei: int = 3) -> Path:
    """DSB layout: stage1_train/<id>/images/<id>.png + masks/<k>.png (overlapping nuclei)."""
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        sid = f"{i:04x}deadbeef"
        union = np.zeros((size, size), dtype=bool)
        folder = root / "stage1_train" / sid
        for k in range(nuclei):
            cy, cx = (int(v) for v in rng.integers(8, size - 8, size=2))
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 36
            union |= disk
            save(folder / "masks" / f"nucleus{k}.png", disk)
        image = np.where(union[..., None], 200, 20).astype(np.uint8).repeat(3, axis=2)
        save(folder / "images" / f"{sid}.png", image)
    return root


@pytest.fixture
def isic_dir(tmp_path: Path) -> Path:
    """A 6-pair ISIC-layout dataset of 32x32 JPEG images."""
    return write_isic(tmp_path / "isic")


@pytest.fixture
def plain_dir(tmp_path: Path) -> Path:
    """A 6-pair plain-layout dataset of 32x32 PNG images."""
    return write_plain(tmp_path / "plain")


@pytest.fixture
def dsb_dir(tmp_path: Path) -> Path:
    """A 4-image DSB-layout dataset, 3 nucleus masks per image."""
    return write_dsb(tmp_path / "dsb")


@pytest.fixture(scope="session")
def writers():
    """The layout writers by name: isic, plain, dsb."""
    return {"isic": write_isic, "plain": write_plain, "dsb": write_dsb}
