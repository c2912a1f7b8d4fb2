"""Microscopy TIFF uploads on the Segment page: which plane, and its pixels for the model.

A TIFF upload that Pillow would misread (16-bit or float pixels, several channels that are not
RGB colour, z planes or time points) is opened with `segcore.io.microscopy` from its bytes, as
the command line opens a file. The page offers the file's channels (by name where the OME
metadata has them; by default the one named like a nuclear stain, else the first) and, for a
stack, one plane or the maximum projection: the choices ``predict`` takes as ``--channel``,
``--z``, ``--t`` and ``--project``. `plane_raw` reads the chosen plane's pixels of their own type,
strip by strip so a projected stack is never held whole, with no-data pixels filled as the
block-wise path fills them (`segcore.blocks.fill_empty`); the engine maps them by the card's input
contract (`segcore.model_input`), as it maps every other input. `plane_pixels` is its 8-bit view,
for thumbnails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segcore.blocks import fill_empty
from segcore.errors import ImageError
from segcore.io.microscopy import NUCLEAR_NAMES, MicroscopyImage, open_tiff_bytes
from segcore.model_input import plain_view

TIFF_SUFFIXES = (".tif", ".tiff")
#: Rows read at once when a plane is mapped (bounds a projected stack's memory).
STRIP_ROWS = 512


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
    image: MicroscopyImage, choice: PlaneChoice, max_pixels: int, step: int = 1
) -> tuple[np.ndarray, list[str]]:
    """The chosen plane as HxWxC pixels of the file's type (no-data pixels filled) and the
    lines saying what was chosen; every ``step``-th row and column only (a preview).

    Raises ImageError (naming the file) for a plane above ``max_pixels``, a channel or plane
    out of range, or a stack without a choice."""
    if image.width * image.height > max_pixels:
        raise ImageError(
            f"{image.path}: {image.width}x{image.height} pixels is above the limit of "
            f"{max_pixels / 1e6:.0f} megapixels"
        )
    chosen, notes = image.select(choice.channel, choice.z, choice.t, choice.project)
    notes = [note.replace(f"{image.path}: ", "") for note in notes]
    pixels = chosen.read_plane(step, STRIP_ROWS)
    return fill_empty(pixels, (pixels == 0).all(axis=-1)), notes


def plane_pixels(
    image: MicroscopyImage, choice: PlaneChoice, max_pixels: int, step: int = 1
) -> tuple[np.ndarray, list[str]]:
    """`plane_raw` as 8-bit RGB, mapped as every image is before a model is chosen
    (`segcore.model_input.plain_view`): a thumbnail for the model check."""
    raw, notes = plane_raw(image, choice, max_pixels, step)
    return plain_view(raw), notes
