"""Decoding messy image and mask files, resizing and model-input conversion (segcore.inference.preprocess)."""

from __future__ import annotations

import io
import re
import struct
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcore.data import Sample, load_sample
from segcore.errors import ImageError
from segcore.inference.engine import Engine
from segcore.inference.preprocess import (
    ACCEPTED_FORMATS,
    MAX_PIXELS,
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
        (b"", "empty file (accepted: PNG, JPEG, TIFF, BMP, GIF or WebP)"),
        (b"hello, I am text", "unsupported format or not an image (accepted: PNG, JPEG, TIFF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "corrupt or truncated"),
    ],
)
def test_bad_files_raise_image_error_naming_the_file(tmp_path: Path, content, message):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=re.escape(message)) as info:
        load_image(path)
    assert str(path) in str(info.value)
    with pytest.raises(ImageError):
        load_mask(path)


def test_no_exception_class_names_in_messages(tmp_path: Path):
    for content in (b"", b"text", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"):
        (tmp_path / "f.png").write_bytes(content)
        with pytest.raises(ImageError) as info:
            load_image(tmp_path / "f.png")
        assert "Error" not in str(info.value) and "Unidentified" not in str(info.value)


# --- accepted formats only ----------------------------------------------------------------------

EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 10 10
%%EndComments
0 0 moveto 10 10 lineto stroke
showpage
%%EOF
"""


def test_postscript_named_png_is_refused_before_any_eps_code_runs(tmp_path: Path):
    path = tmp_path / "photo.png"
    path.write_bytes(EPS)
    eps_calls: list[str] = []

    def watch(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.endswith("EpsImagePlugin.py"):
            eps_calls.append(frame.f_code.co_name)

    sys.setprofile(watch)
    try:
        Image.open(path).close()  # control: Pillow alone hands this file to its EPS plugin
        assert eps_calls
        eps_calls.clear()
        with pytest.raises(ImageError, match="photo.png: unsupported format") as info:
            open_image(path)
    finally:
        sys.setprofile(None)
    assert eps_calls == []  # neither the plugin nor Ghostscript was reached
    assert "PNG, JPEG, TIFF, BMP, GIF or WebP" in str(info.value)


@pytest.mark.parametrize("fmt", ["PPM", "PCX", "TGA", "ICO", "IM"])
def test_formats_pillow_knows_but_we_do_not_accept(fmt: str, tmp_path: Path):
    path = tmp_path / "image.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(path, format=fmt)
    assert Image.open(path).format == fmt
    with pytest.raises(ImageError, match="image.png: unsupported format"):
        load_image(path)


@pytest.mark.parametrize("fmt", ACCEPTED_FORMATS)
def test_every_accepted_format_decodes(fmt: str):
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[:, :4] = 255
    image = load_image(png_bytes(Image.fromarray(rgb), fmt))
    assert image.shape == (6, 8, 3)
    assert image[:, :3].min() > 200 and image[:, 5:].max() < 60


# --- decompression bombs ------------------------------------------------------------------------


def png_declaring(width: int, height: int, complete: bool = True) -> bytes:
    """A 1-bit grayscale PNG of ``width`` x ``height`` black pixels (tiny on disk).

    ``complete=False`` stores only a few bytes of pixel data: decoding it fails as truncated.
    """

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = bytes(1 + (width + 7) // 8)  # filter byte + packed pixels
    stream = zlib.compressobj()
    pixels = stream.compress(row * (height if complete else 2))
    pixels += stream.flush(zlib.Z_FINISH if complete else zlib.Z_SYNC_FLUSH)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_png_declaring_is_a_real_png():
    assert load_image(png_declaring(64, 48)).shape == (48, 64, 3)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        load_image(png_declaring(64, 48, complete=False))


def test_declared_size_is_checked_before_decoding():
    # 9000x9000 = 81 Mpx, above our limit and below Pillow's own warning: if a decoder ran, the
    # missing pixel data would say "truncated"
    with pytest.raises(ImageError, match="9000x9000 image is above the 80,000,000-pixel limit"):
        load_image(png_declaring(9000, 9000, complete=False))
    with pytest.raises(ImageError, match="above the 1,000-pixel limit"):
        open_image(png_declaring(40, 30), max_pixels=1_000)
    assert open_image(png_declaring(40, 25), max_pixels=1_000).size == (40, 25)
    assert MAX_PIXELS == 80_000_000


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bomb_is_refused_in_every_thread_sharing_an_engine(bright_models_dir: Path):
    """The 144-megapixel PNG of the report, from 8 threads at once, 48 tries: never decoded."""
    bomb = png_declaring(12000, 12000)
    assert len(bomb) < 100_000
    engine = Engine(bright_models_dir / "bright.onnx")
    start = threading.Barrier(8)

    def attempt(i: int) -> str:
        if i < 8:
            start.wait()
        try:
            (engine.load if i % 2 else open_image)(bomb)
        except ImageError as exc:
            return str(exc)
        return "decoded"

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(48)))
    assert all("12000x12000 image is above the 80,000,000-pixel limit" in r for r in results)


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
