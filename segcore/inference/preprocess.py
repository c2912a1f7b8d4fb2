"""Image decoding and pre-processing shared by training, inference and the app.

Pure numpy + Pillow: importing this module never imports TensorFlow or Keras, so the
onnxruntime engine and the Streamlit app use exactly the code the training pipeline uses.
Model input convention: float32 NHWC in [0, 1] (pixel / 255), RGB or luma grayscale.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from segcore.errors import ImageError

ImageSource = str | os.PathLike | bytes | BinaryIO

#: The only formats decoded (Pillow's names): any other file is refused before a decoder runs, so a
#: PostScript or other exotic file renamed ``.png`` never reaches Ghostscript or a rare plugin.
ACCEPTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")
#: File name extensions of those formats (folder listings, upload filters).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
#: Largest image accepted, in pixels, as declared by the file header (checked before decoding).
MAX_PIXELS = 80_000_000

#: How people write those formats' names (Pillow's are all upper case).
_FORMAT_NAMES = {"WEBP": "WebP"}
#: The accepted formats in words, for messages: "PNG, JPEG, TIFF, BMP, GIF or WebP".
FORMATS_IN_WORDS = (
    ", ".join(_FORMAT_NAMES.get(f, f) for f in ACCEPTED_FORMATS[:-1])
    + " or "
    + _FORMAT_NAMES.get(ACCEPTED_FORMATS[-1], ACCEPTED_FORMATS[-1])
)

NORMALIZATION = "divide_by_255"
#: The normalisations a card may name: pixel / 255, or per-image percentiles (`percentile_normalize`).
NORMALIZATIONS = (NORMALIZATION, "percentile")
#: Default percentiles of the ``percentile`` normalisation (StarDist's 1 and 99.8).
PERCENTILES = (1.0, 99.8)
#: The normalised input is clipped to this range (a safety bound for near-flat images).
PERCENTILE_CLIP = (-0.5, 2.0)
#: `percentile_range` reads at most about this many values of an image (an even stride).
PERCENTILE_SAMPLE = 1_000_000
#: ITU-R 601 luma weights of R, G and B: the grayscale of one-channel models and of measurements.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Probability above which a pixel is foreground, unless a model card says otherwise.
DEFAULT_THRESHOLD = 0.5


def _source_name(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", "<bytes>")


def _is_empty(source: ImageSource) -> bool:
    """True for zero bytes or a zero-byte file (a file object is not inspected)."""
    if isinstance(source, (bytes, bytearray)):
        return not source
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.path.getsize(source) == 0
        except OSError:
            return False
    return False


def check_pixels(size: tuple[int, int], name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Raise ImageError when a (width, height) is above ``max_pixels``; message names ``name``.

    Called on the size a file declares, before any pixel is decoded: a small file can declare a
    huge image (a decompression bomb). Pure arithmetic, so safe from any thread.
    """
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} image is above the {max_pixels:,}-pixel limit")


def over_limit(exc: Image.DecompressionBombError, max_pixels: int = MAX_PIXELS) -> str:
    """Pillow's refusal of a decompression bomb in our words: its size against ``max_pixels``.

    Pillow refuses, while reading the header, images far above any limit of ours, so such an
    image is always over the limit (never "damaged").
    """
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found[1]) / 1e6:,.0f}-megapixel image" if found else "image"
    return f"{size} is above the {max_pixels:,}-pixel limit"


def open_image(
    source: ImageSource,
    draft_size: tuple[int, int] | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Open and fully decode an image with EXIF orientation applied; raises ImageError.

    Only `ACCEPTED_FORMATS` are tried; the declared size is checked against ``max_pixels``
    before decoding. ``draft_size`` (width, height) lets a JPEG decode at 1/2, 1/4 or 1/8 scale
    while staying at least that large (much faster for big photos). ``img.info["full_size"]``
    holds the (width, height) a full decode has, after EXIF rotation.
    """
    name = _source_name(source)
    try:
        fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        img = Image.open(fp, formats=ACCEPTED_FORMATS)
        try:
            check_pixels(img.size, name, max_pixels)
        except ImageError:
            img.close()
            raise
        full_size = img.size
        if draft_size is not None and img.format == "JPEG":
            img.draft("RGB", draft_size)
        img.load()
        if img.getexif().get(ExifTags.Base.Orientation) in (5, 6, 7, 8):
            full_size = full_size[::-1]
        ImageOps.exif_transpose(img, in_place=True)  # a copy would double the peak memory
        img.info["full_size"] = full_size
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"{name}: file not found") from exc
    except IsADirectoryError as exc:
        raise ImageError(f"{name}: a folder, not an image file") from exc
    except UnidentifiedImageError as exc:
        what = "empty file" if _is_empty(source) else "unsupported format or not an image"
        raise ImageError(f"{name}: {what} (accepted: {FORMATS_IN_WORDS})") from exc
    except Image.DecompressionBombError as exc:  # Pillow's own guard, far above MAX_PIXELS
        raise ImageError(f"{name}: {over_limit(exc, max_pixels)}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name}: corrupt or truncated image ({exc})") from exc
    if img.width < 1 or img.height < 1:
        raise ImageError(f"{name}: empty image")
    return img


class RangeWarning(UserWarning):
    """Pixel values outside the usual range of their type were mapped by their own range."""


def _by_range(arr: np.ndarray) -> np.ndarray:
    """Values stretched from their own min..max to 0..255, with a `RangeWarning`."""
    finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr
    low = float(finite.min(initial=0.0))
    high = float(finite.max(initial=0.0))
    warnings.warn(
        f"pixel values {low:g}..{high:g} are outside 0..255: mapped by their range",
        RangeWarning,
        stacklevel=3,
    )
    scaled = (np.nan_to_num(arr.astype(np.float64), nan=low) - low) / max(high - low, 1e-12)
    return (scaled * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale any integer/float pixel array to uint8: 8-bit values as they are, 16-bit by its
    range (>> 8), floats in [0, 1] or [0, 255] by that range; any other values (32-bit integers
    or floats above 255, negative values) stretched from their min..max, with a `RangeWarning`
    rather than clipped to white."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        low, high = float(arr.min(initial=0)), float(arr.max(initial=0))
        if low >= 0 and high <= 255:
            return arr.astype(np.uint8)
        if arr.dtype == np.uint16:
            return (arr.astype(np.float32) / 65535.0 * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
        return _by_range(arr)
    arr = arr.astype(np.float32)
    low, high = float(np.nanmin(arr, initial=0.0)), float(np.nanmax(arr, initial=0.0))
    if low < 0 or high > 255 or not np.isfinite([low, high]).all():
        return _by_range(arr)
    top = 1.0 if high <= 1.0 else 255.0
    return (np.nan_to_num(arr) / top * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any Pillow image (RGB, RGBA, LA, P, L, I;16, I, F, CMYK) to an HxWx3 uint8 array."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        gray = _to_uint8(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def to_mask_array(img: Image.Image) -> np.ndarray:
    """Convert a mask image to a HxW bool array: foreground is any pixel above half its range."""
    if img.mode in ("RGBA", "LA"):
        img = img.convert("RGBA")
        arr = np.asarray(img)
        # a mask drawn as alpha over a transparent background
        rgb_max = arr[..., :3].max(axis=2)
        return (rgb_max > 127) & (arr[..., 3] > 127) if rgb_max.any() else arr[..., 3] > 127
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img)
        if img.mode != "F" and arr.max(initial=0) == 1:  # 16-bit label masks stored as 0/1
            return arr > 0
        return _to_uint8(arr) > 127
    if img.mode == "1":
        return np.asarray(img, dtype=bool)
    arr = np.asarray(img.convert("L"))
    if arr.max(initial=0) == 1:  # label masks stored as 0/1
        return arr > 0
    return arr > 127


def load_image(source: ImageSource) -> np.ndarray:
    """Decode an image file (path, bytes or file object) to an HxWx3 uint8 RGB array."""
    return to_rgb_array(open_image(source))


def load_mask(source: ImageSource) -> np.ndarray:
    """Decode a mask file to an HxW bool array (thresholded at half range)."""
    return to_mask_array(open_image(source))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxWx3 uint8 image to (height, width) with bilinear filtering (antialiased)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxW bool mask to (height, width) with nearest-neighbour sampling."""
    h, w = size
    if mask.shape[:2] == (h, w):
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    return np.asarray(img.resize((w, h), Image.Resampling.NEAREST)) > 127


def resize_probabilities(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an HxW float probability map to (height, width) with bilinear interpolation."""
    h, w = size
    if prob.shape[:2] == (h, w):
        return prob.astype(np.float32, copy=False)
    img = Image.fromarray(prob.astype(np.float32), mode="F")
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def to_model_input(images: np.ndarray, channels: int = 3) -> np.ndarray:
    """Turn uint8 RGB images (HxWx3 or NxHxWx3) into float32 model input in [0, 1].

    channels=1 converts to ITU-R 601 luma, the grayscale setting of the ISIC U-Net reports.
    """
    x = images.astype(np.float32) * (1.0 / 255.0)
    if channels == 1:
        luma = np.array(LUMA_WEIGHTS, dtype=np.float32)
        x = (x @ luma)[..., None]
    elif channels != 3:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return x


def percentile_range(
    image: np.ndarray, percentiles: tuple[float, float] = PERCENTILES
) -> tuple[float, float]:
    """The ``percentiles`` of an image's values over all pixels and channels jointly (so colours
    keep their balance), read on an even stride of at most `PERCENTILE_SAMPLE` values."""
    flat = np.asarray(image).reshape(-1)
    step = max(1, flat.size // PERCENTILE_SAMPLE)
    values = flat[::step].astype(np.float32)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values, percentiles)
    return float(low), float(high)


def percentile_normalize(
    x: np.ndarray, value_range: tuple[float, float], out: np.ndarray | None = None
) -> np.ndarray:
    """``(x - low) / (high - low)`` as float32, clipped to `PERCENTILE_CLIP` (StarDist's
    normalisation: the image's low percentile goes to 0 and its high one to 1, whatever the
    camera, bit depth or exposure). A flat image (high == low) is only shifted."""
    low, high = value_range
    scale = 1.0 / (high - low) if high > low else 1.0
    y = np.subtract(x, np.float32(low), dtype=np.float32, out=out)
    y *= np.float32(scale)
    return np.clip(y, *PERCENTILE_CLIP, out=y)


def prepare(image: np.ndarray, size: tuple[int, int], channels: int = 3) -> np.ndarray:
    """Resize an HxWx3 uint8 image and convert it to HxWxC float32 model input."""
    return to_model_input(resize_image(image, size), channels)


def flip_views(batch: np.ndarray) -> list[np.ndarray]:
    """The four flips of an NHWC batch for test-time augmentation: none, H, V, both."""
    return [batch, batch[:, :, ::-1], batch[:, ::-1], batch[:, ::-1, ::-1]]


def merge_flips(preds: list[np.ndarray]) -> np.ndarray:
    """Undo `flip_views` on four (N, H, W) or (N, H, W, K) predictions and average them."""
    return np.mean(
        [preds[0], preds[1][:, :, ::-1], preds[2][:, ::-1], preds[3][:, ::-1, ::-1]], axis=0
    )


def flip_averaged(run: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """Test-time augmentation of a model runner (NHWC batch -> NHWK maps): the four flips of a
    batch run one after the other, un-flipped and averaged. The one TTA of the engine and of
    evaluation. One flip per call: a 4x batch holds 4x the activations at once (a 1100x1100
    nuclei image with TTA peaked at 9.1 GB that way, 1.1 GB flip by flip)."""

    def averaged(batch: np.ndarray) -> np.ndarray:
        return merge_flips([np.asarray(run(view)) for view in flip_views(batch)])

    return averaged


def is_image_file(path: Path) -> bool:
    """True for file names with an image extension we can decode."""
    return path.suffix.lower() in IMAGE_EXTENSIONS
