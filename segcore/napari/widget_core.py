"""What the napari widget does, without napari: layer data in, labels, table and name out.

A layer's data may be a numpy array, a lazy (dask, zarr) array or a multiscale list of them; RGB
or one channel, any integer or float type. The engine runs it as the card says: tiled models at
native scale tile by tile (`segcore.inference.tiling`), whole-image models resized. Instance models give
one id per nucleus and a row per nucleus; semantic models give the mask (id 1) and its
connected components measured. Pure numpy: tested without napari.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from segcore.app.model_choice import default_model, list_models
from segcore.errors import ImageError
from segcore.inference.engine import Engine
from segcore.inference.instances import OBJECT_COLUMNS, measure_objects
from segcore.paths import models_dir


@dataclass(frozen=True)
class LabelsResult:
    """A Labels layer to add: ids (0 = background), one table row per id, the layer's name."""

    labels: np.ndarray
    features: dict[str, list]
    name: str
    count: int


def model_choices(folder: Path | None = None) -> list[str]:
    """Names of the usable models in ``folder`` (default: the shipped models), best first."""
    entries, _ = list_models(folder or models_dir())
    if not entries:
        return []
    best = default_model(entries)
    return [entries[best].name] + [e.name for i, e in enumerate(entries) if i != best]


def model_path(name: str, folder: Path | None = None) -> Path:
    """The ONNX file of the model called ``name``; ValueError when there is none."""
    entries, _ = list_models(folder or models_dir())
    for entry in entries:
        if entry.name == name:
            return entry.path
    raise ValueError(f"{name}: no such model in {folder or models_dir()}")


@lru_cache(maxsize=4)
def engine_for(path: Path) -> Engine:
    """One engine per model file, kept for the next call."""
    return Engine(path)


def layer_pixels(
    data: object, rgb: bool, plane: int | None = None, project: str | None = None
) -> np.ndarray:
    """A 2-D image (HxW or HxWx3/4) from a layer's data: level 0 of a multiscale list, a lazy
    array read into memory. A stack (one axis before the image's: Z or T) is handled as the
    command line handles one, never cut silently: ``plane`` picks one (``--z``/``--t``),
    ``project="max"`` takes the maximum over it (``--project max``; only the projection is held,
    a lazy stack is reduced plane by plane); ImageError without either, or for other shapes."""
    if isinstance(data, (list, tuple)):
        data = data[0]  # multiscale: full resolution
    spatial = 3 if rgb else 2
    ndim = len(np.shape(data))
    if ndim == spatial and (not rgb or np.shape(data)[-1] in (3, 4)):
        return np.asarray(data)
    if ndim != spatial + 1 or (rgb and np.shape(data)[-1] not in (3, 4)):
        raise ImageError(
            f"<layer>: the widget segments one 2-D image (gray or RGB) or a stack of them, not "
            f"shape {np.shape(data)}"
        )
    count = np.shape(data)[0]
    if project == "max":
        projection = np.asarray(data[0])  # type: ignore[index]
        for k in range(1, count):
            projection = np.maximum(projection, np.asarray(data[k]))  # type: ignore[index]
        return projection
    if plane is None:
        raise ImageError(
            f"<layer>: {count} planes (Z or T); choose a plane or the max projection "
            "(never cut silently)"
        )
    if not 0 <= plane < count:
        raise ImageError(f"<layer>: plane {plane} is outside 0..{count - 1}")
    return np.asarray(data[plane])  # type: ignore[index]


def features_table(objects: list[dict]) -> dict[str, list]:
    """napari ``features``: an ``index`` column holding each row's label id, then the table."""
    table = {"index": [row["id"] for row in objects]}
    for column in OBJECT_COLUMNS:
        table[column] = [row[column] for row in objects]
    return table


def segment_pixels(engine: Engine, pixels: np.ndarray, *, tta: bool = False) -> LabelsResult:
    """Segment one image with ``engine``: one id per nucleus and a row each (instance models),
    or the mask as id 1 with one row measuring it and its component count (semantic models)."""
    pred = engine.predict(pixels, tta=tta)
    if pred.labels is not None:
        objects = pred.objects or []
        return LabelsResult(
            pred.labels, features_table(objects), f"{engine.name}: {pred.count} nuclei", pred.count
        )
    mask = pred.mask.astype(np.uint8)
    objects = measure_objects(mask, engine.load(pixels).source)  # raw values, as the CLI
    name = f"{engine.name}: mask, {pred.components} components"
    return LabelsResult(mask, features_table(objects), name, pred.components)
