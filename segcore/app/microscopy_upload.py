"""Microscopy TIFF uploads on the Segment page: which plane, and its pixels for the model.

A TIFF upload that Pillow would misread (16-bit or float pixels, several channels that are not
RGB colour, z planes or time points) is opened with `segcore.io.microscopy` from its bytes, as
the command line opens a file. The page offers the file's channels (by name where the OME
metadata has them; by default the one named like a nuclear stain, else the first) and, for a
stack, one plane or the maximum projection: the choices ``predict`` takes as ``--channel``,
``--z``, ``--t`` and ``--project``. `plane_raw` reads the chosen plane's pixels of their own type,
strip by strip so a projected stack is never held whole, with no-data pixels filled as the
block-wise path fills them (`segcore.large.blockplan.fill_empty`); the engine maps them by the card's input
contract (`segcore.inference.model_input`), as it maps every other input. `plane_pixels` is its 8-bit view,
for thumbnails.

An upload's work is bounded before and while it is decoded: the pixels to decode (every plane
of a projection) at most `MAX_DECODED_PIXELS`, read in strips aligned to the file's own strips
or tiles so each is inflated once per plane, and at most `DECODE_BUDGET_S` seconds. Between strips a
``progress(fraction)`` callback is called: the page updates a progress bar there, which is
where Streamlit stops a run whose page was closed or rerun.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from segcore.errors import ImageError
from segcore.inference.model_input import plain_view
from segcore.io.microscopy import NUCLEAR_NAMES, MicroscopyImage, open_tiff_bytes
from segcore.large.blockplan import fill_empty

TIFF_SUFFIXES = (".tif", ".tiff")
#: Rows read at once when a plane is mapped (bounds a projected stack's memory).
STRIP_ROWS = 512
#: Pixels decoded for one upload at most, all planes of a projection together.
MAX_DECODED_PIXELS = 400_000_000
#: Seconds decoding one upload may take before it is stopped with one line.
DECODE_BUDGET_S = 60.0


@dataclass(frozen=True)
class PlaneChoice:
    """Which 2-D image of a microscopy file to segment (None: the file's default)."""

    channel: str | None = None
    z: int | None = None
    t: int | None = None
    project: str | None = None


def microscopy_image(name: str, data: bytes) -> MicroscopyImage | None:
    """The upload as a microscopy image when it is a TIFF that needs one (see the module
    docstring); None for any other upload, which Pillow reads. Raises ImageError for a file
    named .tif that is not a readable TIFF."""
    if not name.lower().endswith(TIFF_SUFFIXES):
        return None
    image = open_tiff_bytes(name, data)
    plain = (
        image.dtype == np.uint8
        and image.planes == 1
        and image.times == 1
        and (image.channels == 1 or image.is_rgb)
    )
    return None if plain else image


def channel_labels(image: MicroscopyImage) -> list[str]:
    """One label per channel: ``0 · DAPI`` (or ``0`` when unnamed)."""
    names = list(image.channel_names) + [""] * image.channels
    return [f"{i} · {names[i]}" if names[i] else str(i) for i in range(image.channels)]


def default_channel(image: MicroscopyImage) -> int:
    """The channel used when none is chosen: the first named like a nuclear stain, else 0."""
    named = [i for i, n in enumerate(image.channel_names) if NUCLEAR_NAMES.search(n)]
    return named[0] if named else 0


def needs_choice(image: MicroscopyImage) -> bool:
    """True when the page must offer a choice: several channels (not RGB), planes or times."""
    return (image.channels > 1 and not image.is_rgb) or image.planes > 1 or image.times > 1


def describe(image: MicroscopyImage) -> str:
    """One line on what the file holds: size, type, channels, planes, pixel size."""
    parts = [f"{image.width}×{image.height} px", str(image.dtype)]
    if image.channels > 1 and not image.is_rgb:
        parts.append(f"{image.channels} channels")
    if image.planes > 1:
        parts.append(f"{image.planes} z planes")
    if image.times > 1:
        parts.append(f"{image.times} time points")
    if image.pixel_size_um:
        parts.append(f"{image.pixel_size_um:g} µm/px")
    return " · ".join(parts)


def command_flags(choice: PlaneChoice) -> str:
    """The ``predict`` flags that make the same choice on the command line."""
    flags = []
    if choice.channel is not None:
        flags.append(f"--channel {choice.channel}")
    if choice.project:
        flags.append(f"--project {choice.project}")
    if choice.z is not None:
        flags.append(f"--z {choice.z}")
    if choice.t is not None:
        flags.append(f"--t {choice.t}")
    return " ".join(flags)


def plane_raw(
    image: MicroscopyImage,
    choice: PlaneChoice,
    max_pixels: int,
    step: int = 1,
    progress: Callable[[float], None] | None = None,
    budget_s: float = DECODE_BUDGET_S,
) -> tuple[np.ndarray, list[str]]:
    """The chosen plane as HxWxC pixels of the file's type (no-data pixels filled) and the
    lines saying what was chosen; every ``step``-th row and column only (a preview).
    ``progress(fraction)`` is called between strips; decoding stops after ``budget_s``.

    Raises ImageError (naming the file) for a plane above ``max_pixels``, a decoding above
    `MAX_DECODED_PIXELS` or ``budget_s``, a channel or plane out of range, or a stack without a
    choice."""
    if image.width * image.height > max_pixels:
        raise ImageError(
            f"{image.path}: {image.width}x{image.height} pixels is above the limit of "
            f"{max_pixels / 1e6:.0f} megapixels"
        )
    chosen, notes = image.select(choice.channel, choice.z, choice.t, choice.project)
    notes = [note.replace(f"{image.path}: ", "") for note in notes]
    planes = [chosen] if chosen.plane is not None else _each_plane(chosen)
    decoded = len(planes) * chosen.width * chosen.height
    if decoded > MAX_DECODED_PIXELS:
        raise ImageError(
            f"{image.path}: {len(planes)} planes of {chosen.width}x{chosen.height} is "
            f"{decoded / 1e6:,.0f} megapixels to decode, above the app's "
            f"{MAX_DECODED_PIXELS / 1e6:.0f}; project it with python -m segcore.predict"
        )
    raw = _decoded_plane(planes, step, progress, time.monotonic() + budget_s, budget_s)
    return fill_empty(raw, (raw == 0).all(axis=-1)), notes


def plane_pixels(
    image: MicroscopyImage, choice: PlaneChoice, max_pixels: int, step: int = 1
) -> tuple[np.ndarray, list[str]]:
    """`plane_raw` as 8-bit RGB, mapped as every image is before a model is chosen
    (`segcore.inference.model_input.plain_view`): a thumbnail for the model check."""
    raw, notes = plane_raw(image, choice, max_pixels, step)
    return plain_view(raw), notes


def _each_plane(image: MicroscopyImage) -> list[MicroscopyImage]:
    """A projected image as its planes, each selected alone (their maximum is the projection)."""
    return [dataclasses.replace(image, plane=k, project=None) for k in range(image.planes)]


def _decoded_plane(
    planes: list[MicroscopyImage],
    step: int,
    progress: Callable[[float], None] | None,
    deadline: float,
    budget_s: float,
) -> np.ndarray:
    """The maximum of ``planes`` (one plane: itself) at every ``step``-th pixel, in the file's
    type, read in strips of whole file strips; ImageError once past ``deadline``."""
    first = planes[0]
    unit = math.lcm(max(1, first.segment_rows), step)  # whole file strips, aligned to step
    rows = unit * -(-STRIP_ROWS // unit)
    raw: np.ndarray | None = None
    total = len(planes) * -(-first.height // rows)
    done = 0
    for y0 in range(0, first.height, rows):
        strip: np.ndarray | None = None
        for plane in planes:
            if progress is not None:
                progress(done / total)
            if time.monotonic() > deadline:
                raise ImageError(
                    f"{first.path}: decoding took more than {budget_s:g} s and was stopped; "
                    "segment it with python -m segcore.predict"
                )
            pixels = plane.read(y0, min(y0 + rows, first.height), 0, first.width)[::step, ::step]
            strip = pixels if strip is None else np.maximum(strip, pixels)
            done += 1
        assert strip is not None  # ``planes`` is never empty
        if raw is None:
            height = -(-first.height // step)
            raw = np.empty((height, *strip.shape[1:]), strip.dtype)
        raw[y0 // step : y0 // step + len(strip)] = strip
    if raw is None:
        raise ImageError(f"{first.path}: no rows to read")
    return raw
