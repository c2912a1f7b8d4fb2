"""segcore.scoring.truth: ground truth as binary masks, label images (8/16/32-bit, float, colour) and
DSB mask folders, read into instance labels; matching truth files to images by stem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from segcore.data.layouts import Sample, load_labels, load_sample
from segcore.inference.preprocess import ImageError
from segcore.scoring.truth import (
    annotated_count,
    match_by_stem,
    read_truth,
    truth_index,
    truth_stem,
)


def squares(ids: list[int], side: int = 8, size: int = 64) -> np.ndarray:
    """A label image with one side x side square per id, along the diagonal."""
    labels = np.zeros((size, size), np.int64)
    for i, label in enumerate(ids):
        labels[i * side : (i + 1) * side, i * side : (i + 1) * side] = label
    return labels


def test_8_bit_label_image_keeps_every_id(tmp_path: Path):
    # ids at or below 127 were read as background by the half-range mask reader
    path = tmp_path / "a_labels.png"
    Image.fromarray(squares([1, 2, 3, 5, 130]).astype(np.uint8)).save(path)
    labels = read_truth(path)
    assert set(np.unique(labels)) == {0, 1, 2, 3, 5, 130}
    assert labels.dtype == np.int32 and annotated_count(labels) == 5


def test_16_and_32_bit_and_float_label_images(tmp_path: Path):
    ids = [1, 7, 300, 4000]
    Image.fromarray(squares(ids).astype(np.uint16)).save(tmp_path / "b.png")
    tifffile.imwrite(tmp_path / "c.tif", squares([1, 70_000]).astype(np.int32))
    tifffile.imwrite(tmp_path / "d.tif", squares([1.0, 2.0, 3.0]).astype(np.float32))
    assert set(np.unique(read_truth(tmp_path / "b.png"))) == {0, *ids}
    assert set(np.unique(read_truth(tmp_path / "c.tif"))) == {0, 1, 70_000}
    assert annotated_count(read_truth(tmp_path / "d.tif")) == 3


def test_binary_masks_become_components(tmp_path: Path):
    binary = (squares([1, 1, 1]) > 0).astype(np.uint8)
    Image.fromarray(binary * 255).save(tmp_path / "m255.png")
    Image.fromarray(binary).save(tmp_path / "m1.png")
    Image.fromarray(binary * 255).convert("1").save(tmp_path / "mbit.png")
    tifffile.imwrite(tmp_path / "mf.tif", binary.astype(np.float32) * 0.9)
    for name in ("m255.png", "m1.png", "mbit.png", "mf.tif"):
        labels = read_truth(tmp_path / name)
        assert annotated_count(labels) == 3, name
        assert np.array_equal(labels > 0, binary > 0), name


def test_near_binary_jpeg_mask_is_thresholded(tmp_path: Path):
    mask = np.zeros((64, 64), np.uint8)
    mask[10:40, 10:40] = 255
    Image.fromarray(mask).convert("RGB").save(tmp_path / "m.jpg", quality=80)
    labels = read_truth(tmp_path / "m.jpg")
    assert annotated_count(labels) == 1
    assert abs(int((labels > 0).sum()) - 900) < 60


def test_colour_label_image_one_object_per_colour(tmp_path: Path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[2:8, 2:8] = (255, 0, 0)
    rgb[10:16, 10:16] = (0, 200, 30)
    rgb[20:26, 20:26] = (0, 0, 90)
    Image.fromarray(rgb).save(tmp_path / "colours.png")
    labels = read_truth(tmp_path / "colours.png")
    assert annotated_count(labels) == 3 and int((labels > 0).sum()) == 3 * 36


def test_dsb_mask_folder(tmp_path: Path):
    masks = tmp_path / "abc" / "masks"
    masks.mkdir(parents=True)
    for i, label in enumerate([1, 1, 1, 1]):
        one = np.zeros((64, 64), np.uint8)
        one[i * 8 : i * 8 + 6, i * 8 : i * 8 + 6] = 255 * label
        Image.fromarray(one).save(masks / f"n{i}.png")
    labels = read_truth(tmp_path / "abc")
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}
    assert truth_index(tmp_path) == {"abc": tmp_path / "abc"}


def test_truth_held_to_the_pixel_limit(tmp_path: Path):
    Image.fromarray(np.zeros((50, 50), np.uint8)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="big.png.*limit"):
        read_truth(tmp_path / "big.png", max_pixels=2000)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError, match="without mask"):
        read_truth(empty)


def test_matching_by_stem_prefers_suffixed_truth_files():
    assert truth_stem("ISIC_1_segmentation.png") == "ISIC_1"
    assert truth_stem("cells_labels.tif") == "cells"
    assert truth_stem("_mask.png") == "_mask"
    matched = match_by_stem(["a.jpg", "b.png", "c.png"], ["a.png", "a_mask.png", "b_labels.tif"])
    assert matched == {"a.jpg": "a_mask.png", "b.png": "b_labels.tif"}


def test_training_loaders_read_label_images(tmp_path: Path):
    image = tmp_path / "x.png"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(image)
    mask = tmp_path / "x_labels.png"
    Image.fromarray(squares([3, 4, 200]).astype(np.uint8)).save(mask)
    sample = Sample(image=image, masks=(mask,))
    _, labels = load_labels(sample)
    _, binary = load_sample(sample)
    assert set(np.unique(labels)) == {0, 3, 4, 200}
    assert int(binary.sum()) == 3 * 64
