"""Find image/mask pairs in the dataset layouts users download, and decode one pair.

Layouts (detected from the folder, or forced with ``fmt``):
- ``isic``: ``images/*.jpg`` + ``masks/<stem>_segmentation.png``, or the official
  ``ISIC2018_Task1-2_Training_Input`` + ``ISIC2018_Task1_Training_GroundTruth`` folders;
- ``dsb``: ``stage1_train/<id>/images/<id>.png`` + ``stage1_train/<id>/masks/*.png``
  (one mask per nucleus, merged by logical OR); the folder may also be ``stage1_train`` itself;
- ``plain``: ``images/`` + ``masks/`` with equal file stems.

scipy and scikit-image are imported inside the functions that use them, so importing this module
(for its settings and names) keeps every command's ``--help`` instant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segcore.errors import DataError, ImageError
from segcore.inference.preprocess import is_image_file, load_image, resize_mask
from segcore.scoring.truth import read_truth, resize_labels

log = logging.getLogger(__name__)

FORMATS = ("auto", "isic", "dsb", "plain")
ISIC_INPUT_DIRS = ("ISIC2018_Task1-2_Training_Input", "ISIC2017_Task1_Training_Input")
ISIC_TRUTH_DIRS = ("ISIC2018_Task1_Training_GroundTruth", "ISIC2017_Task1_Training_GroundTruth")


@dataclass(frozen=True)
class Sample:
    """One training example: an image file and the mask file(s) merged into its truth."""

    image: Path
    masks: tuple[Path, ...]
    #: The data source (dataset name) of a run on several ``--data`` folders; "" for one.
    source: str = ""

    @property
    def name(self) -> str:
        """Short identifier: the image file's stem."""
        return self.image.stem

    def to_json(self, root: Path) -> dict:
        """Paths relative to the dataset root, for split.json."""
        obj = {
            "image": _rel(self.image, root),
            "masks": [_rel(m, root) for m in self.masks],
        }
        return obj | ({"source": self.source} if self.source else {})

    @classmethod
    def from_json(cls, obj: dict, root: Path) -> Sample:
        """Inverse of `to_json`."""
        masks = tuple(root / m for m in obj["masks"])
        return cls(root / obj["image"], masks, str(obj.get("source", "")))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))


def detect_format(root: Path) -> str:
    """Name the layout of a dataset folder, or raise DataError saying what was expected."""
    if not root.exists():
        raise DataError(f"{root}: folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    # a DSB sample folder is <id>/images/<id>.png + <id>/masks/ (a plain data set's folder,
    # images/ + masks/ with other names inside, is not one)
    if (root / "stage1_train").is_dir() or any(
        (d / "images" / f"{d.name}.png").is_file() and (d / "masks").is_dir()
        for d in _subdirs(root)[:5]
    ):
        return "dsb"
    if any((root / d).is_dir() for d in ISIC_INPUT_DIRS):
        return "isic"
    if (root / "images").is_dir() and (root / "masks").is_dir():
        masks = [p.name for p in (root / "masks").iterdir()][:50]
        if any(n.endswith("_segmentation.png") for n in masks):
            return "isic"
        return "plain"
    raise DataError(
        f"{root}: no dataset found (expected images/ + masks/, stage1_train/<id>/images + masks/, "
        f"or the ISIC2018_Task1 folders)"
    )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _isic_dirs(root: Path) -> tuple[Path, Path]:
    for inp, truth in zip(ISIC_INPUT_DIRS, ISIC_TRUTH_DIRS, strict=True):
        if (root / inp).is_dir():
            if not (root / truth).is_dir():
                raise DataError(f"{root}: {inp}/ found but no {truth}/ beside it")
            return root / inp, root / truth
    return root / "images", root / "masks"


def _pair_by_stem(
    images: list[Path], mask_dir: Path, suffix: str
) -> tuple[list[Sample], list[Path]]:
    masks: dict[str, Path] = {}
    for p in mask_dir.iterdir():
        if p.is_file() and is_image_file(p):
            stem = p.stem[: -len(suffix)] if suffix and p.stem.endswith(suffix) else p.stem
            masks.setdefault(stem, p)
    samples, unmatched = [], []
    for img in images:
        m = masks.get(img.stem)
        if m is None:
            unmatched.append(img)
        else:
            samples.append(Sample(img, (m,)))
    return samples, unmatched


def _find_dsb(root: Path) -> tuple[list[Sample], list[Path]]:
    base = root / "stage1_train" if (root / "stage1_train").is_dir() else root
    samples, unmatched = [], []
    for d in _subdirs(base):
        imgs = _images_in(d / "images") if (d / "images").is_dir() else []
        if not imgs:
            continue
        masks = tuple(_images_in(d / "masks")) if (d / "masks").is_dir() else ()
        if masks:
            samples.append(Sample(imgs[0], masks))
        else:
            unmatched.append(imgs[0])
    return samples, unmatched


def _layout_images(img_dir: Path) -> list[Path]:
    """The images of an ISIC or plain images/ folder, without ISIC's superpixel files."""
    return [p for p in _images_in(img_dir) if not p.stem.endswith("_superpixels")]


def find_images(root: str | Path) -> tuple[str, list[Path]]:
    """Every image of a dataset folder, with a mask or not (for prediction): (format, sorted paths).

    The layout is detected as `find_samples` does; raises DataError when ``root`` is not a dataset
    folder.
    """
    root = Path(root)
    fmt = detect_format(root)
    if fmt == "dsb":
        samples, unmatched = _find_dsb(root)
        return fmt, sorted([s.image for s in samples] + unmatched)
    img_dir, _ = _isic_dirs(root)
    if not img_dir.is_dir():
        raise DataError(f"{root}: expected an {img_dir.name}/ folder")
    return fmt, _layout_images(img_dir)


def find_samples(
    root: str | Path, fmt: str = "auto", skip_unmatched: bool = False
) -> tuple[str, list[Sample]]:
    """Find all image/mask pairs under ``root``; returns (format, samples) sorted by image path.

    Images without a mask raise DataError listing them, unless ``skip_unmatched`` (then each is
    logged as a warning and left out). An empty result raises DataError.
    """
    root = Path(root)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt == "dsb":
        samples, unmatched = _find_dsb(root)
    else:
        img_dir, mask_dir = _isic_dirs(root)
        if not img_dir.is_dir() or not mask_dir.is_dir():
            raise DataError(f"{root}: expected {img_dir.name}/ and {mask_dir.name}/ folders")
        images = _layout_images(img_dir)
        suffix = "_segmentation" if fmt == "isic" else ""
        samples, unmatched = _pair_by_stem(images, mask_dir, suffix)
    if unmatched:
        names = ", ".join(p.name for p in unmatched[:10])
        more = f" and {len(unmatched) - 10} more" if len(unmatched) > 10 else ""
        if not skip_unmatched:
            raise DataError(
                f"{len(unmatched)} image(s) have no mask: {names}{more} (use --skip-unmatched)"
            )
        for p in unmatched:
            log.warning("skipping %s: no mask", p)
    if not samples:
        raise DataError(f"{root}: no image/mask pairs found ({fmt} layout)")
    return fmt, sorted(samples, key=lambda s: str(s.image))


def decode_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray, int]:
    """Decode one pair: (HxWx3 uint8 image, HxW bool mask, number of masks resized).

    A mask may be binary or a label image (any non-zero id is an object, `segcore.scoring.truth`); several
    masks (DSB nuclei) are merged by logical OR; a mask of another size than its image is resized
    with nearest-neighbour sampling and counted. Raises ImageError naming the file.
    """
    image = load_image(sample.image)
    size = image.shape[:2]
    merged = np.zeros(size, dtype=bool)
    resized = 0
    for path in sample.masks:
        m = read_truth(path) > 0
        if m.shape != size:
            m = resize_mask(m, size)
            resized += 1
        merged |= m
    return image, merged, resized


def load_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pair: (HxWx3 uint8 image, HxW bool mask at the image's size); see
    `decode_sample`."""
    image, mask, _ = decode_sample(sample)
    return image, mask


def load_labels(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pair keeping objects apart: (HxWx3 uint8 image, HxW int32 instance labels).

    Each mask file is one object (DSB: one nucleus per file), numbered 1..n in file order (where
    masks overlap the later one wins); a single mask file is read by `segcore.scoring.truth.read_truth`
    (a label image keeps its ids, a binary mask is split into its 4-connected components). Masks
    of another size are resized with nearest-neighbour sampling.
    """
    from segcore.inference.instances import labels_from_masks

    image = load_image(sample.image)
    size = image.shape[:2]
    if len(sample.masks) == 1:
        return image, resize_labels(read_truth(sample.masks[0]), size)
    masks = [resize_mask(read_truth(path) > 0, size) for path in sample.masks]
    return image, labels_from_masks(masks, size)


def readable(
    samples: list[Sample], instance: bool = False
) -> Iterator[tuple[Sample, np.ndarray, np.ndarray]]:
    """(sample, image, truth) for every sample that decodes; a warning names each that does not.

    The truth is an instance label image (`load_labels`) with ``instance``, else a bool mask.
    """
    for sample in samples:
        try:
            image, truth = load_labels(sample) if instance else load_sample(sample)
        except ImageError as exc:
            log.warning("skipping %s", exc)
            continue
        yield sample, image, truth


__all__ = [
    "DataError",
    "FORMATS",
    "ImageError",
    "Sample",
    "decode_sample",
    "detect_format",
    "find_samples",
    "load_labels",
    "load_sample",
]
