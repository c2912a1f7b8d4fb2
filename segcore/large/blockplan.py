"""Block-wise instance segmentation of an image of any size, in memory bounded by the block size.

The image is cut into a grid of ``block_size`` blocks (`plan_blocks`). Each block is read with a
context margin on every side (clipped at the image's edges), mapped to model input by the image's
one `ImageMapping` through the engine's input contract (`segcore.inference.model_input`: channels,
bright-field inversion), predicted by overlapping tiles and decoded into nuclei (`segment_block`).
Of the nuclei found in that extended region, a block *owns* those whose first pixel (in raster
order) lies inside the block itself, as StarDist's ``predict_instances_big`` owns objects by
block: a nucleus on a seam is found whole in both neighbours' context and owned by exactly one of
them, as long as the margin is wider than the largest nucleus. A block's result is small: the
crop of its owned nuclei (local ids 1..k, in raster order of their first pixel) and their
measurements in image coordinates.

`BlockAssembler` commits results in block order: ids become unique over the image (the running
count is added), a nucleus whose pixels are mostly taken by an earlier block's nucleus (the
same nucleus decoded twice where two contexts disagreed) is dropped, and the rest is written to
the labels array. Committing in a fixed order makes the result independent of which block, or
which worker, finished first.

The assumption is checked aloud, as StarDist's ``big.py`` does: a block counts its owned nuclei
that touch its context region's edge away from the image's edge (*cut*: wider than the margin,
so truncated), the assembler counts the doubles it drops, and `seam_refusal` names the run whose
seams went wrong in more than `MAX_SEAM_FRACTION` of its nuclei.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy import ndimage

from segcore.card import ModelCard, TileSpec
from segcore.inference.instances import DecodeSettings, decode, measure_objects
from segcore.inference.intensity import Reader
from segcore.inference.model_input import ImageMapping, InputContract
from segcore.inference.tiling import predict_tiled

#: Tiles per block side by default (`default_block_size`): 4 tiles of 1024 make 3456-pixel blocks
#: for the nuclei model, ~0.9 GB at peak (bench/bigimage.py measures memory and speed).
TILES_PER_BLOCK = 4
#: Context on each side of a block, in pixels: wider than the largest DSB nucleus (~90 px).
DEFAULT_MARGIN = 128
#: A nucleus keeping less than this fraction of its pixels after earlier blocks wrote theirs is a
#: double of one of them and is dropped.
MIN_KEPT_FRACTION = 0.5
#: Above this fraction of nuclei cut by a context edge or dropped as doubles (and above one), the
#: margin is too narrow for the nuclei and a block-wise run refuses (`seam_refusal`).
MAX_SEAM_FRACTION = 0.01


class BlockEngine(Protocol):
    """What block-wise work needs of an engine (`segcore.inference.engine.Engine` is one)."""

    card: ModelCard
    contract: InputContract
    channels: int
    instances: DecodeSettings | None

    def channel_maps(self, batch: np.ndarray, tta: bool = False) -> np.ndarray:
        """NxHxWxK output channels of an NxHxWxC model-input batch."""
        ...

    def decoding_for(self, pixels: np.ndarray) -> DecodeSettings | None:
        """The decoding settings for an image of these (HxWx3 uint8) pixels' kind."""
        ...


class LabelsArray(Protocol):
    """An HxW labels array that slices read and write: numpy's, or a zarr array."""

    def __getitem__(self, key: Any) -> Any: ...

    def __setitem__(self, key: Any, value: Any) -> None: ...


#: ``on_objects(rows, labels_crop, top, left)``: a committed block's kept nuclei
ObjectsSink = Callable[[list[dict], np.ndarray, int, int], None]


@dataclass(frozen=True)
class Block:
    """One block: its index, its own pixels [y0:y1, x0:x1] and its context region [c*]."""

    index: int
    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int
    image_height: int = 0
    image_width: int = 0


def default_block_size(tile: TileSpec, margin: int = DEFAULT_MARGIN) -> int:
    """The block side whose context region (block + 2 margins) is covered by exactly
    `TILES_PER_BLOCK` of the card's overlapping ``tile`` per axis, so no model work is wasted
    on a last tile pushed back over its neighbour."""
    step = max(1, int(tile.size * (1.0 - tile.overlap)))
    return max(tile.size, step * (TILES_PER_BLOCK - 1) + tile.size - 2 * margin)


def plan_blocks(height: int, width: int, block_size: int, margin: int) -> list[Block]:
    """Blocks of ``block_size`` covering the image in row-major order, each with ``margin``."""
    if block_size < 1 or margin < 0:
        raise ValueError(f"block size {block_size} and margin {margin} must be positive")
    blocks: list[Block] = []
    for y0 in range(0, height, block_size):
        for x0 in range(0, width, block_size):
            y1, x1 = min(y0 + block_size, height), min(x0 + block_size, width)
            blocks.append(
                Block(
                    len(blocks),
                    y0,
                    y1,
                    x0,
                    x1,
                    max(0, y0 - margin),
                    min(height, y1 + margin),
                    max(0, x0 - margin),
                    min(width, x1 + margin),
                    image_height=height,
                    image_width=width,
                )
            )
    return blocks


def block_count(height: int, width: int, block_size: int) -> int:
    """How many blocks `plan_blocks` makes."""
    return math.ceil(height / block_size) * math.ceil(width / block_size)


@dataclass
class BlockResult:
    """A block's owned nuclei: ``labels`` (local ids 1..k) placed at ``top``/``left`` in the
    image, and one measurement row per id (image coordinates, ``id`` = local id)."""

    index: int
    top: int
    left: int
    labels: np.ndarray
    objects: list[dict] = field(default_factory=list)
    cut: int = 0

    @property
    def count(self) -> int:
        """Number of owned nuclei."""
        return len(self.objects)


def owned_labels(labels: np.ndarray, block: Block) -> tuple[np.ndarray, int, int]:
    """The nuclei of a context region owned by ``block``: (labels crop with ids 1..k in raster
    order of their first pixel, crop top, crop left) in context-region coordinates."""
    anchors: list[tuple[int, int, int]] = []
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        label = index + 1
        first_row = labels[box[0].start, box[1]] == label
        y = box[0].start + block.cy0
        x = box[1].start + int(np.argmax(first_row)) + block.cx0
        if block.y0 <= y < block.y1 and block.x0 <= x < block.x1:
            anchors.append((y, x, label))
    anchors.sort()
    lookup = np.zeros(int(labels.max()) + 1, dtype=np.int32)
    for new, (_, _, label) in enumerate(anchors, start=1):
        lookup[label] = new
    owned = lookup[labels]
    if not anchors:
        return owned[:0, :0], 0, 0
    rows = np.flatnonzero(owned.any(axis=1))
    cols = np.flatnonzero(owned.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    return owned[top : rows[-1] + 1, left : cols[-1] + 1], top, left


def cut_count(owned: np.ndarray, top: int, left: int, block: Block) -> int:
    """How many owned nuclei (``owned`` at ``top``/``left`` of the context region) touch a side
    of the context region that is not the image's edge: they were wider than the margin."""
    height, width = block.cy1 - block.cy0, block.cx1 - block.cx0
    rows, cols = owned.shape
    edges = []
    if top == 0 and block.cy0 > 0:
        edges.append(owned[0, :])
    if top + rows == height and block.cy1 < block.image_height:
        edges.append(owned[-1, :])
    if left == 0 and block.cx0 > 0:
        edges.append(owned[:, 0])
    if left + cols == width and block.cx1 < block.image_width:
        edges.append(owned[:, -1])
    if not edges:
        return 0
    return int(np.count_nonzero(np.unique(np.concatenate(edges))))


def seam_refusal(cut: int, dropped: int, nuclei: int, margin: int) -> str | None:
    """Why a block-wise result cannot be trusted (None when it can): more than one nucleus, and
    more than `MAX_SEAM_FRACTION` of the ``nuclei``, cut by a context edge or dropped as doubles."""
    seams = cut + dropped
    if seams <= max(1, MAX_SEAM_FRACTION * nuclei):
        return None
    return (
        f"{cut} of {nuclei} nuclei were cut by a block's context edge and {dropped} dropped as "
        f"doubles: nuclei are wider than the {margin}-pixel margin; give --object-diameter (their "
        "typical width) so the image is scaled for the model"
    )


def predict_channels(engine: BlockEngine, x: np.ndarray, tta: bool = False) -> np.ndarray:
    """HxWxK output channels of HxWxC model input (C = the card's channels) by the engine's
    tiles (`segcore.inference.engine.Engine`: ``card``, ``channel_maps``), one tile per run call."""
    tile = engine.card.tile
    if tile is None:
        raise ValueError(f"{engine.card.name}: block-wise work needs a tiled model")
    return predict_tiled(
        x,
        lambda batch: engine.channel_maps(batch, tta),
        tile.size,
        tile.overlap,
        multiple=engine.card.stride,
        batch_size=1,
    )


def fill_empty(pixels: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """``pixels`` with every no-data pixel (0 in all channels) given its nearest data pixel's
    value. Stitched mosaics and slides fill the area between their tiles with 0; the nuclei model
    sees such a black band as content (on a DSB image framed by 32 black pixels its DSB score fell
    from 0.91 to 0.47; with this fill it was 0.81), while camera background is never exactly 0."""
    if not empty.any():
        return pixels
    rows, cols = ndimage.distance_transform_edt(empty, return_distances=False, return_indices=True)
    return pixels[rows, cols]


def resized(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """An HxWxC float32 array resized to ``shape`` (bilinear, anti-aliased when shrinking)."""
    from skimage.transform import resize

    out_shape = (max(1, shape[0]), max(1, shape[1]), array.shape[-1])
    shrink = out_shape[0] < array.shape[0]
    return resize(array, out_shape, order=1, anti_aliasing=shrink, preserve_range=True).astype(
        np.float32
    )


def block_decoding(
    engine: BlockEngine, pixels: np.ndarray, mapping: ImageMapping
) -> DecodeSettings | None:
    """The engine's decoding settings for a block of raw ``pixels``: by the block's kind of
    image when the card has per-kind settings (judged on the mapped view of a sample of it)."""
    if not engine.card.instances_by_kind:
        return engine.instances
    step = max(1, max(pixels.shape[:2]) // 1024)
    view = engine.contract.view(pixels[::step, ::step], mapping)
    return engine.decoding_for(view)


def segment_block(
    engine: BlockEngine,
    read: Reader,
    mapping: ImageMapping,
    block: Block,
    tta: bool = False,
    scale: float = 1.0,
) -> BlockResult:
    """Predict, decode and measure one block; ``read(y0, y1, x0, x1)`` gives HxWxC pixels.

    ``scale`` resizes the model input (nuclei of the card's typical diameter at 1) and the
    output channels back, so decoding and measuring stay in the image's own pixels."""
    pixels = read(block.cy0, block.cy1, block.cx0, block.cx1)
    empty = (pixels == 0).all(axis=-1)
    if empty.all():  # no data at all (outside a stitched mosaic's tiles): nothing to find
        return BlockResult(block.index, block.cy0, block.cx0, np.zeros((0, 0), np.uint32))
    filled = fill_empty(pixels, empty)
    x = engine.contract.model_input(filled, mapping)
    decoding = block_decoding(engine, filled, mapping)
    del filled
    if decoding is None:
        raise ValueError(f"{engine.card.name}: block-wise work needs an instance model")
    if scale != 1.0:
        x = resized(x, (round(x.shape[0] * scale), round(x.shape[1] * scale)))
    channels = predict_channels(engine, x, tta)
    del x
    if scale != 1.0:
        channels = resized(channels, pixels.shape[:2])
    labels = decode(channels[..., -1], channels[..., 0], decoding)
    del channels
    owned, top, left = owned_labels(labels, block)
    del labels
    if not owned.size:
        return BlockResult(block.index, block.cy0, block.cx0, owned.astype(np.uint32))
    crop = pixels[top : top + owned.shape[0], left : left + owned.shape[1]]
    gray = crop[..., 0] if crop.shape[-1] == 1 else crop
    objects = measure_objects(owned, gray)
    cut = cut_count(owned, top, left, block)
    top, left = top + block.cy0, left + block.cx0
    for row in objects:
        _shift(row, top, left)
    return BlockResult(block.index, top, left, owned.astype(np.uint32), objects, cut)


def _shift(row: dict, top: int, left: int) -> None:
    """Move one measurement row from crop to image coordinates."""
    row["centroid_x"] = round(row["centroid_x"] + left, 2)
    row["centroid_y"] = round(row["centroid_y"] + top, 2)
    for key in ("bbox_x0", "bbox_x1"):
        row[key] += left
    for key in ("bbox_y0", "bbox_y1"):
        row[key] += top


class BlockAssembler:
    """Commit block results in block order into a labels array (numpy or zarr), with unique ids.

    ``on_objects(rows, labels_crop, top, left)`` is called per committed block with the kept
    nuclei (global ids) so tables and outlines can be written as blocks finish.
    """

    def __init__(self, labels: LabelsArray, on_objects: ObjectsSink | None = None) -> None:
        """``labels``: an HxW uint32 array-like supporting slicing reads and writes, all 0."""
        self.labels = labels
        self.on_objects = on_objects
        self.next_block = 0
        self.count = 0
        self.dropped = 0
        self.cut = 0
        self.area_px = 0
        self._waiting: dict[int, BlockResult] = {}

    def add(self, result: BlockResult) -> int:
        """Queue a result and commit every block now in order; returns blocks committed."""
        self._waiting[result.index] = result
        done = 0
        while self.next_block in self._waiting:
            self._commit(self._waiting.pop(self.next_block))
            self.next_block += 1
            done += 1
        return done

    def _commit(self, result: BlockResult) -> None:
        self.cut += result.cut
        if not result.count:
            return
        h, w = result.labels.shape
        window = (slice(result.top, result.top + h), slice(result.left, result.left + w))
        existing = np.asarray(self.labels[window])
        new = result.labels
        free = (existing == 0) & (new > 0)
        sizes = np.bincount(new.ravel(), minlength=result.count + 1)
        kept_px = np.bincount(new[free], minlength=result.count + 1)
        keep = kept_px >= MIN_KEPT_FRACTION * np.maximum(sizes, 1)
        keep[0] = False
        self.dropped += int(result.count - keep[1:].sum())
        ids = np.zeros(result.count + 1, dtype=np.uint32)
        ids[keep] = np.arange(self.count + 1, self.count + 1 + int(keep.sum()), dtype=np.uint32)
        placed = np.where(free, ids[new], 0).astype(np.uint32)
        self.labels[window] = np.where(placed > 0, placed, existing).astype(np.uint32)
        rows = []
        for row in result.objects:
            if keep[row["id"]]:
                rows.append({**row, "id": int(ids[row["id"]])})
        self.count += len(rows)
        self.area_px += int(np.count_nonzero(placed))
        if self.on_objects is not None and rows:
            self.on_objects(rows, placed, result.top, result.left)
