"""Microscopy files opened lazily: TIFF/BigTIFF, tiled and pyramidal OME-TIFF, OME-Zarr.

`open_microscopy` reads only the metadata: the full-resolution array stays on disk behind a zarr
view (tifffile's ``aszarr`` for TIFFs, zarr for OME-Zarr), and `MicroscopyImage.read` decodes one
region, so a whole slide is never loaded at once. Axes come from the metadata (tifffile's axis
letters, OME-Zarr's ``multiscales`` axes): Y and X; C or S channels; Z planes (and I/Q, pages
without a meaning, treated as planes); T time points. One image plane is selected with
`MicroscopyImage.select`:

- channels: ``--channel N|NAME``; by default a channel named like a nuclear stain (DAPI, Hoechst,
  DNA, nuclei), else the first; an 8-bit RGB(A) image keeps its three colour channels;
- planes and time points: never silently cut: ``z=K`` / ``t=K`` picks one, ``project="max"`` takes
  the maximum over the planes; a stack with neither is refused with a line saying so.

The pixel size (µm) is read from OME ``PhysicalSizeX``, ImageJ's unit with the X resolution,
a TIFF resolution in centimetres, or OME-Zarr's scale with a length unit; a value outside
`PIXEL_SIZE_RANGE_UM` (or not finite) is ignored with a note.

A file's declared work is checked before anything is decoded (`check_declared`): the side, the
plane's pixels and the count of planes, channels and time points have limits, and a compressed
strip or tile that would decode to more than `MAX_SEGMENT_BYTES` is refused (a small file can
declare a huge image: Pillow's and StarDist's bomb checks are the model). Each refusal is one
ImageError line naming the file, the value and the limit.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from segcore.errors import ImageError, reason

if TYPE_CHECKING:  # tifffile and zarr load with the first file
    from tifffile import TiffFile, TiffPageSeries
    from zarr import Group

#: File names opened by this module rather than Pillow.
MICROSCOPY_SUFFIXES = (".tif", ".tiff", ".btf", ".ome.tif", ".ome.tiff", ".zarr", ".ome.zarr")
#: Channel names taken for the nuclear stain when no channel is given (matched case-insensitively).
NUCLEAR_NAMES = re.compile(r"dapi|hoechst|dna|nuc|draq5|sir-?dna|h2b", re.IGNORECASE)
PROJECTIONS = ("max",)
#: Length units to micrometres (OME units, ImageJ spellings, OME-Zarr names).
UNIT_UM = {
    "nm": 1e-3,
    "nanometer": 1e-3,
    "µm": 1.0,
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "\\u00B5m": 1.0,
    "mm": 1e3,
    "millimeter": 1e3,
    "cm": 1e4,
    "centimeter": 1e4,
    "m": 1e6,
    "meter": 1e6,
}
#: What decoding a region of a damaged file raises (tifffile, imagecodecs' codec errors are
#: RuntimeErrors, zarr); each becomes an ImageError naming the file.
READ_FAILURES = (OSError, ValueError, RuntimeError, EOFError, KeyError, IndexError)
PLANE_AXES = "ZIQ"
CHANNEL_AXES = "CS"
#: Longest side of an image, in pixels (the largest whole-slide scans are about 200,000).
MAX_SIDE = 1_000_000
#: Pixels of one plane (200,000 x 200,000).
MAX_PLANE_PIXELS = 40_000_000_000
#: Planes, channels and time points of one file, all together.
MAX_PLANES = 100_000
#: Bytes one strip or tile of a compressed file may decode to (each region read decodes every
#: strip it touches whole: a single-strip 30000x30000 image would be inflated for every block).
MAX_SEGMENT_BYTES = 64 * 2**20
#: Pixel sizes (µm) taken as real: 1 nm to 1 mm; others (0, INF, 1e300) are ignored.
PIXEL_SIZE_RANGE_UM = (1e-3, 1e3)
#: Pixel types a model can read (booleans, integers, floats).
PIXEL_KINDS = "buif"


def stem_of(path: str | Path) -> str:
    """A file's name without its microscopy suffix, double ones kept whole (``x.ome.tif`` -> x)."""
    name = Path(path).name
    for suffix in sorted(MICROSCOPY_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def is_microscopy_file(path: Path) -> bool:
    """True for a TIFF name or an OME-Zarr folder."""
    return Path(path).name.lower().endswith(MICROSCOPY_SUFFIXES)


@dataclass(frozen=True)
class MicroscopyImage:
    """One microscopy image: its metadata and a lazy full-resolution array.

    ``axes`` names the array's axes (e.g. ``"CYX"``, ``"TZCYX"``, ``"YXS"``); ``height`` and
    ``width`` are Y and X. After `select`, ``channel`` (an index, or None for RGB colour) and
    ``plane`` / ``time`` / ``project`` say which 2-D image `read` returns.
    """

    path: Path
    axes: str
    shape: tuple[int, ...]
    dtype: np.dtype
    channel_names: tuple[str, ...]
    pixel_size_um: float | None
    array: Any = field(repr=False, compare=False)  # a zarr array (read lazily; untyped here)
    channel: int | None = None
    plane: int | None = None
    time: int | None = None
    project: str | None = None
    #: lines about the file itself (series skipped, pixel size ignored), said on `select`
    notes: tuple[str, ...] = ()
    #: rows of the file's strips or tiles: regions this many rows high decode each strip once
    segment_rows: int = 1

    @property
    def height(self) -> int:
        """Pixels along Y."""
        return self.shape[self.axes.index("Y")]

    @property
    def width(self) -> int:
        """Pixels along X."""
        return self.shape[self.axes.index("X")]

    def size_of(self, letters: str) -> int:
        """The length of the first axis among ``letters`` (1 when there is none)."""
        for i, axis in enumerate(self.axes):
            if axis in letters:
                return self.shape[i]
        return 1

    @property
    def channels(self) -> int:
        """Number of channels (1 when the image has no channel axis)."""
        return self.size_of(CHANNEL_AXES)

    @property
    def planes(self) -> int:
        """Number of z planes (or unnamed pages)."""
        return self.size_of(PLANE_AXES)

    @property
    def times(self) -> int:
        """Number of time points."""
        return self.size_of("T")

    @property
    def is_rgb(self) -> bool:
        """True for an 8-bit colour image (3 or 4 samples per pixel), kept in colour."""
        return "S" in self.axes and self.dtype == np.uint8 and self.channels in (3, 4)

    def select(
        self,
        channel: str | None = None,
        z: int | None = None,
        t: int | None = None,
        project: str | None = None,
    ) -> tuple[MicroscopyImage, list[str]]:
        """This image with one 2-D plane chosen, and the lines saying what was chosen.

        Raises ImageError (naming the file and the flag to use) for a stack with no choice, an
        unknown channel or an index out of range.
        """
        notes: list[str] = list(self.notes)
        index = self._channel_index(channel, notes)
        plane = self._stack_index("z", self.planes, z, project, notes)
        time = self._stack_index("t", self.times, t, project, notes)
        return dataclasses.replace(
            self, channel=index, plane=plane, time=time, project=project
        ), notes

    def _channel_index(self, channel: str | None, notes: list[str]) -> int | None:
        """The chosen channel's index (None = colour), appending a line to ``notes``."""
        n = self.channels
        if channel is None:
            if n == 1:
                return 0
            if self.is_rgb:
                notes.append(f"{self.path}: RGB colour image, all three channels used")
                return None
            named = [i for i, name in enumerate(self.channel_names) if NUCLEAR_NAMES.search(name)]
            index = named[0] if named else 0
            why = "named like a nuclear stain" if named else "the first; --channel picks another"
            notes.append(f"{self.path}: {n} channels, using {self._channel_label(index)} ({why})")
            return index
        if channel.isdigit():
            index = int(channel)
            if index >= n:
                raise ImageError(f"--channel {channel}: {self.path} has channels 0..{n - 1}")
        else:
            lowered = [name.lower() for name in self.channel_names]
            if channel.lower() not in lowered:
                known = ", ".join(self.channel_names) or "none named"
                raise ImageError(f"--channel {channel}: no such channel in {self.path} ({known})")
            index = lowered.index(channel.lower())
        notes.append(f"{self.path}: using {self._channel_label(index)}")
        return index

    def _channel_label(self, index: int) -> str:
        name = self.channel_names[index] if index < len(self.channel_names) else ""
        return f"channel {index}" + (f" ({name})" if name else "")

    def _stack_index(
        self, flag: str, count: int, chosen: int | None, project: str | None, notes: list[str]
    ) -> int | None:
        """The chosen plane / time point (None = project), appending a line to ``notes``."""
        what = "z planes" if flag == "z" else "time points"
        if chosen is not None:
            if not 0 <= chosen < count:
                raise ImageError(f"--{flag} {chosen}: {self.path} has {what} 0..{count - 1}")
            if count > 1:
                notes.append(f"{self.path}: {count} {what}, using {flag}={chosen}")
            return chosen
        if count == 1:
            return 0
        if project in PROJECTIONS and flag == "z":
            notes.append(f"{self.path}: {count} {what}, maximum projection")
            return None
        how = "--z K or --project max" if flag == "z" else "--t K"
        raise ImageError(f"{self.path}: {count} {what}; refused without {how} (never cut silently)")

    def read_plane(self, step: int = 1, rows: int = 512) -> np.ndarray:
        """The selected plane as HxWxC pixels of the file's type, every ``step``-th row and
        column only, read ``rows`` rows at a time (a projected stack is never held whole)."""
        rows = max(step, rows - rows % step)  # a multiple of step: strips stay aligned
        out: np.ndarray | None = None
        for y0 in range(0, self.height, rows):
            strip = self.read(y0, min(y0 + rows, self.height), 0, self.width)[::step, ::step]
            if out is None:
                shape = (-(-self.height // step), -(-self.width // step), strip.shape[-1])
                out = np.empty(shape, strip.dtype)
            out[y0 // step : y0 // step + len(strip)] = strip
        if out is None:
            raise ImageError(f"{self.path}: empty image")
        return out

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The selected plane's region [y0:y1, x0:x1] as an HxWxC array of the file's dtype
        (C = 1, or 3/4 for colour); only that region is decoded."""
        index: list[object] = []
        for axis in self.axes:
            if axis == "Y":
                index.append(slice(y0, y1))
            elif axis == "X":
                index.append(slice(x0, x1))
            elif axis in CHANNEL_AXES:
                index.append(
                    slice(None) if self.channel is None else slice(self.channel, self.channel + 1)
                )
            elif axis in PLANE_AXES:
                index.append(
                    slice(None) if self.plane is None else slice(self.plane, self.plane + 1)
                )
            elif axis == "T":
                index.append(slice(self.time or 0, (self.time or 0) + 1))
            else:
                index.append(slice(0, 1))
        planes = [i for i, a in enumerate(self.axes) if a in PLANE_AXES]
        if self.plane is None and planes:  # a projection: one plane at a time, a running maximum
            region = None
            for k in range(self.shape[planes[0]]):
                index[planes[0]] = slice(k, k + 1)
                one = self._decode(tuple(index), y0, y1, x0, x1)
                region = np.array(one) if region is None else np.maximum(region, one, out=region)
            if region is None:
                raise ImageError(f"{self.path}: no planes to project (a {self.axes} size of 0)")
        else:
            region = self._decode(tuple(index), y0, y1, x0, x1)
        keep = "".join(a for a in self.axes if a in "YX" or a in CHANNEL_AXES)
        region = region.reshape(
            [n for n, a in zip(region.shape, self.axes, strict=True) if a in keep]
        )
        order = [keep.index(a) for a in "YX"] + [i for i, a in enumerate(keep) if a not in "YX"]
        region = region.transpose(order)
        return region if region.ndim == 3 else region[..., None]

    def _decode(self, index: tuple, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """The array's ``index`` decoded; ImageError naming the file for damaged data."""
        try:
            return np.asarray(self.array[index])
        except READ_FAILURES as exc:  # a tile cut short or corrupt in the file
            raise ImageError(
                f"{self.path}: damaged or truncated image data at rows {y0}-{y1}, "
                f"columns {x0}-{x1} ({type(exc).__name__}: {exc})"
            ) from exc


def check_declared(path: Path, axes: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Refuse (ImageError naming ``path``) an image whose declared axes, size, plane count or
    pixel type is unusable or above this module's limits, before any pixel is decoded."""
    if len(axes) != len(shape) or len(set(axes)) != len(axes):
        raise ImageError(f"{path}: axes {axes!r} do not match the shape {shape}")
    if "Y" not in axes or "X" not in axes:
        raise ImageError(f"{path}: no Y and X axes (axes {axes})")
    if any(int(n) < 1 for n in shape):
        raise ImageError(f"{path}: empty image (shape {shape})")
    if dtype.kind not in PIXEL_KINDS:
        raise ImageError(f"{path}: pixel type {dtype} is not a number type")
    height, width = shape[axes.index("Y")], shape[axes.index("X")]
    if max(height, width) > MAX_SIDE or height * width > MAX_PLANE_PIXELS:
        raise ImageError(
            f"{path}: declares {width}x{height} pixels, above the limit of {MAX_SIDE:,} per side "
            f"and {MAX_PLANE_PIXELS / 1e9:.0f} gigapixels per plane (refused before decoding)"
        )
    others = int(np.prod([n for n, a in zip(shape, axes, strict=True) if a not in "YX"]))
    if others > MAX_PLANES:
        raise ImageError(
            f"{path}: declares {others:,} planes, channels and time points (shape {shape}), "
            f"above the limit of {MAX_PLANES:,} (refused before decoding)"
        )


def _check_segments(path: Path, page: object, dtype: np.dtype) -> None:
    """Refuse a compressed TIFF page whose strips or tiles decode larger than
    `MAX_SEGMENT_BYTES` (each read would inflate the whole segment again)."""
    chunk = getattr(page, "chunks", None)
    if not chunk:
        return
    decoded = int(np.prod([int(n) for n in chunk])) * dtype.itemsize
    if decoded > MAX_SEGMENT_BYTES:
        what = "tile" if getattr(page, "is_tiled", False) else "strip"
        raise ImageError(
            f"{path}: one compressed {what} decodes to {decoded / 2**20:,.0f} MiB, above the "
            f"budget of {MAX_SEGMENT_BYTES / 2**20:.0f} MiB (refused before decoding; save it "
            "tiled, e.g. tifffile's tile=(512, 512))"
        )


def open_microscopy(path: str | Path) -> MicroscopyImage:
    """Open a TIFF / OME-TIFF file or an OME-Zarr folder lazily; raises ImageError."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: file not found")
    if path.is_dir():
        return _open_ome_zarr(path)
    return _open_tiff(path)


def open_tiff_bytes(name: str, data: bytes) -> MicroscopyImage:
    """A TIFF held in memory (an upload), opened as `open_microscopy` opens a file; ``name``
    names it in messages. Raises ImageError."""
    import io

    return _open_tiff(Path(name), io.BytesIO(data), data)


def _open_tiff(path: Path, source: object | None = None, data: bytes = b"") -> MicroscopyImage:
    """The first series of a TIFF (the file at ``path``, or the file object ``source`` over the
    bytes ``data``), its full-resolution level, as a lazy zarr array; its declared size and
    segments are checked before anything is decoded."""
    import tifffile
    import zarr

    try:
        tif = tifffile.TiffFile(path if source is None else source)
        series = tif.series[0]
        axes, shape, dtype = series.axes, tuple(series.shape), np.dtype(series.dtype)
        page = series.pages[0] if series.pages else None
        check_declared(path, axes, shape, dtype)
        array = _memmap(path, series) if source is None else _in_place(data, series, tif.byteorder)
        if array is None:
            _check_segments(path, page, dtype)
            store = series.aszarr(level=0)
            # tifffile marks a store over a writable file object (an upload's BytesIO) writable,
            # which zarr refuses to open read-only; it is only ever read here
            array = zarr.open(store, mode="r" if getattr(store, "read_only", True) else "r+")
        notes = [] if len(tif.series) < 2 else [_series_note(path, tif.series)]
        names, size = _ome_channels_and_size(tif.ome_metadata) if tif.is_ome else ((), None)
        if size is None:
            size = _tiff_pixel_size(tif)
    except ImageError:
        raise
    except TIFF_FAILURES as exc:
        raise ImageError(f"{path}: not a readable TIFF ({reason(exc)})") from exc
    size = _checked_size(path, size, notes)
    chunk = getattr(page, "chunks", None)
    rows = int(chunk[0]) if chunk and "Y" in getattr(page, "axes", "")[:1] else 1
    return MicroscopyImage(
        path, axes, shape, dtype, names, size, array, notes=tuple(notes), segment_rows=rows
    )


#: What parsing a hostile TIFF's metadata raises in tifffile (bogus OME axes, tags of the wrong
#: type, offsets past the end); each becomes one ImageError line.
TIFF_FAILURES = (
    OSError, ValueError, IndexError, KeyError, TypeError, AttributeError, EOFError,
    RuntimeError, OverflowError, MemoryError, RecursionError, struct.error,
)  # fmt: skip


def _series_note(path: Path, series: list) -> str:
    """The line saying which of a file's several series is read."""
    shapes = ", ".join(f"{s.axes} {tuple(s.shape)}" for s in series[1:4])
    more = f" and {len(series) - 4} more" if len(series) > 4 else ""
    return (
        f"{path}: {len(series)} series, using series 0 ({series[0].axes} "
        f"{tuple(series[0].shape)}); the others ({shapes}{more}) are not read"
    )


def _checked_size(path: Path, size: float | None, notes: list[str]) -> float | None:
    """A metadata pixel size if it is in `PIXEL_SIZE_RANGE_UM`, else None with a note."""
    if size is None or pixel_size_ok(size):
        return size
    notes.append(f"{path}: pixel size {size:g} µm in the metadata ignored (not a real size)")
    return None


def pixel_size_ok(size_um: float) -> bool:
    """True for a finite pixel size within `PIXEL_SIZE_RANGE_UM`."""
    low, high = PIXEL_SIZE_RANGE_UM
    return math.isfinite(size_um) and low <= size_um <= high


def _memmap(path: Path, series: object) -> np.ndarray | None:
    """A read-only memory map of an uncompressed, contiguous TIFF (None otherwise): such a file
    is often one strip, which zarr would decode whole for every region."""
    import tifffile

    if getattr(series, "dataoffset", None) is None:
        return None
    try:
        return tifffile.memmap(path, series=0, level=0, mode="r")
    except (ValueError, OSError):
        return None


def _in_place(data: bytes, series: TiffPageSeries, byteorder: str) -> np.ndarray | None:
    """A read-only view of an uncompressed, contiguous TIFF held in memory (None otherwise),
    for the same reason as `_memmap`: no copy, and a region reads only its own bytes."""
    offset = getattr(series, "dataoffset", None)
    if offset is None:
        return None
    dtype = np.dtype(series.dtype).newbyteorder(byteorder)
    shape = tuple(series.shape)
    count = int(np.prod(shape))
    if offset + count * dtype.itemsize > len(data):
        return None
    return np.frombuffer(data, dtype, count, offset).reshape(shape)


def _ome_channels_and_size(xml: str | None) -> tuple[tuple[str, ...], float | None]:
    """Channel names and X pixel size (µm) of the first OME image."""
    import xml.etree.ElementTree as ET

    if not xml:
        return (), None
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return (), None
    pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels")), None)
    if pixels is None:
        return (), None
    names = tuple(e.get("Name", "") for e in pixels if e.tag.endswith("}Channel"))
    size = pixels.get("PhysicalSizeX")
    unit = pixels.get("PhysicalSizeXUnit", "µm")
    return names, _to_um(size, unit)


def _to_um(value: str | float | None, unit: str | None) -> float | None:
    """``value`` in ``unit`` as micrometres; None for a missing value or unknown unit."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    factor = UNIT_UM.get((unit or "").strip().lower())
    if factor is None or not number > 0:
        return None
    return number * factor


def _tiff_pixel_size(tif: TiffFile) -> float | None:
    """µm per pixel from ImageJ's unit or a centimetre resolution unit (inches are scanner DPI)."""
    page = tif.pages[0]
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    if not num or not den:
        return None
    per_unit = den / num  # units per pixel
    imagej = tif.imagej_metadata or {}
    if imagej.get("unit"):
        return _to_um(per_unit, str(imagej["unit"]))
    unit = page.tags.get("ResolutionUnit")
    return _to_um(per_unit, "cm") if unit is not None and int(unit.value) == 3 else None


def _open_ome_zarr(path: Path) -> MicroscopyImage:
    """The full-resolution array of an OME-Zarr image (NGFF 0.4 or 0.5 metadata); metadata of
    the wrong shape or a dataset path leaving the folder is one ImageError line."""
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
        attrs = dict(group.attrs)
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ImageError(f"{path}: not a readable OME-Zarr folder ({reason(exc)})") from exc
    try:
        return _ome_zarr_image(path, group, attrs)
    except ImageError:
        raise
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, OSError) as exc:
        raise ImageError(f"{path}: malformed OME-Zarr metadata ({reason(exc)})") from exc


#: A dataset path inside an OME-Zarr folder: relative names, no ``..``.
DATASET_PATH = re.compile(r"(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def _ome_zarr_image(path: Path, group: Group, attrs: dict) -> MicroscopyImage:
    """The image of an opened OME-Zarr group (see `_open_ome_zarr`)."""
    import zarr

    ome = attrs.get("ome")
    if not isinstance(ome, dict):
        ome = {}
    multiscales = attrs.get("multiscales") or ome.get("multiscales")
    if not multiscales or not isinstance(multiscales, list):
        raise ImageError(f"{path}: no OME-Zarr multiscales metadata")
    meta = multiscales[0]
    datasets = meta.get("datasets")
    if not datasets or not isinstance(datasets, list):
        raise ImageError(f"{path}: OME-Zarr multiscales without datasets")
    axes_meta = meta.get("axes") or [{"name": n} for n in "tczyx"]
    names = [str(a["name"] if isinstance(a, dict) else a).lower() for a in axes_meta]
    axes = "".join(n[:1].upper() for n in names)
    level = datasets[0]
    where = level.get("path")
    if not isinstance(where, str) or not DATASET_PATH.fullmatch(where):
        raise ImageError(f"{path}: OME-Zarr dataset path {where!r} is not a folder inside it")
    array = group[where]
    if not isinstance(array, zarr.Array):
        raise ImageError(f"{path}: OME-Zarr dataset {where!r} is not an array")
    shape, dtype = tuple(int(n) for n in array.shape), np.dtype(array.dtype)
    check_declared(path, axes, shape, dtype)
    size = None
    for transform in level.get("coordinateTransformations") or []:
        if transform.get("type") == "scale" and "x" in names:
            unit = (
                axes_meta[names.index("x")].get("unit") if isinstance(axes_meta[0], dict) else None
            )
            size = _to_um(transform["scale"][names.index("x")], unit)
    notes: list[str] = []
    size = _checked_size(path, size, notes)
    omero = attrs.get("omero") or ome.get("omero") or {}
    channels = tuple(str(c.get("label", "")) for c in omero.get("channels", []))
    chunks = getattr(array, "chunks", None)
    rows = int(chunks[axes.index("Y")]) if chunks else 1
    return MicroscopyImage(
        path, axes, shape, dtype, channels, size, array, notes=tuple(notes), segment_rows=rows
    )
