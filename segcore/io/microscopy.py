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
a TIFF resolution in centimetres, or OME-Zarr's scale with a length unit.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segcore.errors import ImageError

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


def stem_of(path: Path) -> str:
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
    array: object = field(repr=False, compare=False)  # a zarr array (read lazily)
    channel: int | None = None
    plane: int | None = None
    time: int | None = None
    project: str | None = None

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
        notes: list[str] = []
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
        try:
            region = np.asarray(self.array[tuple(index)])
        except READ_FAILURES as exc:  # a tile cut short or corrupt in the file
            raise ImageError(
                f"{self.path}: damaged or truncated image data at rows {y0}-{y1}, "
                f"columns {x0}-{x1} ({type(exc).__name__}: {exc})"
            ) from exc
        keep = "".join(a for a in self.axes if a in "YX" or a in CHANNEL_AXES)
        planes = [i for i, a in enumerate(self.axes) if a in PLANE_AXES]
        if self.plane is None and planes:
            region = region.max(axis=planes[0], keepdims=True)
        region = region.reshape(
            [n for n, a in zip(region.shape, self.axes, strict=True) if a in keep]
        )
        order = [keep.index(a) for a in "YX"] + [i for i, a in enumerate(keep) if a not in "YX"]
        region = region.transpose(order)
        return region if region.ndim == 3 else region[..., None]


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
    bytes ``data``), its full-resolution level, as a lazy zarr array."""
    import tifffile
    import zarr

    try:
        tif = tifffile.TiffFile(path if source is None else source)
        series = tif.series[0]
        array = _memmap(path, series) if source is None else _in_place(data, series, tif.byteorder)
        if array is None:
            store = series.aszarr(level=0)
            # tifffile marks a store over a writable file object (an upload's BytesIO) writable,
            # which zarr refuses to open read-only; it is only ever read here
            array = zarr.open(store, mode="r" if getattr(store, "read_only", True) else "r+")
    except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
        raise ImageError(f"{path}: not a readable TIFF ({exc})") from exc
    axes = series.axes
    if "Y" not in axes or "X" not in axes:
        raise ImageError(f"{path}: no Y and X axes in the TIFF (axes {series.axes})")
    names, size = _ome_channels_and_size(tif.ome_metadata) if tif.is_ome else ((), None)
    if size is None:
        size = _tiff_pixel_size(tif)
    return MicroscopyImage(
        path, axes, tuple(series.shape), np.dtype(series.dtype), names, size, array
    )


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


def _in_place(data: bytes, series: object, byteorder: str) -> np.ndarray | None:
    """A read-only view of an uncompressed, contiguous TIFF held in memory (None otherwise),
    for the same reason as `_memmap`: no copy, and a region reads only its own bytes."""
    offset = getattr(series, "dataoffset", None)
    if offset is None:
        return None
    dtype = np.dtype(series.dtype).newbyteorder(byteorder)  # type: ignore[attr-defined]
    shape = tuple(series.shape)  # type: ignore[attr-defined]
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


def _to_um(value: object, unit: str | None) -> float | None:
    """``value`` in ``unit`` as micrometres; None for a missing value or unknown unit."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    factor = UNIT_UM.get((unit or "").strip().lower())
    if factor is None or not number > 0:
        return None
    return number * factor


def _tiff_pixel_size(tif: object) -> float | None:
    """µm per pixel from ImageJ's unit or a centimetre resolution unit (inches are scanner DPI)."""
    page = tif.pages[0]  # type: ignore[attr-defined]
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    num, den = tag.value
    if not num or not den:
        return None
    per_unit = den / num  # units per pixel
    imagej = tif.imagej_metadata or {}  # type: ignore[attr-defined]
    if imagej.get("unit"):
        return _to_um(per_unit, str(imagej["unit"]))
    unit = page.tags.get("ResolutionUnit")
    return _to_um(per_unit, "cm") if unit is not None and int(unit.value) == 3 else None


def _open_ome_zarr(path: Path) -> MicroscopyImage:
    """The full-resolution array of an OME-Zarr image (NGFF 0.4 or 0.5 metadata)."""
    import zarr

    try:
        group = zarr.open_group(path, mode="r")
        attrs = dict(group.attrs)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ImageError(f"{path}: not a readable OME-Zarr folder ({exc})") from exc
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        raise ImageError(f"{path}: no OME-Zarr multiscales metadata")
    meta = multiscales[0]
    axes_meta = meta.get("axes") or [{"name": n} for n in "tczyx"]
    names = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
    axes = "".join(n.upper()[0] for n in names)
    level = meta["datasets"][0]
    array = group[level["path"]]
    size = None
    for transform in level.get("coordinateTransformations", []):
        if transform.get("type") == "scale" and "x" in names:
            unit = (
                axes_meta[names.index("x")].get("unit") if isinstance(axes_meta[0], dict) else None
            )
            size = _to_um(transform["scale"][names.index("x")], unit)
    omero = attrs.get("omero") or attrs.get("ome", {}).get("omero") or {}
    channels = tuple(str(c.get("label", "")) for c in omero.get("channels", []))
    return MicroscopyImage(
        path, axes, tuple(array.shape), np.dtype(array.dtype), channels, size, array
    )
