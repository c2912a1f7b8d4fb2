"""Names of inputs and outputs in a batch: printable file names and collision-free output stems.

A file name that is not valid UTF-8 (Linux keeps such names as bytes) is shown and recorded with
U+FFFD in place of each bad byte, so a message or a CSV row never fails to encode. Output stems
are distinct even where inputs share a stem (``d1/a.png``, ``d2/a.png``), where another input's
stem is already the suffixed form (``a_2.png``), and on file systems that ignore case.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def printable(text: str | Path) -> str:
    """``text`` with any undecodable byte of a file name (a surrogate escape) as U+FFFD."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def output_stems(paths: Sequence[Path]) -> list[str]:
    """A distinct, printable output stem per input, in order.

    The first input with a stem keeps it; a later one gets ``<stem>_2``, ``_3``... skipping any
    that another input's stem or an earlier choice holds (compared without case).
    """
    from segcore.io.microscopy import stem_of  # ``x.ome.tif`` -> ``x``

    stems = [printable(stem_of(p)) for p in paths]
    taken = {s.casefold() for s in stems}
    used: set[str] = set()
    out = []
    for stem in stems:
        choice, k = stem, 1
        while choice.casefold() in used or (k > 1 and choice.casefold() in taken):
            k += 1
            choice = f"{stem}_{k}"
        used.add(choice.casefold())
        out.append(choice)
    return out
