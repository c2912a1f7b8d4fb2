"""Does an image suit a model? `segcore.modelfit` over the app's model entries, and the
plain-words warning the Segment page shows when it does not.

A model whose card has no ``image_stats`` is never warned about (nothing to compare against).
"""

from __future__ import annotations

import numpy as np

from segcore.app.model_choice import ModelEntry
from segcore.modelfit import Fit, kind_of
from segcore.modelfit import measure_fit as _measure_fit

__all__ = ["Fit", "measure_fit", "mismatch_message"]


def measure_fit(pixels: np.ndarray, entries: list[ModelEntry]) -> Fit:
    """The image's distance to every model's training statistics, best test Dice first (the
    same measure as ``segcore.commands.predict --model auto``)."""
    return _measure_fit(pixels, {e.name: e.card for e in entries})


def mismatch_message(fit: Fit, entry: ModelEntry, entries: list[ModelEntry]) -> str | None:
    """A plain-words warning when the image does not look like ``entry``'s training images, naming
    a model that fits (None when it looks alike)."""
    off, better = fit.mismatch(entry.name)
    if not off:
        return None
    text = (
        f"This image does not look like the {kind_of(entry.card)} that {entry.name} was trained "
        "on (its colours and texture are far from all of them), so this mask is likely wrong."
    )
    by_name = {e.name: e for e in entries}
    if better is not None:
        text += (
            f" It looks like the {kind_of(by_name[better].card)} of {better}: choose that model, "
            'or "Automatic", in the sidebar.'
        )
    return text
