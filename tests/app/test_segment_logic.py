"""segcore.app.segment: uploads in memory, truth matching, display downscaling, CSV."""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from segcore.app.segment import (
    DISPLAY_MAX_SIDE,
    Upload,
    batch_csv,
    check_upload,
    display_size,
    match_truths,
    measurements,
    segment_upload,
    thumbnail,
    truth_stem,
)
from segcore.errors import ImageError
from segcore.inference.engine import Engine
from segcore.io.results import COLUMNS
from segcore.paths import bench_dir, models_dir, samples_dir


@pytest.fixture(scope="module")
def bright(bright_models_dir: Path) -> Engine:
    return Engine(bright_models_dir / "bright.onnx")


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def test_truth_matching_by_stem_with_isic_naming():
    assert truth_stem("ISIC_0001_segmentation.png") == "ISIC_0001"
    assert truth_stem("cell.tif") == "cell"
    pairs = match_truths(
        ["ISIC_0001.jpg", "cell.png", "lonely.png"], ["ISIC_0001_segmentation.png", "cell.tif"]
    )
    assert pairs == {"ISIC_0001.jpg": "ISIC_0001_segmentation.png", "cell.png": "cell.tif"}


def test_display_size_keeps_aspect_and_never_upscales():
    assert display_size(3000, 2000) == (683, DISPLAY_MAX_SIDE)
    assert display_size(200, 100) == (100, 200)
    assert display_size(10, 5000) == (DISPLAY_MAX_SIDE, 2)


def test_big_image_mask_is_full_size_but_display_is_small(bright: Engine, disk_image):
    image, truth = disk_image(2000, 3000, [(1000, 1500, 600)])
    result = segment_upload(
        bright, Upload("big.jpg", png(image, "JPEG")), threshold=0.5, tta=False, truth=truth
    )
    assert (result.width, result.height) == (3000, 2000)
    assert max(result.image().shape[:2]) == DISPLAY_MAX_SIDE
    assert result.mask().shape == result.truth().shape == result.image().shape[:2]
    assert result.probability().shape == result.mask().shape
    assert len(pickle.dumps(result)) < 400_000  # what the cache keeps stays small
    full = np.asarray(Image.open(io.BytesIO(result.mask_png)))
    assert full.shape == (2000, 3000) and set(np.unique(full)) <= {0, 255}
    assert result.dice > 0.95 and result.note == ""


def test_truth_of_another_size_is_resized_and_noted(bright: Engine, disk_image):
    image, truth = disk_image(64, 64, [(32, 32, 20)])
    small = np.asarray(Image.fromarray(truth).resize((32, 32), Image.NEAREST))
    result = segment_upload(
        bright, Upload("a.png", png(image)), threshold=0.5, tta=False, truth=small
    )
    assert "resized from 32x32 to 64x64" in result.note
    assert result.dice > 0.9


def test_unreadable_truth_is_noted_not_fatal(bright: Engine, disk_image):
    image, _ = disk_image(32, 32, [(16, 16, 8)])
    result = segment_upload(
        bright,
        Upload("a.png", png(image)),
        threshold=0.5,
        tta=False,
        truth=Upload("a_mask.png", b"garbage"),
    )
    assert result.dice is None and "a_mask.png" in result.note


def test_unreadable_image_raises_an_error_naming_it(bright: Engine):
    with pytest.raises(ImageError, match="broken.png"):
        segment_upload(bright, Upload("broken.png", b"not an image"), threshold=0.5, tta=False)


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("notes.txt", b"hello", "not an image file the app accepts (use PNG, JPEG"),
        ("broken.png", b"not an image", "not a readable image. The app accepts PNG, JPEG"),
        ("page.png", b"%!PS-Adobe-3.0\n%%BoundingBox: 0 0 10 10\n", "not a readable image"),
    ],
)
def test_check_upload_says_in_plain_words_what_is_wrong(name: str, data: bytes, words: str):
    with pytest.raises(ImageError) as caught:
        check_upload(Upload(name, data))
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and words in message
    assert "Error" not in message and "(" not in message.split(":", 1)[0]


def test_check_upload_names_the_pixel_limit_before_decoding():
    big = png(np.zeros((3000, 4000), np.uint8))  # 12 megapixels, a few KB
    assert check_upload(Upload("ok.png", big)) == (4000, 3000)
    with pytest.raises(
        ImageError,
        match=r"4000x3000 pixels \(12 megapixels\) is above the app's limit of 10 megapixels",
    ):
        check_upload(Upload("big.png", big), max_pixels=10_000_000)
    with pytest.raises(ImageError) as caught:
        check_upload(Upload("big.png", big), max_pixels=10_000_000)
    assert 'python -m segcore.predict --model models/NAME.onnx "big.png" --out' in str(caught.value)


def test_thumbnail_is_small_and_rgb(disk_image):
    image, _ = disk_image(600, 900, [(300, 450, 100)])
    small = thumbnail(Upload("a.jpg", png(image, "JPEG")))
    assert small.dtype == np.uint8 and small.shape[2] == 3 and max(small.shape[:2]) == 256


def test_batch_csv_and_measurements(bright: Engine, disk_image):
    image, truth = disk_image(32, 32, [(8, 8, 5), (24, 24, 5)])
    with_truth = segment_upload(
        bright, Upload("two.png", png(image)), threshold=0.5, tta=False, truth=truth
    )
    alone = segment_upload(bright, Upload("one.png", png(image)), threshold=0.5, tta=True)
    rows = list(csv.DictReader(io.StringIO(batch_csv([with_truth, alone], 0.5, True))))
    assert [r["file"] for r in rows] == ["two.png", "one.png"]
    assert rows[0]["components"] == "2" and float(rows[0]["dice"]) > 0.9
    assert rows[1]["dice"] == "" and rows[1]["model"] == "bright"
    assert not with_truth.is_instances and with_truth.count == 2
    assert measurements(alone, "dsb")[0] == ("Nuclei", "2")
    assert measurements(alone, "isic")[0][0] == "Lesion area"
    assert [label for label, _ in measurements(alone, "plain")] == ["Objects", "Area"]
    assert tuple(rows[0]) == COLUMNS  # the CLI's predictions.csv shape
    assert rows[0]["threshold"] == "0.5" and rows[0]["annotated"] == "2"
    assert ("Annotated", "2") in measurements(with_truth, "dsb")


def test_label_image_truth_upload_scores_every_object(bright: Engine, disk_image):
    image, truth = disk_image(32, 32, [(8, 8, 5), (24, 24, 5)])
    labels = ndimage.label(truth)[0].astype(np.uint8)  # ids 1 and 2: below half of 255
    result = segment_upload(
        bright,
        Upload("two.png", png(image)),
        threshold=0.5,
        tta=False,
        truth=Upload("two_labels.png", png(labels)),
    )
    assert result.dice is not None and result.dice > 0.9 and result.annotated == 2


def test_folders_follow_env_vars(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for var in ("SEGCORE_MODELS_DIR", "SEGCORE_SAMPLES_DIR", "SEGCORE_BENCH_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert models_dir().name == "models" and samples_dir().name == "samples"
    assert bench_dir().parts[-2:] == ("bench", "results")
    monkeypatch.setenv("SEGCORE_MODELS_DIR", str(tmp_path))
    assert models_dir() == tmp_path
