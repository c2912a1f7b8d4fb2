"""Which shipped model suits an image: its distance to each model's training images.

Each card's ``image_stats`` (`segcore.imagestats`) describe the images the model was trained
on; `measure_fit` gives an image's distance to every model (1 = the edge of what the model saw),
`Fit.best` the model to use (what ``segcore.predict --model auto`` and the app's "Automatic"
choose) and `Fit.mismatch` whether a chosen model is unsuited and which one would suit. A card
without ``image_stats`` is never chosen automatically and never warned about. Pure numpy +
Pillow, used by the app and the CLI alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from segcore.imagestats import distance, neg_log_likelihood, usable
from segcore.preprocess import ImageSource, open_image

#: Another model fits "clearly better" when its distance is below this share of the chosen one's.
CLEARLY_CLOSER = 0.5
#: Fits (negative log-likelihoods) within this of the best count as equally good (models of the
#: same training images have the same statistics).
SAME_FIT = 0.05
#: Side of the thumbnail the fit is measured on (the features use a smaller one).
FIT_SIDE = 256
#: What each data-set family's images are, in words.
KIND = {"isic": "skin-lesion photos", "dsb": "microscopy images of cell nuclei"}
#: Data-set families with their own words (a card's dataset may carry a suffix: ``dsb256``).
FAMILIES = tuple(KIND)


@dataclass(frozen=True)
class Fit:
    """How far one image lies from each model's training images (``distances``: 1 = the edge of
    what the model saw; None when a card has no statistics) and how likely it is under them
    (``likelihoods``: negative log-likelihood, comparable between models; defaults to the
    distances)."""

    distances: dict[str, float | None]
    likelihoods: dict[str, float | None] = field(default_factory=dict)

    def best(self) -> str | None:
        """The model whose training images explain the image best (None without statistics).

        Models trained on the same images fit equally well (within `SAME_FIT`): among them, the
        first in `distances`' order wins (`measure_fit` puts the best test Dice first).
        """
        scores = self.likelihoods or self.distances
        known = {k: v for k, v in scores.items() if v is not None}
        if not known:
            return None
        top = min(known.values())
        return next(k for k, v in known.items() if v <= top + SAME_FIT * max(1.0, abs(top)))

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


def card_dice(card: Mapping) -> float:
    """A card's mean test Dice (0 when not recorded): the order among equally close models."""
    value = (card.get("test_metrics") or {}).get("dice")
    return float(value) if isinstance(value, int | float) else 0.0


def measure_fit(pixels: np.ndarray, cards: Mapping[str, Mapping]) -> Fit:
    """The image's distance to, and likelihood under, every model's training statistics
    (``cards``: name -> card), best test Dice first."""
    ranked = [
        (name, card.get("image_stats") if usable(card.get("image_stats")) else None)
        for name, card in sorted(cards.items(), key=lambda item: -card_dice(item[1]))
    ]
    return Fit(
        {name: None if stats is None else distance(stats, pixels) for name, stats in ranked},
        {
            name: None if stats is None else neg_log_likelihood(stats, pixels)
            for name, stats in ranked
        },
    )


def fit_pixels(source: ImageSource, side: int = FIT_SIDE) -> np.ndarray:
    """A small RGB version of an image file (JPEGs decode at reduced scale) to measure the fit
    on, its intensities mapped as every model's input is before one is chosen
    (`segcore.model_input.plain_view`: a 16-bit file by its bit depth); raises ImageError
    naming the file."""
    from segcore.model_input import plain_view, raw_pixels

    img = open_image(source, draft_size=(side, side))
    img.thumbnail((side, side))
    return plain_view(raw_pixels(img))


def family(card: Mapping) -> str:
    """The data-set family (``isic``, ``dsb``) a card's dataset name starts with, else the name."""
    name = str(card.get("dataset") or "?").lower()
    return next((f for f in FAMILIES if name.startswith(f)), name)


def kind_of(card: Mapping) -> str:
    """What a model's training images were, in words (``skin-lesion photos``)."""
    return KIND.get(family(card), f"{card.get('dataset') or '?'} images")


def mismatch_line(fit: Fit, model: str, cards: Mapping[str, Mapping]) -> str | None:
    """One plain line when the image does not look like ``model``'s training images, naming a
    model that fits (None when it looks alike)."""
    off, better = fit.mismatch(model)
    if not off:
        return None
    text = f"does not look like the {kind_of(cards[model])} {model} was trained on"
    if better is None:
        return text + " (nor like any other model's); its result is likely wrong"
    return text + f"; it looks like the {kind_of(cards[better])} of {better} (use --model auto)"
