"""Segment one uploaded image for the Segment page: prediction, scores and display-size pictures.

Uploads stay in memory as bytes; nothing is written to disk. The engine computes the mask at the
image's full size; only the pictures shown in the browser are downscaled (`DISPLAY_MAX_SIDE`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
from PIL import Image

from segcore.infer import Engine
from segcore.preprocess import (
    ImageError,
    load_mask,
    open_image,
    resize_image,
    resize_mask,
    to_rgb_array,
)
from segcore.scores import binary_scores
from segcore.visualize import TRUTH_COLOR, contour, overlay

DISPLAY_MAX_SIDE = 1024
ISIC_TRUTH_SUFFIX = "_segmentation"


@dataclass(frozen=True)
class Upload:
    """An image or mask file as the browser sent it: its name and its bytes."""

    name: str
    data: bytes

    def stream(self) -> io.BytesIO:
        """A file object over the bytes that carries the name (so errors name the file)."""
        buffer = io.BytesIO(self.data)
        buffer.name = self.name
        return buffer


@dataclass(frozen=True)
class Segmented:
    """One image's result: numbers at full size, pictures at display size, the mask as PNG."""

    name: str
    width: int
    height: int
    area_px: int
    area_pct: float
    components: int
    seconds: float
    image: np.ndarray  # display-size RGB
    mask: np.ndarray  # display-size bool
    mask_png: bytes  # full-size mask, 0/255
    truth: np.ndarray | None = None  # display-size bool
    dice: float | None = None
    iou: float | None = None
    note: str = ""


def truth_stem(file_name: str) -> str:
    """The image stem a mask file belongs to (``ISIC_1_segmentation.png`` -> ``ISIC_1``)."""
    return PurePath(file_name).stem.removesuffix(ISIC_TRUTH_SUFFIX)


def match_truths(images: list[str], masks: list[str]) -> dict[str, str]:
    """Map each image file name to the mask file name with the same stem (ISIC naming too)."""
    by_stem = {truth_stem(m): m for m in masks}
    return {im: by_stem[PurePath(im).stem] for im in images if PurePath(im).stem in by_stem}


def display_size(width: int, height: int, max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int]:
    """(height, width) no larger than ``max_side`` on either side, aspect ratio kept."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(height * scale)), max(1, round(width * scale))


def mask_png(mask: np.ndarray) -> bytes:
    """A bool mask as an 8-bit PNG (0 background, 255 foreground)."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8) * 255).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def display_pixels(upload: Upload, pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixels sharp enough to show at ``size``: the engine's decode, or a finer one when the
    engine decoded a big JPEG at reduced scale."""
    if pixels.shape[0] >= size[0] and pixels.shape[1] >= size[1]:
        return pixels
    return to_rgb_array(open_image(upload.stream(), draft_size=size[::-1]))


def comparison(image: np.ndarray, truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """The prediction tinted over the image with the truth outlined in green."""
    out = overlay(image, pred)
    width = max(1, round(min(truth.shape) / 256))
    out[contour(truth, width)] = TRUTH_COLOR
    return out


def segment_upload(
    engine: Engine,
    upload: Upload,
    *,
    threshold: float,
    tta: bool,
    truth: Upload | np.ndarray | None = None,
) -> Segmented:
    """Segment ``upload`` (raises ImageError naming it) and score it against ``truth`` if given.

    A truth mask that cannot be decoded is reported in ``note`` and the scores are left out; one
    of another size is resized (nearest neighbour) to the image's size.
    """
    loaded = engine.load(upload.stream())
    pred = engine.predict(loaded, threshold=threshold, tta=tta)
    size = display_size(pred.width, pred.height)
    shown = resize_image(display_pixels(upload, loaded.pixels, size), size)
    result = dict(
        name=upload.name,
        width=pred.width,
        height=pred.height,
        area_px=pred.area_px,
        area_pct=pred.area_pct,
        components=pred.components,
        seconds=pred.seconds,
        image=shown,
        mask=resize_mask(pred.mask, size),
        mask_png=mask_png(pred.mask),
    )
    if truth is None:
        return Segmented(**result)
    try:
        full = load_mask(truth.stream()) if isinstance(truth, Upload) else np.asarray(truth, bool)
    except ImageError as exc:
        return Segmented(**result, note=f"Ground truth ignored: {exc}")
    note = ""
    if full.shape != pred.mask.shape:
        note = (
            f"Ground truth resized from {full.shape[1]}x{full.shape[0]} "
            f"to {pred.width}x{pred.height}."
        )
        full = resize_mask(full, pred.mask.shape)
    scores = binary_scores(full, pred.mask)
    return Segmented(
        **result,
        truth=resize_mask(full, size),
        dice=scores["dice"],
        iou=scores["iou"],
        note=note,
    )


CSV_COLUMNS = (
    "file",
    "width",
    "height",
    "area_px",
    "area_pct",
    "components",
    "dice",
    "iou",
    "seconds",
    "model",
    "threshold",
    "tta",
)


def batch_csv(results: list[Segmented], model: str, threshold: float, tta: bool) -> str:
    """One CSV row per segmented image (scores empty where there was no truth)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow(
            {
                "file": r.name,
                "width": r.width,
                "height": r.height,
                "area_px": r.area_px,
                "area_pct": f"{r.area_pct:.3f}",
                "components": r.components,
                "dice": "" if r.dice is None else f"{r.dice:.4f}",
                "iou": "" if r.iou is None else f"{r.iou:.4f}",
                "seconds": f"{r.seconds:.3f}",
                "model": model,
                "threshold": f"{threshold:g}",
                "tta": tta,
            }
        )
    return buffer.getvalue()


def measurements(result: Segmented, dataset: str) -> list[tuple[str, str]]:
    """What to report for one image: lesion area for ISIC, nuclei count for DSB, both otherwise."""
    pct, px, n = f"{result.area_pct:.1f} %", f"{result.area_px:,}", f"{result.components:,}"
    if dataset == "isic":
        return [("Lesion area", pct), ("Lesion pixels", px)]
    if dataset == "dsb":
        return [("Nuclei", n), ("Nuclei area", pct)]
    return [("Objects", n), ("Area", pct)]
