"""The bundled samples scored by a model: per-image Dice and image | truth | prediction panels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segcore.app.pictures import encode, side_by_side
from segcore.data import Sample, find_samples, load_sample
from segcore.errors import DataError, ImageError
from segcore.inference.engine import Engine
from segcore.inference.visualize import mask_to_rgb, overlay
from segcore.scoring.scores import binary_scores

PANEL_HEIGHT = 200
ORDERS = ("worst first", "best first", "name")


@dataclass(frozen=True)
class GalleryItem:
    """One sample's scores and its triptych as PNG bytes."""

    name: str
    dice: float
    iou: float
    picture: bytes
    count: int | None = None  # objects found, for instance models
    true_count: int | None = None  # annotated objects (one mask file per object, DSB layout)

    @property
    def count_error(self) -> float | None:
        """Relative count error |found - annotated| / annotated, when both are known."""
        if self.count is None or not self.true_count:
            return None
        return abs(self.count - self.true_count) / self.true_count


def sample_sets(folder: Path) -> dict[str, list[Sample]]:
    """The image/mask pairs of every dataset folder under ``folder`` (``isic``, ``dsb``...)."""
    sets: dict[str, list[Sample]] = {}
    if not folder.is_dir():
        return sets
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        try:
            _, samples = find_samples(sub, skip_unmatched=True)
        except DataError:
            continue
        sets[sub.name] = samples
    return sets


def score_samples(
    engine: Engine, samples: list[Sample], threshold: float | None = None
) -> tuple[list[GalleryItem], list[str]]:
    """Segment every sample and score it; returns the items and one message per unreadable pair."""
    pairs, problems = [], []
    for sample in samples:
        try:
            pairs.append((sample.name, *load_sample(sample)))
        except ImageError as exc:
            problems.append(str(exc))
    preds = engine.predict_batch([image for _, image, _ in pairs], threshold=threshold)
    items = []
    per_object = {s.name: len(s.masks) for s in samples}
    for (name, image, truth), pred in zip(pairs, preds, strict=True):
        scores = binary_scores(truth, pred.mask)
        picture = side_by_side(
            [image, mask_to_rgb(truth), overlay(image, pred.mask)], height=PANEL_HEIGHT
        )
        labels = getattr(pred, "labels", None)
        count = None if labels is None else int(len(np.unique(labels[labels > 0])))
        items.append(
            GalleryItem(
                name,
                scores["dice"],
                scores["iou"],
                encode(picture),
                count=count,
                true_count=per_object.get(name) if count is not None else None,
            )
        )
    return items, problems


def sort_items(items: list[GalleryItem], order: str) -> list[GalleryItem]:
    """Items ordered ``worst first`` / ``best first`` by Dice (ties by name), or by ``name``."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    by_name = sorted(items, key=lambda it: it.name)
    if order == "name":
        return by_name
    return sorted(by_name, key=lambda it: it.dice, reverse=order == "best first")


def mean_dice(items: list[GalleryItem]) -> float:
    """Mean Dice over the items (NaN when there are none)."""
    return float(np.mean([it.dice for it in items])) if items else float("nan")
