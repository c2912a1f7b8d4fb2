"""napari reader for segcore's outputs: ``*_labels.png``, ``*_labels.tif`` (above 65,535 ids),
``*_labels.ome.zarr``, ``*_mask.png``.

Each opens as a Labels layer named after the file: label images keep their ids, a mask PNG becomes
id 1, a labels OME-Zarr opens lazily as a multiscale layer with its pixel size as the scale.
A label image is decoded whole, so its declared size is checked first (`MAX_PIXELS`, as for any
image segcore reads); a file that cannot be used is one ImageError line naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from segcore.errors import ImageError, reason
from segcore.inference.preprocess import MAX_PIXELS, load_mask
from segcore.io.instance_io import load_labels_png

LayerData = list[tuple]
SUFFIXES = ("_labels.png", "_labels.tif", "_mask.png", "_labels.ome.zarr")


def _layer_name(path: Path) -> str:
    """``x_labels.png`` -> ``x labels``."""
    for suffix in SUFFIXES:
        if path.name.endswith(suffix):
            return f"{path.name[: -len(suffix)]} {suffix[1:].split('.')[0]}"
    return path.stem


def _check_pixels(path: Path, width: int, height: int) -> None:
    """Refuse a label image declaring more than `MAX_PIXELS` before it is decoded."""
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{path}: declares {width}x{height} pixels, above the limit of "
            f"{MAX_PIXELS / 1e6:.0f} megapixels (refused before decoding)"
        )


def read_labels_png(path: Path) -> LayerData:
    """A label PNG (8- or 16-bit ids) as one Labels layer."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            _check_pixels(path, *img.size)
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageError(f"{path}: not a readable PNG ({reason(exc)})") from None
    return [(load_labels_png(path), {"name": _layer_name(path)}, "labels")]


def read_labels_tif(path: Path) -> LayerData:
    """A 32-bit label TIFF (segcore writes one above 65,535 ids) as one Labels layer."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if "Y" not in series.axes or "X" not in series.axes:
                raise ImageError(f"{path}: no Y and X axes (axes {series.axes})")
            others = int(np.prod(series.shape)) // series.shape[series.axes.index("Y")]
            _check_pixels(path, others, series.shape[series.axes.index("Y")])
            data = series.asarray()
    except ImageError:
        raise
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError) as exc:
        raise ImageError(f"{path}: not a readable TIFF ({reason(exc)})") from None
    return [(data, {"name": _layer_name(path)}, "labels")]


def read_mask_png(path: Path) -> LayerData:
    """A mask PNG (foreground above half range) as a Labels layer with id 1."""
    return [(load_mask(path).astype(np.uint8), {"name": _layer_name(path)}, "labels")]


def read_labels_zarr(path: Path) -> LayerData:
    """A labels OME-Zarr (NGFF multiscales) as a lazy multiscale Labels layer; ImageError for
    a folder without usable multiscales metadata."""
    import zarr

    try:
        group = zarr.open_group(str(path), mode="r")
        multiscales = group.attrs.get("multiscales")
        if not multiscales or not multiscales[0].get("datasets"):
            raise ImageError(f"{path}: no OME-Zarr multiscales metadata with datasets")
        datasets = multiscales[0]["datasets"]
        levels = [group[d["path"]] for d in datasets]
        scale = next(
            (t["scale"] for t in datasets[0].get("coordinateTransformations", []) if "scale" in t),
            [1.0, 1.0],
        )
    except ImageError:
        raise
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ImageError(f"{path}: not a readable labels OME-Zarr ({reason(exc)})") from None
    attributes: dict[str, Any] = {"name": _layer_name(path), "scale": tuple(scale[-2:])}
    if len(levels) > 1:
        attributes["multiscale"] = True
        return [(levels, attributes, "labels")]
    return [(levels[0], attributes, "labels")]


READERS: dict[str, Callable[[Path], LayerData]] = {
    "_labels.png": read_labels_png,
    "_labels.tif": read_labels_tif,
    "_mask.png": read_mask_png,
    "_labels.ome.zarr": read_labels_zarr,
}


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], LayerData] | None:
    """napari's reader hook: a reader for segcore output paths, None for anything else."""
    paths = [path] if isinstance(path, str) else list(path)
    if not paths or not all(_reader(Path(p)) for p in paths):
        return None
    return read_paths


def _reader(path: Path) -> Callable[[Path], LayerData] | None:
    """The reader of one path by its name's ending (a labels OME-Zarr must be a folder)."""
    for suffix, reader in READERS.items():
        if path.name.endswith(suffix) and (suffix != "_labels.ome.zarr" or path.is_dir()):
            return reader
    return None


def read_paths(path: str | list[str]) -> LayerData:
    """Every path's layers, in order."""
    paths = [path] if isinstance(path, str) else list(path)
    layers: LayerData = []
    for p in paths:
        read = _reader(Path(p))
        if read is None:
            raise ValueError(f"{p}: not a segcore output (labels PNG or OME-Zarr, mask PNG)")
        layers.extend(read(Path(p)))
    return layers
