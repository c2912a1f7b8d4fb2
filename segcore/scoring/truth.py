"""Ground truth in any usual form, read into one instance label image.

Accepted forms, each read by `read_truth` into an HxW int32 label image (0 = background):

- a binary mask (0/1, 0/255, 0/65535, bool; a JPEG, or a mask whose edges were blurred by
  resizing): any pixel at or above half its range is an object; objects are its 4-connected
  components;
- a label image, 8-, 16- or 32-bit or float (one id per object, the form Cellpose, StarDist and
  QuPath export): any non-zero pixel is an object and the ids are kept;
- a colour label image (one colour per object): each non-black colour is one object;
- a mask drawn as alpha over a transparent background;
- a DSB-style folder, ``<id>/masks/*.png`` or a folder of per-object masks: one object per file.

A file whose declared size is above the pixel limit is refused before it is decoded. Truth files
are matched to images by stem (`truth_index`), with the suffixes annotation tools add
(``ISIC_1_segmentation.png`` belongs to ``ISIC_1.jpg``). Pure numpy + scipy + Pillow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import TypeVar

import numpy as np
from PIL import Image

from segcore.inference.preprocess import (
    MAX_PIXELS,
    ImageError,
    ImageSource,
    is_image_file,
    open_image,
)
from segcore.io.microscopy import stem_of

#: Suffixes that mark a file as the truth of the image with the rest of its stem.
T = TypeVar("T")
TRUTH_SUFFIXES = ("_segmentation", "_mask", "_masks", "_labels", "_label", "_gt")
#: Share of a near-binary mask's non-zero pixels at the top value (the rest are JPEG or
#: antialiasing edges): such a mask is thresholded at half range, not read as ids.
NEAR_BINARY_SHARE = 0.9
#: Largest difference between the channels of a pixel of a grey image saved as RGB.
GREY_SPREAD = 8
#: Largest value of each integer type a binary mask uses for "object".
_FULL_SCALE = {np.dtype(np.uint8): 255, np.dtype(np.uint16): 65535}


def _components(mask: np.ndarray) -> np.ndarray:
    """A bool mask's 4-connected components as int32 ids 1..n."""
    from scipy import ndimage  # not on import: a command's --help stays light

    return ndimage.label(mask)[0].astype(np.int32)


def _gray_labels(arr: np.ndarray) -> np.ndarray:
    """Labels of a single-channel array: binary, near-binary or label image (module docstring)."""
    if arr.dtype == bool:
        return _components(arr)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.nan_to_num(arr.astype(np.float64), nan=0.0)
        if arr.max(initial=0.0) <= 1.0:
            return _components(arr >= 0.5)
        arr = np.rint(arr).astype(np.int64)
    values, counts = np.unique(arr[arr > 0], return_counts=True)
    if values.size == 0:
        return np.zeros(arr.shape, np.int32)
    if values.size == 1:
        return _components(arr > 0)
    full = _FULL_SCALE.get(arr.dtype)
    if full is not None and values[-1] == full and counts[-1] >= NEAR_BINARY_SHARE * counts.sum():
        return _components(arr >= (full + 1) // 2)
    if values[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"label ids up to {values[-1]} do not fit 32 bits")
    return np.where(arr > 0, arr, 0).astype(np.int32)


def _colour_labels(rgb: np.ndarray) -> np.ndarray:
    """Labels of an HxWx3 array: grey (channels within `GREY_SPREAD`, as in a JPEG of a grey
    mask) as `_gray_labels`, else one object per non-black colour."""
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2)
    if spread.max(initial=0) <= GREY_SPREAD:
        return _gray_labels(rgb[..., 1])
    packed = (
        (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    )
    values, inverse = np.unique(packed, return_inverse=True)
    ids = inverse.reshape(packed.shape).astype(np.int32)
    return ids if values[0] == 0 else ids + 1


def labels_of(img: Image.Image) -> np.ndarray:
    """An opened truth image as HxW int32 labels (0 = background); see the module docstring."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA"))
        visible = rgba[..., 3] > 127
        if not rgba[..., :3].any():  # drawn as alpha over a transparent background
            return _components(visible)
        return _colour_labels(np.where(visible[..., None], rgba[..., :3], 0))
    if img.mode in ("RGB", "P", "CMYK", "YCbCr", "HSV"):
        return _colour_labels(np.asarray(img.convert("RGB")))
    if img.mode == "1":
        return _components(np.asarray(img, dtype=bool))
    arr = np.asarray(img)
    return _gray_labels(arr if arr.ndim == 2 else arr[..., 0])


def _read_file(source: ImageSource, max_pixels: int) -> np.ndarray:
    img = open_image(source, max_pixels=max_pixels)
    try:
        if img.format == "JPEG":  # lossy: never a label image, only a blurred binary mask
            return _components(np.asarray(img.convert("L")) > 127)
        return labels_of(img)
    except ValueError as exc:
        name = source if isinstance(source, str | Path) else getattr(source, "name", "truth")
        raise ImageError(f"{name}: {exc}") from exc


def _mask_files(folder: Path) -> list[Path]:
    """The per-object mask files of a DSB-style folder (``masks/`` inside it, else its own)."""
    inner = folder / "masks"
    where = inner if inner.is_dir() else folder
    return sorted(p for p in where.iterdir() if p.is_file() and is_image_file(p))


def read_mask_files(paths: Sequence[Path], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One object per file (DSB nuclei), ids 1..n in file order (where masks overlap the later
    wins); a single file is read as any truth file. Raises ImageError naming a bad file."""
    if len(paths) == 1:
        return _read_file(paths[0], max_pixels)
    labels: np.ndarray | None = None
    for i, path in enumerate(paths, start=1):
        mask = _read_file(path, max_pixels) > 0
        if labels is None:
            labels = np.zeros(mask.shape, np.int32)
        elif mask.shape != labels.shape:
            raise ImageError(f"{path}: {mask.shape[1]}x{mask.shape[0]} differs from the first mask")
        labels[mask] = i
    if labels is None:
        raise ImageError("no mask files given")
    return labels


def read_truth(source: ImageSource, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a truth file, bytes, file object or DSB mask folder into HxW int32 labels.

    Raises ImageError with a one-line reason naming the file (unreadable, over ``max_pixels``,
    a folder without masks).
    """
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        files = _mask_files(Path(source))
        if not files:
            raise ImageError(f"{source}: a folder without mask images")
        return read_mask_files(files, max_pixels)
    return _read_file(source, max_pixels)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Labels resampled to (height, width) by nearest neighbour (ids are never blended)."""
    h, w = size
    if labels.shape[:2] == (h, w):
        return labels
    rows = np.minimum((np.arange(h) + 0.5) * labels.shape[0] / h, labels.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(w) + 0.5) * labels.shape[1] / w, labels.shape[1] - 1).astype(int)
    return labels[rows[:, None], cols[None, :]]


def truth_stem(name: str) -> str:
    """The image stem a truth file or folder belongs to (``ISIC_1_segmentation.png`` ->
    ``ISIC_1``, ``img_labels.tif`` -> ``img``)."""
    stem = PurePath(name).stem if PurePath(name).suffix.lower() else PurePath(name).name
    for suffix in TRUTH_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem.removesuffix(suffix)
    return stem


def _suffixed_last(names: Sequence[str]) -> list[str]:
    """Names with the exact-stem ones first: a suffixed name (``a_mask.png``) marks a truth
    file, so it wins over ``a.png`` when both are present."""
    return sorted(names, key=lambda n: truth_stem(n) != PurePath(n).stem)


def image_stems(name: str) -> list[str]:
    """The stems an image's truth may be filed under, the first preferred: its own stem, then its
    name without a double microscopy suffix (``x.ome.tif``: ``x.ome``, then ``x``), so
    ``x.ome_mask.png``, ``x_mask.png`` and ``x_labels.tif`` all belong to ``x.ome.tif``."""
    stems = [PurePath(name).stem]
    bare = stem_of(Path(name))
    if bare not in stems:
        stems.append(bare)
    return stems


def find_truth(name: str, index: Mapping[str, T]) -> T | None:
    """The entry of ``index`` (truth by stem, `truth_index`) for image ``name`` (`image_stems`)."""
    return next((index[s] for s in image_stems(name) if s in index), None)


def match_by_stem(images: Sequence[str], truths: Sequence[str]) -> dict[str, str]:
    """Map each image name to the truth name with the same stem (`truth_stem`, `image_stems`)."""
    by_stem = {truth_stem(name): name for name in _suffixed_last(truths)}
    found = {im: find_truth(im, by_stem) for im in images}
    return {im: truth for im, truth in found.items() if truth is not None}


def truth_index(folder: Path) -> dict[str, Path]:
    """Truth files and DSB mask folders in ``folder`` by the image stem they belong to: its
    image files, the files of its ``masks/`` subfolder, and ``<id>/masks/`` folders."""
    candidates: dict[str, Path] = {}
    for where in (folder, folder / "masks"):
        if where.is_dir():
            for path in where.iterdir():
                if path.is_file() and is_image_file(path):
                    candidates.setdefault(path.name, path)
    for sub in folder.iterdir():
        if sub.is_dir() and (sub / "masks").is_dir():
            candidates.setdefault(sub.name, sub)
    return {truth_stem(name): candidates[name] for name in _suffixed_last(list(candidates))}


def annotated_count(labels: np.ndarray) -> int:
    """Objects in a label image (distinct non-zero ids)."""
    return int(np.unique(labels[labels > 0]).size)
