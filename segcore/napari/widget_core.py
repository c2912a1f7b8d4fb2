"""What the napari widget does, without napari: layer data in, labels, table and name out.

A layer's data may be a numpy array, a lazy (dask, zarr) array or a multiscale list of them; RGB
or one channel, any integer or float type, a Z/T stack by one plane or its maximum projection
(`layer_source`). `segment_steps` segments it as a generator that yields ``(done, total)`` as it
goes (the widget's progress bar) and returns the `LabelsResult`: a layer within the engine's
in-memory cap (``Engine.max_pixels``) is read whole and run as the card says (tiled models at
native scale tile by tile, whole-image models resized); a larger one, with an instance model,
goes block by block through segcore's block-wise path (`segcore.large.blockplan`, the intensity mapping
fitted once on an image-wide sample as `segcore.large.largeimage` does), read window by window from
the lazy array and written into an OME-Zarr pyramid on disk, never held whole. Instance models
give one id per nucleus and a row per nucleus; semantic models give the mask (id 1) and its
connected components measured. Pure numpy: tested without napari.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from segcore.app.model_choice import default_model, list_models
from segcore.errors import ImageError
from segcore.inference.engine import Engine
from segcore.inference.instances import OBJECT_COLUMNS, measure_objects
from segcore.io.labels_zarr import create_labels, finish_pyramid
from segcore.large.blockplan import Block, BlockAssembler, plan_blocks, segment_block
from segcore.large.largeimage import block_geometry, image_mapping
from segcore.paths import models_dir

#: What `segment_steps` yields as it goes: (steps done, steps in all).
Progress = tuple[int, int]


@dataclass(frozen=True)
class LabelsResult:
    """A Labels layer to add: ids (0 = background; an array, or a multiscale list of lazy zarr
    levels for a block-wise result), one table row per id, the layer's name."""

    labels: np.ndarray | list
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


#: An index into a layer's array: planes, rows and columns.
Index = int | slice | tuple[int | slice, ...]


class LayerArray(Protocol):
    """A layer's array: numpy's, or a lazy one (dask, zarr) that indexing reads."""

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        ...

    @property
    def dtype(self) -> np.dtype:
        """The pixels' type."""
        ...

    def __getitem__(self, key: Index) -> npt.ArrayLike:
        """The pixels at ``key`` (read now for a lazy array)."""
        ...


#: A layer's data: its array, or a multiscale list of them (full resolution first).
LayerData = LayerArray | list[LayerArray] | tuple[LayerArray, ...]


@dataclass(frozen=True)
class LayerSource:
    """One 2-D image of a layer's data (a plane of a stack, or its maximum projection), read
    window by window so a lazy array is never read whole unless asked (`whole`)."""

    data: LayerArray  # the full-resolution array: numpy, dask or zarr
    rgb: bool
    plane: int | None = None  # the stack plane, None for a 2-D layer or a projection
    stacked: bool = False  # the data has a Z or T axis first (``plane`` or a projection)

    @property
    def height(self) -> int:
        """Image rows."""
        return int(np.shape(self.data)[1 if self.stacked else 0])

    @property
    def width(self) -> int:
        """Image columns."""
        return int(np.shape(self.data)[2 if self.stacked else 1])

    @property
    def dtype(self) -> np.dtype:
        """The pixels' type."""
        return np.dtype(self.data.dtype)

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The window's pixels as HxWxC (C = 1 for a one-channel layer)."""
        window = self.whole_window(slice(y0, y1), slice(x0, x1))
        return window if self.rgb else window[..., None]

    def whole(self) -> np.ndarray:
        """The whole image in memory: HxW (one channel) or HxWx3/4."""
        return self.whole_window(slice(None), slice(None))

    def whole_window(self, rows: slice, cols: slice) -> np.ndarray:
        """HxW or HxWxC pixels of a window: the plane's, or the maximum over the stack (only
        the projection is held, a lazy stack is reduced plane by plane)."""
        data = self.data
        if not self.stacked:
            return np.asarray(data[rows, cols])
        if self.plane is not None:
            return np.asarray(data[self.plane, rows, cols])
        projection = np.asarray(data[0, rows, cols])
        for k in range(1, int(np.shape(data)[0])):
            projection = np.maximum(projection, np.asarray(data[k, rows, cols]))
        return projection


def layer_source(
    data: LayerData, rgb: bool, plane: int | None = None, project: str | None = None
) -> LayerSource:
    """The 2-D image a layer's data holds: level 0 of a multiscale list, lazy arrays kept lazy.
    A stack (one axis before the image's: Z or T) is handled as the command line handles one,
    never cut silently: ``plane`` picks one (``--z``/``--t``), ``project="max"`` takes the
    maximum over it (``--project max``); ImageError without either, or for other shapes."""
    if isinstance(data, (list, tuple)):
        data = data[0]  # multiscale: full resolution
    spatial = 3 if rgb else 2
    shape = np.shape(data)
    if len(shape) == spatial and (not rgb or shape[-1] in (3, 4)):
        return LayerSource(data, rgb)
    if len(shape) != spatial + 1 or (rgb and shape[-1] not in (3, 4)):
        raise ImageError(
            f"<layer>: the widget segments one 2-D image (gray or RGB) or a stack of them, not "
            f"shape {shape}"
        )
    if project == "max":
        return LayerSource(data, rgb, stacked=True)
    count = shape[0]
    if plane is None:
        raise ImageError(
            f"<layer>: {count} planes (Z or T); choose a plane or the max projection "
            "(never cut silently)"
        )
    if not 0 <= plane < count:
        raise ImageError(f"<layer>: plane {plane} is outside 0..{count - 1}")
    return LayerSource(data, rgb, plane, stacked=True)


def layer_pixels(
    data: LayerData, rgb: bool, plane: int | None = None, project: str | None = None
) -> np.ndarray:
    """A 2-D image (HxW or HxWx3/4) from a layer's data, in memory (`layer_source`)."""
    return layer_source(data, rgb, plane, project).whole()


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


def _cap(engine: Engine, max_pixels: int | None) -> int:
    """The largest layer (pixels) held whole: ``max_pixels``, default the engine's cap."""
    return engine.max_pixels if max_pixels is None else max_pixels


def _blocks(engine: Engine, source: LayerSource) -> list[Block]:
    """The block plan of ``source`` for the engine's tiles (`segcore.large.largeimage`'s geometry)."""
    if engine.card.tile is None:
        raise ImageError(f"<layer>: {engine.name} has no tiles to segment a layer block by block")
    block_size, margin = block_geometry(engine.card.tile, 1.0, None)
    return plan_blocks(source.height, source.width, block_size, margin)


def step_count(engine: Engine, source: LayerSource, max_pixels: int | None = None) -> int:
    """How many ``(done, total)`` steps `segment_steps` yields: 1 in memory, else the blocks."""
    if source.height * source.width <= _cap(engine, max_pixels) or engine.instances is None:
        return 1
    return len(_blocks(engine, source))


def segment_steps(
    engine: Engine, source: LayerSource, *, tta: bool = False, max_pixels: int | None = None
) -> Generator[Progress, None, LabelsResult]:
    """Segment ``source`` with ``engine``, yielding ``(done, total)`` after each finished step
    (`step_count` of them), returning the `LabelsResult`: in memory up to ``max_pixels``
    (default: the engine's cap), block by block above it (instance models; ImageError for a
    whole-image model, which would read it whole)."""
    cap = _cap(engine, max_pixels)
    if source.height * source.width <= cap:
        result = segment_pixels(engine, source.whole(), tta=tta)
        yield 1, 1
        return result
    if engine.instances is None:
        raise ImageError(
            f"<layer>: {source.width}x{source.height} is above the {cap:,}-pixel limit of an "
            f"image held whole; {engine.name} resizes whole images, so choose a nuclei model "
            "(block by block) or a smaller layer"
        )
    return (yield from _blockwise(engine, source, tta))


def _blockwise(
    engine: Engine, source: LayerSource, tta: bool
) -> Generator[Progress, None, LabelsResult]:
    """`segment_steps` block by block into a labels OME-Zarr pyramid in a temporary folder
    (removed when Python exits), the layer being its levels: one step per block."""
    mapping = image_mapping(engine, source)  # one mapping, fitted on an image-wide sample
    blocks = _blocks(engine, source)
    folder = Path(tempfile.mkdtemp(prefix="segcore-napari-"))
    atexit.register(shutil.rmtree, folder, True)
    path = folder / "labels.ome.zarr"
    rows: list[dict] = []
    assembler = BlockAssembler(
        create_labels(path, source.height, source.width), lambda r, *_: rows.extend(r)
    )
    for done, block in enumerate(blocks, 1):
        assembler.add(segment_block(engine, source.read, mapping, block, tta))
        yield done, len(blocks)
    levels = finish_pyramid(path)
    import zarr

    group = zarr.open_group(str(path), mode="r")
    labels = [group[str(k)] for k in range(levels)]
    name = f"{engine.name}: {assembler.count} nuclei"
    return LabelsResult(labels, features_table(rows), name, assembler.count)


def run_steps(steps: Generator[Progress, None, LabelsResult]) -> LabelsResult:
    """Run `segment_steps` to the end (no progress shown) and return its result."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value
