"""A training run's data sources: one or several dataset folders, each split on its own.

`dataset_name` names a folder (``isic``/``dsb`` for the two known layouts or a packed copy of
one, else the folder's name); `split_sources` finds every folder's pairs and cuts each into
train/val/test with the same seed and fractions, so every source is held out in part and one
folder's split is the same alone or beside others (a DSB split equals a DSB-only run's). With
several folders each `Sample` records its source's name, and the run is named by the names
joined with '+' (`sources_name`: ``dsb+monuseg2018``; the first names the model family).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from segcore.data.layouts import Sample, detect_format, find_samples
from segcore.data.split import SPLIT_NAMES, make_split

#: Written by `segcore.data.pack` into a packed copy: the original dataset's name.
DATASET_MARKER = "dataset.json"


def dataset_name(fmt: str, data: str | Path) -> str:
    """'isic' or 'dsb' for the two known layouts (or a packed copy of one), else the folder's name."""
    marker = Path(data) / DATASET_MARKER
    if marker.is_file():
        return json.loads(marker.read_text())["dataset"]
    return fmt if fmt in ("isic", "dsb") else Path(data).resolve().name


def folder_name(folder: str | Path, fmt: str = "auto") -> str:
    """`dataset_name` of a folder whose layout is ``fmt`` (detected when ``auto``)."""
    return dataset_name(detect_format(Path(folder)) if fmt == "auto" else fmt, folder)


def sources_name(names: list[str]) -> str:
    """The dataset name of a run on several sources: their names joined with '+', in order."""
    return "+".join(names)


@dataclass(frozen=True)
class SourcesSplit:
    """The split of a run's data: layout of the first folder, the joined parts, and the root
    that split.json's paths are relative to (the folders' common parent when several)."""

    fmt: str
    split: dict[str, list[Sample]]
    root: Path


def split_sources(
    folders: list[str],
    fmt: str,
    skip_unmatched: bool,
    fractions: tuple[float, float, float],
    seed: int,
) -> SourcesSplit:
    """Find and split every folder (see the module), then join the parts in folder order."""
    several = len(folders) > 1
    split: dict[str, list[Sample]] = {k: [] for k in SPLIT_NAMES}
    first = fmt
    for i, folder in enumerate(folders):
        where = Path(folder).resolve() if several else Path(folder)
        found, samples = find_samples(where, fmt, skip_unmatched)
        first = found if i == 0 else first
        if several:
            name = dataset_name(found, where)
            samples = [replace(s, source=name) for s in samples]
        for key, part in make_split(samples, fractions, seed).items():
            split[key] += part
    if several:
        root = Path(os.path.commonpath([str(Path(f).resolve()) for f in folders]))
    else:
        root = Path(folders[0])
    return SourcesSplit(first, split, root)


def source_counts(split: dict[str, list[Sample]]) -> dict[str, dict[str, int]]:
    """Images per source and split part (``{"dsb": {"train": 480, ...}}``); {} for one source."""
    counts: dict[str, dict[str, int]] = {}
    for part, samples in split.items():
        for s in samples:
            if s.source:
                counts.setdefault(s.source, {}).setdefault(part, 0)
                counts[s.source][part] += 1
    return counts
