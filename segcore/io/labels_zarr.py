"""Label images as OME-Zarr (NGFF 0.4, zarr format 2): uint32, chunked, with a pyramid.

`create_labels` makes the full-resolution array ``0`` of a group that blocks write into;
`finish_pyramid` adds the levels ``1``, ``2``... (each half the previous, nearest neighbour, so
ids stay ids) window by window, and writes the ``multiscales`` metadata napari and QuPath read, with
the pixel size in micrometres when it is known. `read_labels` reads a level back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # zarr loads with the first labels written
    import zarr

CHUNK = 1024
#: The pyramid stops when the longer side is at most this.
SMALLEST_LEVEL = 512
NGFF_VERSION = "0.4"


def create_labels(path: Path, height: int, width: int, chunk: int = CHUNK) -> zarr.Array:
    """A new, zero-filled HxW uint32 level 0 in a fresh zarr group at ``path``."""
    import zarr

    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    return group.create_array(
        "0",
        shape=(height, width),
        chunks=(min(chunk, height), min(chunk, width)),
        dtype="uint32",
        fill_value=0,
    )


def level_shapes(height: int, width: int) -> list[tuple[int, int]]:
    """Shapes of the pyramid levels, level 0 first."""
    shapes = [(height, width)]
    while max(shapes[-1]) > SMALLEST_LEVEL:
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def finish_pyramid(path: Path, pixel_size_um: float | None = None, strip: int = CHUNK) -> int:
    """Write the downsampled levels (``strip`` x ``strip`` windows at a time, so memory does
    not grow with the slide) and the NGFF metadata; returns the number of levels."""
    import zarr

    group = zarr.open_group(str(path), mode="r+", zarr_format=2)
    level0 = group["0"]
    shapes = level_shapes(*level0.shape)
    for k in range(1, len(shapes)):
        previous = group[str(k - 1)]
        h, w = shapes[k]
        level = group.create_array(
            str(k), shape=(h, w), chunks=(min(CHUNK, h), min(CHUNK, w)), dtype="uint32"
        )
        for y in range(0, h, strip):
            for x in range(0, w, strip):
                window = previous[2 * y : 2 * (y + strip) : 2, 2 * x : 2 * (x + strip) : 2]
                level[y : y + strip, x : x + strip] = np.asarray(window)
    unit = "micrometer" if pixel_size_um else None
    axes = [{"name": n, "type": "space", **({"unit": unit} if unit else {})} for n in "yx"]
    step = pixel_size_um or 1.0
    datasets = [
        {
            "path": str(k),
            "coordinateTransformations": [{"type": "scale", "scale": [step * 2**k] * 2}],
        }
        for k in range(len(shapes))
    ]
    group.attrs["multiscales"] = [
        {"version": NGFF_VERSION, "name": "labels", "axes": axes, "datasets": datasets}
    ]
    group.attrs["image-label"] = {"version": NGFF_VERSION}
    return len(shapes)


def write_record(path: Path, record: dict) -> None:
    """Keep a run's own figures (e.g. the block seams' counts) in the labels group's ``segcore``
    attribute, beside the OME-NGFF metadata."""
    import zarr

    zarr.open_group(str(path), mode="r+", zarr_format=2).attrs["segcore"] = record


def read_labels(path: Path, level: int = 0) -> np.ndarray:
    """One level of a labels OME-Zarr as an HxW uint32 array (in memory: for small images)."""
    import zarr

    return np.asarray(zarr.open_group(str(path), mode="r")[str(level)][:])
