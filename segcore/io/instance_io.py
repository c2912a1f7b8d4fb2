"""Files for nuclei as objects: 16-bit label PNGs, per-object CSV tables, GeoJSON outlines.

- labels: a 16-bit greyscale PNG of instance ids (0 = background), the form Fiji, CellProfiler
  and QuPath read as a label image; above 65,535 objects a 32-bit TIFF (`save_labels`);
- objects: one CSV row per object with `segcore.inference.instances.OBJECT_COLUMNS`;
- outlines: a GeoJSON FeatureCollection with one Polygon per object (outer boundary traced with
  scikit-image's marching squares, in pixel coordinates with x right, y down, the pixel (0, 0)
  covering [0, 1) x [0, 1)) in QuPath's import convention (`segcore.io.geojson`: detections with
  a class and the measurements, in µm too when the pixel size is known).

Every writer writes to a temporary name and renames, so a reader never sees half a file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage.measure import find_contours

from segcore.atomic import replacing, write_text
from segcore.inference.instances import OBJECT_COLUMNS
from segcore.io.geojson import detection, feature_collection

MAX_LABEL = 65535  # largest id a 16-bit PNG holds


def save_labels_png(path: Path, labels: np.ndarray) -> None:
    """Write an HxW label image as a 16-bit PNG; ValueError above MAX_LABEL objects."""
    labels = np.asarray(labels)
    top = int(labels.max(initial=0))
    if top > MAX_LABEL or int(labels.min(initial=0)) < 0:
        raise ValueError(f"{path}: label ids must be in 0..{MAX_LABEL} for a 16-bit PNG")
    image = Image.fromarray(labels.astype(np.uint16))
    with replacing(path) as tmp:
        image.save(tmp, format="PNG")


def save_labels_tiff(path: Path, labels: np.ndarray) -> None:
    """Write an HxW label image as a 32-bit integer TIFF (any number of objects)."""
    image = Image.fromarray(np.asarray(labels).astype(np.int32))
    with replacing(path) as tmp:
        image.save(tmp, format="TIFF", compression="tiff_adobe_deflate")


def save_labels(path_stem: Path, labels: np.ndarray) -> Path:
    """Write labels as ``<path_stem>.png`` (16-bit) when their ids fit, else as ``.tif``
    (32-bit); returns the path written."""
    if int(np.asarray(labels).max(initial=0)) <= MAX_LABEL:
        path = path_stem.with_name(path_stem.name + ".png")
        save_labels_png(path, labels)
    else:
        path = path_stem.with_name(path_stem.name + ".tif")
        save_labels_tiff(path, labels)
    return path


def load_labels_png(path: Path) -> np.ndarray:
    """Read a label PNG (8- or 16-bit) back into an HxW int32 array."""
    with Image.open(path) as img:
        return np.asarray(img).astype(np.int32)


def save_objects_csv(path: Path, objects: list[dict]) -> None:
    """Write the per-object table (one row per object, `OBJECT_COLUMNS`)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=OBJECT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(objects)
    write_text(path, text.getvalue())


def outline_ring(inside: np.ndarray, top: int, left: int) -> list[list[float]]:
    """Closed outer ring [[x, y], ...] of a bool crop whose pixel (0, 0) is (top, left)."""
    padded = np.pad(ndimage.binary_fill_holes(inside), 1).astype(np.float32)
    contour = max(find_contours(padded, 0.5), key=len)
    # contour points are (row, col) in the padded crop; pixel centres sit at +0.5
    ring = [[round(float(c) + left - 0.5, 2), round(float(r) + top - 0.5, 2)] for r, c in contour]
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    return ring


def outlines_geojson(
    labels: np.ndarray, objects: list[dict] | None = None, pixel_size_um: float | None = None
) -> dict:
    """A GeoJSON FeatureCollection with one QuPath detection per object id (ascending), whose
    measurements are ``objects``' row of that id (its area in pixels when not given)."""
    labels = np.asarray(labels, dtype=np.int32)
    rows = {int(row["id"]): row for row in objects or ()}
    features = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:  # an id absent from the image
            continue
        label = index + 1
        inside = labels[box] == label
        ring = outline_ring(inside, box[0].start, box[1].start)
        row = rows.get(label, {"id": label, "area_px": int(np.count_nonzero(inside))})
        features.append(detection(row, ring, pixel_size_um))
    return feature_collection(features)


def save_outlines_geojson(
    path: Path,
    labels: np.ndarray,
    objects: list[dict] | None = None,
    pixel_size_um: float | None = None,
) -> None:
    """Write `outlines_geojson` of a label image (and its objects' measurements)."""
    text = json.dumps(outlines_geojson(labels, objects, pixel_size_um), separators=(",", ":"))
    with replacing(path) as tmp:
        tmp.write_bytes(text.encode())
