"""Finding image/mask pairs: ISIC (both folder namings), DSB (nuclei merged), plain; bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from segcore.data import Sample, find_samples, load_sample
from segcore.data.layouts import detect_format
from segcore.errors import DataError

REPO = Path(__file__).resolve().parents[2]


def names(samples: list[Sample]) -> list[str]:
    return [s.name for s in samples]


def test_isic_layout_is_detected_and_paired(isic_dir: Path):
    fmt, samples = find_samples(isic_dir)
    assert fmt == "isic"
    assert names(samples) == [f"ISIC_{i:07d}" for i in range(6)]
    for s in samples:
        assert s.image.suffix == ".jpg"
        assert s.masks == (isic_dir / "masks" / f"{s.name}_segmentation.png",)


def test_official_isic2018_folder_names(tmp_path: Path, writers):
    root = writers["isic"](
        tmp_path / "isic2018",
        n=3,
        image_dir="ISIC2018_Task1-2_Training_Input",
        mask_dir="ISIC2018_Task1_Training_GroundTruth",
    )
    # the official download also holds text files and (2017) superpixel PNGs beside the images
    (root / "ISIC2018_Task1-2_Training_Input" / "LICENSE.txt").write_text("CC-BY-NC")
    (root / "ISIC2018_Task1_Training_GroundTruth" / "ATTRIBUTION.txt").write_text("ISIC")
    sp = root / "ISIC2018_Task1-2_Training_Input" / "ISIC_0000000_superpixels.png"
    sp.write_bytes(
        (
            root / "ISIC2018_Task1_Training_GroundTruth" / "ISIC_0000000_segmentation.png"
        ).read_bytes()
    )
    assert detect_format(root) == "isic"
    fmt, samples = find_samples(root)
    assert fmt == "isic"
    assert names(samples) == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"]
    assert all(s.masks[0].parent.name == "ISIC2018_Task1_Training_GroundTruth" for s in samples)


def test_official_isic_input_without_truth_folder(tmp_path: Path, writers):
    root = writers["isic"](tmp_path / "x", n=2, image_dir="ISIC2018_Task1-2_Training_Input")
    with pytest.raises(DataError, match="ISIC2018_Task1_Training_GroundTruth"):
        find_samples(root)


def test_dsb_layout_merges_overlapping_nuclei(tmp_path: Path, save_array):
    size, sid = 24, "abc123"
    folder = tmp_path / "dsb" / "stage1_train" / sid
    a = np.zeros((size, size), dtype=bool)
    b = np.zeros((size, size), dtype=bool)
    a[2:12, 2:12] = True
    b[8:20, 8:20] = True  # overlaps a on [8:12, 8:12]
    save_array(folder / "masks" / "n1.png", a)
    save_array(folder / "masks" / "n2.png", b)
    save_array(folder / "images" / f"{sid}.png", np.full((size, size, 3), 90, np.uint8))
    fmt, samples = find_samples(tmp_path / "dsb")
    assert fmt == "dsb"
    assert len(samples) == 1 and len(samples[0].masks) == 2
    image, mask = load_sample(samples[0])
    assert image.shape == (size, size, 3)
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask, a | b)


def test_dsb_detected_from_stage1_train_itself(dsb_dir: Path):
    fmt, samples = find_samples(dsb_dir / "stage1_train")
    assert fmt == "dsb"
    assert len(samples) == 4
    assert all(len(s.masks) == 3 for s in samples)
    assert all(s.image.parent.parent.name == s.name for s in samples)


def test_dsb_merged_mask_is_union_of_files(dsb_dir: Path):
    from segcore.inference.preprocess import load_mask

    _, samples = find_samples(dsb_dir)
    for s in samples:
        _, mask = load_sample(s)
        union = np.logical_or.reduce([load_mask(m) for m in s.masks])
        np.testing.assert_array_equal(mask, union)


def test_plain_layout_equal_stems(tmp_path: Path, save_array, box_pair):
    root = tmp_path / "plain"
    for i, stem in enumerate(["b", "a", "c"]):
        image, mask = box_pair(16, 16, (2, 2, 9, 9), seed=i)
        save_array(root / "images" / f"{stem}.jpg", image)
        save_array(root / "masks" / f"{stem}.png", mask)
    fmt, samples = find_samples(root)
    assert fmt == "plain"
    assert names(samples) == ["a", "b", "c"]  # sorted by image path
    assert all(s.masks[0].stem == s.name for s in samples)


def test_format_forcing(isic_dir: Path, plain_dir: Path, dsb_dir: Path):
    # masks named <stem>_segmentation do not pair by equal stems
    with pytest.raises(DataError, match="have no mask"):
        find_samples(isic_dir, "plain")
    # the isic pairing also accepts equal stems
    assert len(find_samples(plain_dir, "isic")[1]) == 6
    assert find_samples(plain_dir, "plain")[0] == "plain"
    assert find_samples(dsb_dir, "dsb")[0] == "dsb"
    with pytest.raises(DataError, match="no image/mask pairs"):
        find_samples(isic_dir, "dsb")
    with pytest.raises(DataError, match="expected images/ and masks/"):
        find_samples(dsb_dir, "plain")
    with pytest.raises(DataError, match="unknown format"):
        find_samples(plain_dir, "coco")


def test_bundled_real_samples_are_found():
    fmt, isic = find_samples(REPO / "samples" / "isic")
    assert (fmt, len(isic)) == ("isic", 24)
    fmt, dsb = find_samples(REPO / "samples" / "dsb")
    assert (fmt, len(dsb)) == ("dsb", 12)
    assert sum(len(s.masks) > 1 for s in dsb) >= 10  # one file per nucleus
    image, mask = load_sample(isic[0])
    assert image.shape[:2] == mask.shape and 0 < mask.mean() < 1
    image, mask = load_sample(dsb[0])
    assert image.shape == (*mask.shape, 3) and 0 < mask.mean() < 1


def test_unmatched_images_are_listed(plain_dir: Path, save_array, box_pair):
    image, _ = box_pair(16, 16, (0, 0, 4, 4))
    save_array(plain_dir / "images" / "orphan1.png", image)
    save_array(plain_dir / "images" / "orphan2.png", image)
    with pytest.raises(DataError) as info:
        find_samples(plain_dir)
    message = str(info.value)
    assert "2 image(s) have no mask" in message
    assert "orphan1.png" in message and "orphan2.png" in message
    assert "\n" not in message


def test_many_unmatched_images_are_summarised(plain_dir: Path, save_array, box_pair):
    image, _ = box_pair(16, 16, (0, 0, 4, 4))
    for i in range(13):
        save_array(plain_dir / "images" / f"orphan{i:02d}.png", image)
    with pytest.raises(DataError, match="13 image.*and 3 more"):
        find_samples(plain_dir)


def test_skip_unmatched_logs_each(plain_dir: Path, save_array, box_pair, caplog):
    image, _ = box_pair(16, 16, (0, 0, 4, 4))
    save_array(plain_dir / "images" / "orphan.png", image)
    with caplog.at_level(logging.WARNING, logger="segcore.data.layouts"):
        fmt, samples = find_samples(plain_dir, skip_unmatched=True)
    assert len(samples) == 6
    assert "orphan" not in names(samples)
    assert any("orphan.png" in r.getMessage() for r in caplog.records)


def test_dsb_image_without_masks_is_unmatched(dsb_dir: Path, save_array):
    lonely = dsb_dir / "stage1_train" / "ffff" / "images"
    save_array(lonely / "ffff.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match="ffff.png"):
        find_samples(dsb_dir)
    assert len(find_samples(dsb_dir, skip_unmatched=True)[1]) == 4


@pytest.mark.parametrize("case", ["empty", "missing", "file", "empty_pair_folders", "wrong"])
def test_unusable_folders_raise_one_line_data_error(tmp_path: Path, case: str):
    root = tmp_path / "data"
    if case == "empty":
        root.mkdir()
    elif case == "file":
        root.write_text("not a folder")
    elif case == "empty_pair_folders":
        (root / "images").mkdir(parents=True)
        (root / "masks").mkdir()
    elif case == "wrong":
        (root / "pictures").mkdir(parents=True)
        (root / "pictures" / "a.png").write_bytes(b"")
    with pytest.raises(DataError) as info:
        find_samples(root)
    assert str(root) in str(info.value)
    assert "\n" not in str(info.value)


def test_sample_json_round_trip(isic_dir: Path):
    _, samples = find_samples(isic_dir)
    obj = samples[0].to_json(isic_dir)
    assert obj == {
        "image": "images/ISIC_0000000.jpg",
        "masks": ["masks/ISIC_0000000_segmentation.png"],
    }
    assert Sample.from_json(obj, isic_dir) == samples[0]


def test_a_folder_of_data_sets_is_not_a_dsb_layout(tmp_path: Path):
    # samples/ style: isic/images + isic/masks beside another data set is no DSB stage1_train
    for sub in ("isic/images", "isic/masks", "other/images", "other/masks"):
        (tmp_path / sub).mkdir(parents=True)
    with pytest.raises(DataError, match="no dataset found"):
        detect_format(tmp_path)
    sample = tmp_path / "dsb" / "abc"
    (sample / "images").mkdir(parents=True)
    (sample / "masks").mkdir()
    (sample / "images" / "abc.png").write_bytes(b"")
    assert detect_format(tmp_path / "dsb") == "dsb"


def test_a_16_bit_label_mask_keeps_touching_objects_apart(tmp_path):
    from PIL import Image

    from segcore.data import load_labels

    labels = np.zeros((6, 8), np.uint16)
    labels[1:5, 1:4] = 7
    labels[1:5, 4:7] = 300  # touches object 7: one component, two objects
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(labels).save(tmp_path / "a_labels.png")
    _, got = load_labels(Sample(tmp_path / "a.png", (tmp_path / "a_labels.png",)))
    assert got.dtype == np.int32 and set(np.unique(got)) == {0, 7, 300}
    np.testing.assert_array_equal(got, labels)
    Image.fromarray((labels > 0).astype(np.uint8) * 255).save(tmp_path / "a_mask.png")
    _, merged = load_labels(Sample(tmp_path / "a.png", (tmp_path / "a_mask.png",)))
    assert set(np.unique(merged)) == {0, 1}  # an 8-bit mask: its connected components
