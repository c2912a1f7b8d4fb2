"""Does an image suit a model? Its distance to each model's training images (card ``image_stats``)
and the plain-words warning the Segment page shows when it does not.

A model whose card has no ``image_stats`` is never warned about (nothing to compare against).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segcore.app.catalog import ModelEntry
from segcore.imagestats import distance, usable

#: Another model fits "clearly better" when its distance is below this share of the chosen one's.
CLEARLY_CLOSER = 0.5
#: Distances within this factor of the closest count as equally close (same training images).
SAME_DISTANCE = 1.05
KIND = {"isic": "skin-lesion photos", "dsb": "microscopy images of cell nuclei"}


@dataclass(frozen=True)
class Fit:
    """How far one image lies from each model's training images (1 = the edge of what the
    model saw; None when a card has no statistics)."""

    distances: dict[str, float | None]

    def best(self) -> str | None:
        """The model whose training images the image is closest to (None without statistics).

        Models trained on the same images lie at (nearly) the same distance: among those within
        `SAME_DISTANCE` of the closest, the first in `distances`' order wins (`measure_fit` puts
        the best test Dice first).
        """
        known = {k: v for k, v in self.distances.items() if v is not None}
        if not known:
            return None
        closest = min(known.values())
        return next(k for k, v in known.items() if v <= closest * SAME_DISTANCE)

    def mismatch(self, model: str) -> tuple[bool, str | None]:
        """(the image does not suit ``model``, a model that suits it better or None)."""
        own = self.distances.get(model)
        if own is None:
            return False, None
        best = self.best()
        better = None
        if best != model and best is not None:
            other = self.distances[best]
            if other is not None and other <= 1.0 and other < CLEARLY_CLOSER * own:
                better = best
        return own > 1.0 or better is not None, better


def measure_fit(pixels: np.ndarray, entries: list[ModelEntry]) -> Fit:
    """The image's distance to every model's training statistics, best test Dice first."""
    ranked = sorted(entries, key=lambda e: -(e.test_dice or 0.0))
    return Fit(
        {
            e.name: distance(e.card.get("image_stats"), pixels)
            if usable(e.card.get("image_stats"))
            else None
            for e in ranked
        }
    )


def kind_of(entry: ModelEntry) -> str:
    """What a model's training images were, in words (``skin-lesion photos``)."""
    return KIND.get(entry.family, f"{entry.dataset} images")


def mismatch_message(fit: Fit, entry: ModelEntry, entries: list[ModelEntry]) -> str | None:
    """A plain-words warning when the image does not look like ``entry``'s training images, naming
    a model that fits (None when it looks alike)."""
    off, better = fit.mismatch(entry.name)
    if not off:
        return None
    text = (
        f"This image does not look like the {kind_of(entry)} that {entry.name} was trained on "
        "(its colours and texture are far from all of them), so this mask is likely wrong."
    )
    by_name = {e.name: e for e in entries}
    if better is not None:
        text += (
            f" It looks like the {kind_of(by_name[better])} of {better}: choose that model, or "
            '"Automatic", in the sidebar.'
        )
    return text
