"""Segment one uploaded image for the Segment page: prediction, scores and compact previews.

Uploads stay in memory as bytes; nothing is written to disk. The declared size of an upload is
checked against the app's pixel limit before anything is decoded. The engine computes the mask
at the image's full size; what is kept afterwards is small: the figures of the `Prediction`, the
full-size mask as PNG, and display-size previews (at most `DISPLAY_MAX_SIDE`) as PNG/JPEG bytes.
"""

from __future__ import annotations

import csv
import io
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError
from scipy import ndimage

from segcore.app.microscopy_upload import PlaneChoice, microscopy_image, plane_pixels, plane_raw
from segcore.app.pictures import decode, encode
from segcore.errors import ImageError
from segcore.inference.engine import Engine, LoadedImage, figure_cells
from segcore.inference.model_input import plain_view, raw_pixels
from segcore.inference.preprocess import (
    ACCEPTED_FORMATS,
    FORMATS_IN_WORDS,
    IMAGE_EXTENSIONS,
    open_image,
    over_limit,
    resize_image,
    resize_mask,
)
from segcore.io.geojson import add_microns
from segcore.io.instance_io import MAX_LABEL, outlines_geojson
from segcore.io.object_streams import object_columns
from segcore.io.results import table_text
from segcore.scoring.scores import binary_scores
from segcore.scoring.truth import annotated_count, match_by_stem, read_truth, resize_labels
from segcore.scoring.truth import truth_stem as _truth_stem

DISPLAY_MAX_SIDE = 1024
#: Largest image the app segments (the engine's own limit is higher; a 25-megapixel image needs
#: about 0.5 GB while it is segmented).
APP_MAX_PIXELS = 25_000_000
#: Uploads segmented in one go; more are listed as left out.
MAX_BATCH = 20


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
    """One image's result, kept small: the prediction's figures, the full-size mask as PNG, and
    display-size previews as PNG/JPEG bytes (decode them with the methods)."""

    name: str
    model: str
    figures: dict[str, float | int]
    mask_png: bytes  # full-size mask, 0/255
    image_jpeg: bytes  # display-size RGB
    mask_preview: bytes  # display-size mask PNG, 0/255
    probability_preview: bytes  # display-size probability PNG, 0-255
    truth_preview: bytes | None = None
    truth_name: str | None = None
    labels_preview: bytes | None = None  # display-size instance ids, 16-bit PNG
    objects: tuple[dict, ...] | None = None
    labels_png: bytes | None = None  # full-size instance ids, 16-bit PNG (None above 65535 ids)
    outlines_zlib: bytes | None = None  # QuPath detections and measurements, GeoJSON, zlib
    dice: float | None = None
    iou: float | None = None
    threshold: float | None = None  # the probability threshold used
    annotated: int | None = None  # objects in the truth
    dsb_score: float | None = None  # instance models with a truth: DSB 2018 score
    f1_iou50: float | None = None  # ... and F1 of objects matched at IoU > 0.5
    note: str = ""
    source: str = ""  # what was read from a microscopy file (channel, plane, intensity rule)
    pixel_size_um: float | None = None  # from the file's metadata; adds µm columns to objects

    @property
    def width(self) -> int:
        """Full image width in pixels."""
        return int(self.figures["width"])

    @property
    def height(self) -> int:
        """Full image height in pixels."""
        return int(self.figures["height"])

    @property
    def count(self) -> int:
        """Objects found: the instance count for instance models, else connected components."""
        return int(self.figures.get("count", self.figures.get("components", 0)))

    @property
    def outlines_geojson(self) -> bytes | None:
        """The GeoJSON download (kept compressed: it is most of a cached instance result)."""
        return None if self.outlines_zlib is None else zlib.decompress(self.outlines_zlib)

    @property
    def is_instances(self) -> bool:
        """True when the model returned one label per object."""
        return self.labels_preview is not None

    def image(self) -> np.ndarray:
        """The display-size RGB image."""
        return decode(self.image_jpeg)

    def mask(self) -> np.ndarray:
        """The display-size predicted mask (bool)."""
        return decode(self.mask_preview) > 127

    def truth(self) -> np.ndarray | None:
        """The display-size truth mask (bool), if a truth was given and readable."""
        return None if self.truth_preview is None else decode(self.truth_preview) > 127

    def probability(self) -> np.ndarray:
        """The display-size probability map as uint8 (0-255)."""
        return decode(self.probability_preview)

    def labels(self) -> np.ndarray | None:
        """The display-size instance ids (0 = background), for instance models."""
        return None if self.labels_preview is None else decode(self.labels_preview).astype(np.int32)


def truth_stem(file_name: str) -> str:
    """The image stem a mask file belongs to (``ISIC_1_segmentation.png`` -> ``ISIC_1``)."""
    return _truth_stem(file_name)


def match_truths(images: list[str], masks: list[str]) -> dict[str, str]:
    """Map each image file name to the mask file name with the same stem (`segcore.scoring.truth`)."""
    return match_by_stem(images, masks)


def display_size(width: int, height: int, max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int]:
    """(height, width) no larger than ``max_side`` on either side, aspect ratio kept."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(height * scale)), max(1, round(width * scale))


def check_upload(upload: Upload, max_pixels: int = APP_MAX_PIXELS) -> tuple[int, int]:
    """The (width, height) an upload declares, read from its header without decoding it.

    Raises ImageError in plain words when it is not an image in an accepted format or is larger
    than ``max_pixels``.
    """
    ext = PurePath(upload.name).suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ImageError(
            f"{upload.name}: not an image file the app accepts (use {FORMATS_IN_WORDS})."
        )
    try:
        microscopy = microscopy_image(upload.name, upload.data)
        if microscopy is not None:
            width, height = microscopy.width, microscopy.height
        else:
            with Image.open(upload.stream(), formats=ACCEPTED_FORMATS) as img:
                width, height = img.size
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{upload.name}: {over_limit(exc, max_pixels)}. Scale it down or crop it."
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, ImageError):
        raise ImageError(
            f"{upload.name}: this file is not a readable image. The app accepts "
            f"{FORMATS_IN_WORDS} files; it may be damaged or in another format."
        ) from None
    if width * height > max_pixels:
        raise ImageError(
            f"{upload.name}: {width}x{height} pixels ({width * height / 1e6:.0f} megapixels) is "
            f"above the app's limit of {max_pixels / 1e6:.0f} megapixels. Scale it down or crop "
            "it, or segment it block by block from the command line (a TIFF, OME-TIFF or OME-Zarr "
            "of any size, with --channel, --z or --project max for channels and stacks): "
            f'python -m segcore.predict --model models/NAME.onnx "{upload.name}" --out results/'
        )
    return width, height


def thumbnail(upload: Upload, side: int = 256, choice: PlaneChoice | None = None) -> np.ndarray:
    """A small RGB version of an upload (JPEGs decode at reduced scale), for the model check; a
    microscopy TIFF's chosen plane, only every n-th pixel of it (at least twice ``side`` on its
    longer side); intensities mapped as before any model is chosen (`plain_view`: a 16-bit PNG
    by its bit depth, not by the 16-bit range)."""
    microscopy = microscopy_image(upload.name, upload.data)
    if microscopy is not None:
        step = max(1, max(microscopy.width, microscopy.height) // (2 * side))
        pixels, _ = plane_pixels(microscopy, choice or PlaneChoice(), APP_MAX_PIXELS, step=step)
        img = Image.fromarray(pixels)
    else:
        img = open_image(upload.stream(), draft_size=(side, side))
    img.thumbnail((side, side))
    return plain_view(raw_pixels(img))


def load_upload(
    engine: Engine,
    upload: Upload,
    choice: PlaneChoice | None = None,
    progress: Callable[[float], None] | None = None,
) -> tuple[LoadedImage, list[str], float | None]:
    """Decode an upload for ``engine``: a microscopy TIFF's chosen plane (with lines saying what
    was read and how it was mapped, and its pixel size; ``progress`` is called between its
    strips, `segcore.app.microscopy_upload.plane_raw`), anything else as Pillow reads it; the engine
    maps both by the card's input contract, as the command line does."""
    microscopy = microscopy_image(upload.name, upload.data)
    if microscopy is None:
        return engine.load(upload.stream()), [], None
    raw, notes = plane_raw(microscopy, choice or PlaneChoice(), APP_MAX_PIXELS, progress=progress)
    loaded = engine.load(raw)
    rule = loaded.mapping.rule if loaded.mapping is not None else "divide_by_255"
    if rule != "divide_by_255":
        notes.append(f"{raw.dtype} intensities mapped by the card's {rule} rule")
    return loaded, notes, microscopy.pixel_size_um


def display_pixels(
    engine: Engine, upload: Upload, loaded: LoadedImage, size: tuple[int, int]
) -> np.ndarray:
    """Pixels sharp enough to show at ``size``: the engine's view of the image, or a finer
    decode (mapped alike) when the engine decoded a big JPEG at reduced scale."""
    pixels = loaded.pixels
    if pixels.shape[0] >= size[0] and pixels.shape[1] >= size[1]:
        return pixels
    raw = raw_pixels(open_image(upload.stream(), draft_size=size[::-1]))
    return engine.contract.view(raw, loaded.mapping or engine.contract.fit_image(raw))


def mask_png(mask: np.ndarray) -> bytes:
    """A bool mask as an 8-bit PNG (0 background, 255 foreground)."""
    return encode(np.asarray(mask, np.uint8) * 255)


def _probability_u8(probability: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A probability map (float32 or float16) at ``size`` as uint8 0-255: sampled down to about
    twice ``size`` first (a view, no full-size copy), then converted and resized."""
    step = max(1, int(min(probability.shape[0] / size[0], probability.shape[1] / size[1]) // 2))
    sampled = np.asarray(probability)[::step, ::step]
    small = (sampled.astype(np.float32) * 255 + 0.5).clip(0, 255).astype(np.uint8)
    if small.shape == size:
        return small
    return np.asarray(Image.fromarray(small).resize(size[::-1], Image.Resampling.BILINEAR))


def segment_upload(
    engine: Engine,
    upload: Upload,
    *,
    threshold: float,
    tta: bool,
    truth: Upload | np.ndarray | None = None,
    truth_name: str | None = None,
    choice: PlaneChoice | None = None,
    progress: Callable[[float], None] | None = None,
) -> Segmented:
    """Segment ``upload`` (raises ImageError naming it) and score it against ``truth`` if given.

    ``choice`` picks a microscopy TIFF's channel and plane (`segcore.app.microscopy_upload`);
    ``progress(fraction)`` is called while a microscopy file is decoded (the page's
    cancellation point, see `segcore.app.microscopy_upload`). A truth
    mask that cannot be decoded is reported in ``note`` and the scores are left out; one of
    another size is resized (nearest neighbour) to the image's size.
    """
    loaded, source, pixel_size = load_upload(engine, upload, choice, progress)
    pred = engine.predict(loaded, threshold=threshold, tta=tta)
    size = display_size(pred.width, pred.height)
    shown = resize_image(display_pixels(engine, upload, loaded, size), size)
    labels = getattr(pred, "labels", None)
    objects = getattr(pred, "objects", None)
    if objects is not None and pixel_size:
        objects = [add_microns(dict(o), pixel_size) for o in objects]
    result: dict[str, Any] = dict(
        name=upload.name,
        model=engine.name,
        figures=pred.figures(),
        mask_png=mask_png(pred.mask),
        image_jpeg=encode(shown, "JPEG"),
        mask_preview=mask_png(resize_mask(pred.mask, size)),
        probability_preview=encode(_probability_u8(pred.probability, size)),
        labels_preview=None
        if labels is None
        else encode(resize_labels(labels, size).clip(0, 65535).astype(np.uint16)),
        objects=None if objects is None else tuple(dict(o) for o in objects),
        **({} if labels is None else instance_files(labels, objects or [])),
        truth_name=truth_name,
        threshold=engine.threshold if threshold is None else float(threshold),
        source="; ".join(source),
        pixel_size_um=pixel_size,
    )
    if truth is None:
        return Segmented(**result)
    try:
        full = _truth_labels(truth)
    except ImageError as exc:
        return Segmented(**result, note=f"Ground truth ignored: {exc}")
    note = ""
    if full.shape != pred.mask.shape:
        note = (
            f"Ground truth resized from {full.shape[1]}x{full.shape[0]} "
            f"to {pred.width}x{pred.height}."
        )
        full = resize_labels(full, pred.mask.shape)
    scores = binary_scores(full > 0, pred.mask)
    if labels is not None:
        from segcore.scoring.matching import instance_scores

        objects = instance_scores(full, labels)
        result |= {"dsb_score": objects["dsb_score"], "f1_iou50": objects["f1_iou50"]}
    return Segmented(
        **result,
        truth_preview=mask_png(resize_mask(full > 0, size)),
        dice=scores["dice"],
        iou=scores["iou"],
        annotated=annotated_count(full),
        note=note,
    )


def _truth_labels(truth: Upload | np.ndarray) -> np.ndarray:
    """A truth upload (any form `segcore.scoring.truth` reads, held to the app's pixel limit) or array
    (bool mask: its components; integers: ids) as int32 labels."""
    if isinstance(truth, Upload):
        return read_truth(truth.stream(), max_pixels=APP_MAX_PIXELS)
    array = np.asarray(truth)
    if array.dtype == bool:
        return ndimage.label(array)[0].astype(np.int32)
    return array.astype(np.int32)


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def batch_csv(results: list[Segmented], threshold: float | None, tta: bool) -> str:
    """One row per segmented image in the CLI's ``predictions.csv`` shape
    (`segcore.io.results`; scores empty where there was no truth; no folder or output files for
    uploads). ``threshold`` and ``tta`` are the settings the page used."""
    rows = []
    for r in results:
        f = r.figures
        rows.append(
            {
                "file": r.name,
                "model": r.model,
                "threshold": "" if r.threshold is None else f"{r.threshold:g}",
                "tta": tta,
                **figure_cells(f),
                "annotated": "" if r.annotated is None else r.annotated,
                "dice": _score(r.dice),
                "iou": _score(r.iou),
                "dsb_score": _score(r.dsb_score),
                "f1_iou50": _score(r.f1_iou50),
                "truth": r.truth_name or "",
            }
        )
    return table_text(rows)


def instance_files(labels: np.ndarray, objects: list[dict]) -> dict[str, bytes | None]:
    """The downloads of an instance result: the full-size labels PNG (16-bit ids; None when
    there are more than a 16-bit PNG holds) and the QuPath GeoJSON of the objects, compressed
    (a 4-megapixel image's 1,459 nuclei: 2.0 MB of GeoJSON, the rest of the result 0.7 MB)."""
    text = json.dumps(outlines_geojson(labels, objects), separators=(",", ":"))
    small = int(labels.max(initial=0)) <= MAX_LABEL
    return {
        "labels_png": encode(labels.astype(np.uint16)) if small else None,
        "outlines_zlib": zlib.compress(text.encode(), 6),
    }


def objects_csv(result: Segmented) -> str:
    """The per-object table of an instance result as CSV (one row per object)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer,
        fieldnames=object_columns(result.pixel_size_um),
        lineterminator="\n",
        extrasaction="ignore",
    )
    writer.writeheader()
    writer.writerows(result.objects or ())
    return buffer.getvalue()


def measurements(result: Segmented, dataset: str) -> list[tuple[str, str]]:
    """What to report for one image: lesion area for ISIC, nuclei count for DSB, both otherwise."""
    pct = f"{result.figures.get('area_pct', 0.0):.1f} %"
    px, n = f"{int(result.figures.get('area_px', 0)):,}", f"{result.count:,}"
    if dataset == "isic":
        return [("Lesion area", pct), ("Lesion pixels", px)]
    annotated = [] if result.annotated is None else [("Annotated", f"{result.annotated:,}")]
    if dataset == "dsb":
        return [("Nuclei", n), *annotated, ("Nuclei area", pct)]
    return [("Objects", n), *annotated, ("Area", pct)]
