"""Segment one microscopy file of any size, block by block, resumable, locally or on Dask.

`segment_large` opens the file lazily (`segcore.io.microscopy`), fits the intensity mapping once
for the whole image, and runs `segcore.large.blockplan.segment_block` on every block, in this process or
as tasks on a Dask cluster (`segcore.large.distributed`). Each finished block is saved at once in
``<stem>_blocks.partial/`` (a small ``.npz``: its owned nuclei); the outputs are assembled from
those results in block order as they arrive:

- ``<stem>_labels.ome.zarr``: uint32 labels, chunked, with a pyramid (`segcore.io.labels_zarr`);
- ``<stem>_objects.csv`` and ``<stem>_outlines.geojson`` (`segcore.io.object_streams`).

All three are built under temporary names and renamed when the image is complete. A run that
was killed (even ``kill -9``) and is started again with the same model, file and settings reuses
the saved blocks, computes only the others and gives the same result. "The same" is checked by
content (`segcore.io.fingerprints`): the input's and the model's fingerprints, the card, the
segcore version and every setting that changes pixels are in ``plan.json``; blocks saved under
another plan are dropped, with a line saying what changed.

Memory stays bounded whatever ``--object-diameter`` asks: a block's context is at most
`MAX_BLOCK_CONTEXT` pixels a side both as read and as resized for the model, so a large scale
makes more, smaller blocks, never larger ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

import segcore
from segcore.atomic import replacing, write_text
from segcore.card import TileSpec
from segcore.errors import ImageError
from segcore.inference.engine import figure_cells
from segcore.inference.intensity import sample_pixels
from segcore.inference.model_input import ImageMapping
from segcore.io.fingerprints import fingerprint
from segcore.io.labels_zarr import create_labels, finish_pyramid, write_record
from segcore.io.microscopy import (
    PIXEL_SIZE_RANGE_UM,
    MicroscopyImage,
    open_microscopy,
    pixel_size_ok,
)
from segcore.io.object_streams import ObjectStreams
from segcore.large.blockplan import (
    DEFAULT_MARGIN,
    Block,
    BlockAssembler,
    BlockEngine,
    BlockResult,
    default_block_size,
    plan_blocks,
    seam_refusal,
    segment_block,
)

PARTIAL = ".partial"
#: The resize factors ``--object-diameter`` may ask for (nuclei 3 to 144 px for an 18 px card).
SCALE_RANGE = (1 / 8, 6.0)
#: Largest side of a block with its context, in pixels, as read and as the model sees it.
MAX_BLOCK_CONTEXT = 8192
#: What each part of ``plan.json`` is called when a resume finds it changed.
PLAN_PARTS = {"input": "input file", "model": "model or card", "settings": "settings"}


@dataclass(frozen=True)
class ImageSpec:
    """What to read from a file (picklable, so a Dask worker can open the same plane)."""

    path: str
    channel: str | None = None
    z: int | None = None
    t: int | None = None
    project: str | None = None

    def open(self) -> tuple[MicroscopyImage, list[str]]:
        """The file opened lazily with this plane selected, and the lines saying what was chosen."""
        return open_microscopy(self.path).select(self.channel, self.z, self.t, self.project)


@dataclass(frozen=True)
class BlockJob:
    """Everything a worker needs for the blocks of one image."""

    model: str
    image: ImageSpec
    mapping: ImageMapping
    tta: bool = False
    scale: float = 1.0


@dataclass
class LargeResult:
    """What `segment_large` did for one image."""

    width: int
    height: int
    count: int
    blocks: int
    reused: int
    dropped: int
    seconds: float
    pixel_size_um: float | None
    mapping: ImageMapping
    area_px: int = 0
    notes: list[str] = field(default_factory=list)
    complete: bool = True
    cut: int = 0

    def row(self, path: Path) -> dict:
        """The image's row of ``predictions.csv`` (`segcore.inference.engine.figure_cells`)."""
        figures = {
            "width": self.width,
            "height": self.height,
            "area_px": self.area_px,
            "area_pct": 100.0 * self.area_px / max(1, self.width * self.height),
            "components": self.count,
            "count": self.count,
            "seconds": self.seconds,
        }
        return {"file": str(path), **figure_cells(figures), "error": ""}


def save_block(folder: Path, result: BlockResult) -> None:
    """Store one block's result atomically as ``block-<index>.npz``."""
    path = folder / f"block-{result.index:06d}.npz"
    with replacing(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            labels=result.labels,
            origin=np.array([result.top, result.left]),
            objects=np.array(json.dumps(result.objects)),
            cut=np.array(result.cut),
        )


def load_block(path: Path) -> BlockResult | None:
    """One saved block result (None when the file is damaged: the block is redone)."""
    try:
        with np.load(path) as data:
            index = int(path.stem.split("-")[1])
            top, left = (int(v) for v in data["origin"])
            objects = json.loads(str(data["objects"]))
            cut = int(data["cut"]) if "cut" in data.files else 0
            return BlockResult(index, top, left, data["labels"], objects, cut)
    except (OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile):
        return None


def saved_blocks(folder: Path) -> dict[int, Path]:
    """The readable block results saved in ``folder``, by block index. Each is read once to
    check it and dropped: they are loaded again one at a time when committed, so resuming a
    large image holds one block in memory, not all the finished ones."""
    found = {}
    for path in sorted(folder.glob("block-*.npz")):
        result = load_block(path)
        if result is not None:
            found[result.index] = path
    return found


def prepare_work_folder(
    folder: Path, plan: dict, notes: list[str] | None = None
) -> dict[int, Path]:
    """Make ``folder`` hold results of exactly this ``plan``; returns those already there. Saved
    blocks of another plan are deleted, with a line in ``notes`` naming what changed."""
    plan_file = folder / "plan.json"
    if folder.is_dir():
        try:
            earlier = json.loads(plan_file.read_text())
        except (OSError, ValueError):
            earlier = None
        if earlier == plan:
            return saved_blocks(folder)
        if notes is not None and any(folder.glob("block-*.npz")):
            changed = [
                what
                for part, what in PLAN_PARTS.items()
                if not isinstance(earlier, dict) or earlier.get(part) != plan.get(part)
            ]
            notes.append(
                f"{folder}: saved blocks were made from another "
                f"{' and '.join(changed) or 'plan'}; starting over"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    write_text(plan_file, json.dumps(plan, indent=1))
    return {}


class LargeEngine(BlockEngine, Protocol):
    """An engine for a whole file: block work, and the model file a worker loads again."""

    @property
    def model_file(self) -> Path:
        """The model file, which each worker loads again."""
        ...


class BlockRunner(Protocol):
    """Runs blocks elsewhere (`segcore.large.distributed.BlockCluster`), results in any order."""

    def results(self, job: BlockJob, blocks: list[Block]) -> Iterator[BlockResult]:
        """Each block's result as it finishes."""
        ...


def model_scale(
    typical: float, diameter: str | None, pixel_size_um: float | None, notes: list[str]
) -> float:
    """Resize factor that brings nuclei of ``diameter`` (pixels, or µm with a ``um`` suffix) to
    the card's typical diameter (1.0 without a diameter); raises ImageError for µm without a
    pixel size, a diameter that is not a finite positive number, or a factor outside
    `SCALE_RANGE`."""
    if not diameter:
        return 1.0
    text = diameter.strip().lower()
    microns = text.endswith(("um", "µm"))
    try:
        value = float(text[:-2] if microns else text)
    except ValueError:
        value = -1.0
    if not (math.isfinite(value) and value > 0):
        raise ImageError(f"--object-diameter {diameter}: expected pixels (30) or microns (12um)")
    if microns:
        if not pixel_size_um:
            raise ImageError(
                f"--object-diameter {diameter}: in µm needs a pixel size (--pixel-size)"
            )
        value /= pixel_size_um
    pixels = value
    low, high = SCALE_RANGE
    if not low <= typical / pixels <= high:
        raise ImageError(
            f"--object-diameter {diameter}: nuclei of {pixels:.3g} px; this model reads nuclei "
            f"of {typical / high:.3g} to {typical / low:.3g} px (it sees them {typical:g} px wide)"
        )
    notes.append(f"nuclei of {pixels:.1f} px: image scaled by {typical / pixels:.3f} for the model")
    return typical / pixels


def block_geometry(
    tile: TileSpec, scale: float, block_size: int | None, margin: int = DEFAULT_MARGIN
) -> tuple[int, int]:
    """(block size, margin) in image pixels for the model's ``tile`` at ``scale``.

    The margin stays wider than a nucleus at any scale. The default block's context is the
    default one at scale 1 (`segcore.large.blockplan.default_block_size`), measured on the larger of the
    image side and the model side, so memory does not grow with the scale. A given
    ``block_size`` whose context would exceed `MAX_BLOCK_CONTEXT` either way is refused."""
    margin = max(margin, math.ceil(margin / scale))
    context = default_block_size(tile, DEFAULT_MARGIN) + 2 * DEFAULT_MARGIN
    if block_size is None:
        return max(16, math.floor(context / max(1.0, scale)) - 2 * margin), margin
    side = math.ceil((block_size + 2 * margin) * max(1.0, scale))
    if side > MAX_BLOCK_CONTEXT:
        largest = math.floor(MAX_BLOCK_CONTEXT / max(1.0, scale)) - 2 * margin
        raise ImageError(
            f"--block-size {block_size}: blocks with their context would be {side} pixels a side "
            f"at scale {scale:.3g}, above {MAX_BLOCK_CONTEXT}; use --block-size {largest} or less"
        )
    return block_size, margin


class WindowedImage(Protocol):
    """An image read window by window: a `MicroscopyImage`, or a napari layer's source."""

    @property
    def dtype(self) -> np.dtype:
        """The pixels' type."""
        ...

    @property
    def height(self) -> int:
        """Image rows."""
        ...

    @property
    def width(self) -> int:
        """Image columns."""
        ...

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The window's pixels as HxWxC."""
        ...


def image_mapping(engine: BlockEngine, image: WindowedImage) -> ImageMapping:
    """The image's one intensity mapping by the engine's input contract, fitted on an
    image-wide sample of its pixels (`segcore.inference.intensity.sample_pixels`)."""
    return engine.contract.fit(
        image.dtype, lambda: sample_pixels(image.read, image.height, image.width)
    )


def local_results(
    engine: BlockEngine, image: MicroscopyImage, job: BlockJob, blocks: Iterable[Block]
) -> Iterator[BlockResult]:
    """Segment ``blocks`` one after the other in this process."""
    for block in blocks:
        yield segment_block(engine, image.read, job.mapping, block, job.tta, job.scale)


def segment_large(
    engine: LargeEngine,
    spec: ImageSpec,
    out_dir: Path,
    stem: str,
    *,
    block_size: int | None = None,
    margin: int = DEFAULT_MARGIN,
    tta: bool = False,
    pixel_size_um: float | None = None,
    cluster: BlockRunner | None = None,
    stop_after: int | None = None,
    object_diameter: str | None = None,
) -> LargeResult:
    """Segment the file ``spec`` names into ``out_dir`` (see the module docstring).

    ``block_size`` defaults to `segcore.large.blockplan.default_block_size` for the card's tiles.
    ``cluster`` is a `segcore.large.distributed.BlockCluster` (None: this process). ``pixel_size_um``
    overrides the file's. ``object_diameter`` (``"30"`` pixels or ``"12um"``) rescales the
    image for the model (`model_scale`). ``stop_after`` stops after that many newly computed blocks, leaving
    the partial state a kill would (for tests); the result then has ``complete`` False.
    """
    start = time.perf_counter()
    if pixel_size_um is not None and not pixel_size_ok(pixel_size_um):
        low, high = PIXEL_SIZE_RANGE_UM
        raise ImageError(f"--pixel-size {pixel_size_um}: must be {low:g} to {high:g} µm")
    image, notes = spec.open()
    size = pixel_size_um or image.pixel_size_um
    if engine.card.tile is None:
        raise ImageError(f"{spec.path}: block-wise work needs a tiled model ({engine.card.name})")
    scale = model_scale(engine.card.object_diameter_px, object_diameter, size, notes)
    block_size, margin = block_geometry(engine.card.tile, scale, block_size, margin)
    blocks = plan_blocks(image.height, image.width, block_size, margin)
    job = BlockJob(str(engine.model_file), spec, image_mapping(engine, image), tta, scale)
    work = out_dir / f"{stem}_blocks{PARTIAL}"
    saved = prepare_work_folder(work, resume_plan(engine, job, block_size, margin), notes)
    if saved:
        notes.append(f"{spec.path}: {len(saved)} of {len(blocks)} blocks done earlier, reused")
    labels_partial = out_dir / f"{stem}_labels.ome.zarr{PARTIAL}"
    labels = create_labels(labels_partial, image.height, image.width)
    streams = ObjectStreams(out_dir, stem, size)
    assembler = BlockAssembler(labels, streams.write)
    todo = [b for b in blocks if b.index not in saved]
    try:
        for index in sorted(saved):
            loaded = load_block(saved[index])
            if loaded is None:  # damaged since it was checked: redone, not counted as reused
                saved.pop(index)
                todo.append(blocks[index])
                continue
            assembler.add(loaded)
        todo.sort(key=lambda b: b.index)
        results = (
            local_results(engine, image, job, todo)
            if cluster is None
            else cluster.results(job, todo)
        )
        done = _drain(results, work, assembler, len(blocks), len(saved), stop_after)
    except BaseException:
        streams.abandon()
        raise
    complete = done == len(todo)
    seams = {
        "blocks": len(blocks),
        "margin_px": margin,
        "nuclei_found": assembler.count + assembler.dropped,
        "cut_by_context_edge": assembler.cut,
        "dropped_doubles": assembler.dropped,
    }
    if complete:
        _check_seams(spec.path, seams, notes, streams)
    _finish(complete, labels_partial, streams, work, size, seams)
    seconds = time.perf_counter() - start
    return LargeResult(
        image.width, image.height, assembler.count, len(blocks), len(saved), assembler.dropped,
        seconds, size, job.mapping, assembler.area_px, notes, complete, assembler.cut,
    )  # fmt: skip


def resume_plan(engine: BlockEngine, job: BlockJob, block_size: int, margin: int) -> dict:
    """What a saved block's result depends on (``plan.json``): the input's and the model's
    content fingerprints, the card, the segcore version and every setting that changes pixels
    (plane, intensity mapping, TTA, scale, block size, margin)."""
    card = json.dumps(engine.card.raw, sort_keys=True, default=str)
    settings = asdict(job)
    settings.pop("model")
    return {
        "input": {"path": job.image.path, "fingerprint": fingerprint(job.image.path)},
        "model": {
            "path": job.model,
            "fingerprint": fingerprint(job.model),
            "card": hashlib.blake2b(card.encode(), digest_size=20).hexdigest(),
            "segcore": segcore.__version__,
        },
        "settings": {**settings, "block_size": block_size, "margin": margin},
    }


def _check_seams(path: str, seams: dict, notes: list[str], streams: ObjectStreams) -> None:
    """Say how many nuclei the seams cut or doubled (several blocks only), and refuse the image
    (`segcore.large.blockplan.seam_refusal`) when too many did; its saved blocks stay."""
    if seams["blocks"] > 1:
        notes.append(
            f"{path}: {seams['cut_by_context_edge']} of {seams['nuclei_found']} nuclei cut by a "
            f"block's context edge, {seams['dropped_doubles']} dropped as doubles "
            f"({seams['blocks']} blocks, margin {seams['margin_px']} px)"
        )
    refusal = seam_refusal(
        seams["cut_by_context_edge"], seams["dropped_doubles"], seams["nuclei_found"],
        seams["margin_px"],
    )  # fmt: skip
    if refusal:
        streams.abandon()
        raise ImageError(f"{path}: {refusal}")


def _finish(
    complete: bool,
    labels: Path,
    streams: ObjectStreams,
    work: Path,
    pixel_size_um: float | None,
    seams: dict,
) -> None:
    """Publish a complete image's outputs (and drop its saved blocks), or drop the partial
    table and outlines of an incomplete one (the saved blocks stay for the next run). The
    seams' counts are recorded in the labels' ``segcore`` attribute, under ``blocks``."""
    if not complete:
        streams.abandon()
        return
    final = labels.with_name(labels.name.removesuffix(PARTIAL))
    finish_pyramid(labels, pixel_size_um)
    write_record(labels, {"blocks": seams})
    if final.exists():
        shutil.rmtree(final)
    labels.rename(final)
    streams.close()
    shutil.rmtree(work)


def _drain(
    results: Iterator[BlockResult],
    work: Path,
    assembler: BlockAssembler,
    total: int,
    reused: int,
    stop_after: int | None,
) -> int:
    """Save and commit results as they come, with a progress bar; returns how many came."""
    done = 0
    with tqdm(total=total, initial=reused, unit="block", desc="blocks", leave=False) as bar:
        for result in results:
            save_block(work, result)
            assembler.add(result)
            done += 1
            bar.update(1)
            if stop_after is not None and done >= stop_after:
                break
    return done
