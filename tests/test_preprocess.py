"""Decoding messy image and mask files, resizing and model-input conversion (segcore.preprocess)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcore.data import Sample, load_sample
from segcore.preprocess import (
    ImageError,
    flip_views,
    load_image,
    load_mask,
    merge_flips,
    open_image,
    prepare,
    resize_image,
    resize_mask,
    resize_probabilities,
    to_model_input,
)


def png_bytes(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def square_mask(size: int = 16) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    mask[3:10, 5:13] = True
    return mask


# --- images -------------------------------------------------------------------------------------


def test_rgba_png_is_composited_over_black():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:2, ..., 3] = 255  # top half opaque, bottom half transparent
    rgba[2, 0, 3] = 128
    image = load_image(png_bytes(Image.fromarray(rgba, "RGBA")))
    assert image.shape == (4, 4, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, 0], (200, 100, 50))
    np.testing.assert_array_equal(image[3, 3], (0, 0, 0))
    np.testing.assert_allclose(image[2, 0], (100, 50, 25), atol=1)


def test_16_bit_png_is_scaled_to_8_bit():
    values = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
    data = png_bytes(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    image = load_image(data)
    assert image.shape == (1, 4, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, :, 0], [0, 1, 128, 255])
    assert (image[..., 0] == image[..., 2]).all()


def test_grayscale_png_gives_three_equal_channels():
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16
    image = load_image(png_bytes(Image.fromarray(gray, "L")))
    assert image.shape == (4, 4, 3)
    for c in range(3):
        np.testing.assert_array_equal(image[..., c], gray)


def test_palette_png_uses_its_colours():
    pal = Image.new("P", (4, 2))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (768 - 9))
    pal.putdata([0, 1, 2, 1, 2, 0, 1, 1])
    image = load_image(png_bytes(pal))
    np.testing.assert_array_equal(image[0, :3], [(0, 0, 0), (255, 0, 0), (0, 0, 255)])
    np.testing.assert_array_equal(image[1, 3], (255, 0, 0))


def test_palette_with_transparency_is_composited():
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 255, 255, 0, 200, 0] + [0] * (768 - 6))
    pal.putdata([0, 1])
    pal.info["transparency"] = 0
    image = load_image(png_bytes(pal, transparency=0))
    np.testing.assert_array_equal(image[0], [(0, 0, 0), (0, 200, 0)])


def test_exif_orientation_6_jpeg_is_rotated():
    stored = np.zeros((32, 48, 3), np.uint8)  # 48 wide, 32 high as stored
    stored[:, :24] = (250, 20, 20)  # left half red
    stored[:, 24:] = (20, 20, 250)  # right half blue
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    data = png_bytes(img, "JPEG", quality=95, exif=exif.tobytes())
    raw = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert raw.shape == (32, 48, 3)
    image = load_image(data)
    assert image.shape == (48, 32, 3)  # width and height swapped
    np.testing.assert_array_equal(image, np.rot90(raw, k=-1))  # clockwise
    assert image[2, 16, 0] > 200 and image[2, 16, 2] < 60  # stored left (red) is now on top
    assert image[45, 16, 2] > 200 and image[45, 16, 0] < 60
    assert open_image(data).info["full_size"] == (32, 48)


def test_jpeg_draft_decode_keeps_full_size():
    big = Image.fromarray(np.full((256, 192, 3), 120, np.uint8))
    img = open_image(png_bytes(big, "JPEG"), draft_size=(48, 64))
    assert img.width >= 48 and img.height >= 64 and img.width < 192
    assert img.info["full_size"] == (192, 256)


def test_load_from_path_and_file_object(tmp_path: Path):
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    np.testing.assert_array_equal(load_image(path), arr)
    np.testing.assert_array_equal(load_image(str(path)), arr)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(load_image(f), arr)


# --- masks --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda m: Image.fromarray(m.astype(np.uint8) * 255), id="0-255"),
        pytest.param(lambda m: Image.fromarray(m.astype(np.uint8)), id="0-1-labels"),
        pytest.param(lambda m: Image.fromarray(m.astype(np.uint16) * 65535), id="16bit-0-65535"),
        pytest.param(lambda m: Image.fromarray(m.astype(np.uint16)), id="16bit-0-1-labels"),
        pytest.param(lambda m: Image.fromarray(m).convert("1"), id="mode-1"),
        pytest.param(
            lambda m: Image.fromarray(
                np.stack([m * 255] * 3 + [np.full(m.shape, 255)], -1).astype(np.uint8)
            ),
            id="rgba-opaque",
        ),
        pytest.param(
            lambda m: Image.fromarray(
                np.dstack([np.zeros(m.shape + (3,), np.uint8), m.astype(np.uint8) * 255])
            ),
            id="rgba-alpha-only",
        ),
        pytest.param(
            lambda m: Image.fromarray(np.stack([m * 255] * 3, -1).astype(np.uint8)), id="rgb"
        ),
    ],
)
def test_mask_encodings_decode_to_the_same_bool_mask(encode):
    truth = square_mask()
    mask = load_mask(png_bytes(encode(truth)))
    assert mask.dtype == bool and mask.shape == truth.shape
    np.testing.assert_array_equal(mask, truth)


def test_noisy_0_200_mask_is_thresholded():
    truth = square_mask(24)
    noise = np.random.default_rng(0).integers(-25, 26, truth.shape)
    noisy = np.clip(np.where(truth, 200, 0) + noise, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(load_mask(png_bytes(Image.fromarray(noisy))), truth)
    # the same mask through real JPEG compression: wrong only next to the edge, if at all
    jpeg = load_mask(png_bytes(Image.fromarray(np.where(truth, 200, 0).astype(np.uint8)), "JPEG"))
    from scipy import ndimage

    edge = ndimage.binary_dilation(truth) & ~ndimage.binary_erosion(truth)
    assert not ((jpeg != truth) & ~edge).any()


def test_mask_at_another_size_is_resized_nearest(tmp_path: Path):
    image = np.zeros((32, 48, 3), np.uint8)
    small = np.zeros((8, 12), dtype=bool)
    small[:, :6] = True  # left half
    small[2:4, 9:11] = True  # a 2x2 block -> an exact 8x8 block after 4x nearest resize
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(small.astype(np.uint8) * 255).save(tmp_path / "a_mask.png")
    _, mask = load_sample(Sample(tmp_path / "a.png", (tmp_path / "a_mask.png",)))
    expected = np.zeros((32, 48), dtype=bool)
    expected[:, :24] = True
    expected[8:16, 36:44] = True
    np.testing.assert_array_equal(mask, expected)


# --- unreadable files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a readable image"),
        (b"hello, I am text", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "corrupt or truncated"),
    ],
)
def test_bad_files_raise_image_error_naming_the_file(tmp_path: Path, content, message):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(ImageError):
        load_mask(path)


def test_truncated_png_and_missing_file(tmp_path: Path):
    data = png_bytes(
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    )
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cut.png"):
        load_image(path)
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "nope.png")


# --- resizing and model input -------------------------------------------------------------------


def test_resize_image_and_mask():
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    out = resize_image(image, (10, 15))
    assert out.shape == (10, 15, 3) and out.dtype == np.uint8
    assert resize_image(image, (20, 30)) is image
    mask = np.zeros((4, 4), dtype=bool)
    mask[1, 2] = True
    big = resize_mask(mask, (8, 8))
    assert big.dtype == bool and big.sum() == 4 and big[2:4, 4:6].all()


def test_resize_probabilities_is_bilinear_float():
    prob = np.array([[0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    out = resize_probabilities(prob, (4, 8))
    assert out.shape == (4, 8) and out.dtype == np.float32
    assert out[:, 0].max() < 0.1 and out[:, -1].min() > 0.9
    assert np.all(np.diff(out[0]) >= 0) and 0.3 < out[0, 4] < 0.7


def test_to_model_input_rgb_and_luma():
    images = np.array([[[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]]], np.uint8)
    x = to_model_input(images)
    assert x.dtype == np.float32 and x.shape == (1, 1, 4, 3)
    np.testing.assert_allclose(x[0, 0, 3], 1.0)
    g = to_model_input(images, channels=1)
    assert g.shape == (1, 1, 4, 1)
    np.testing.assert_allclose(g[0, 0, :, 0], [0.299, 0.587, 0.114, 1.0], rtol=1e-5)
    with pytest.raises(ValueError, match="channels"):
        to_model_input(images, channels=2)


def test_prepare_resizes_and_normalises():
    image = np.full((50, 70, 3), 51, np.uint8)
    x = prepare(image, (16, 16), channels=1)
    assert x.shape == (16, 16, 1)
    np.testing.assert_allclose(x, 0.2, atol=1e-6)


def test_flip_views_round_trip():
    rng = np.random.default_rng(0)
    prob = rng.random((2, 6, 8)).astype(np.float32)
    views = flip_views(prob[..., None])
    assert len(views) == 4
    assert np.array_equal(views[1][0, :, 0, 0], prob[0, :, -1])
    # predictions of an identity "model" on each view come back aligned
    np.testing.assert_allclose(merge_flips([v[..., 0] for v in views]), prob, rtol=1e-6)
