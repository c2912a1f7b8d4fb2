"""Which shipped model suits an image: its kind, and its distance to each model's training images.

Each card's ``image_stats`` (`segcore.data.imagestats`) describe the images the model was trained
on, and its ``kinds`` which kinds of image they were (`segcore.kinds`: ``fluorescence``,
``brightfield``, ``he`` for nuclei; ``lesion`` for skin-lesion photos). `measure_fit` gives an
image's kind and its distance to every model (in units of that model's own threshold: 1 = the
edge of what the model saw), `Fit.best` the model to use (what ``segcore.commands.predict --model auto``
and the app's "Automatic" choose) and `Fit.mismatch` whether a model is unsuited and which one
would suit. The choice: the nearest model the image lies within (distance <= 1); when it lies
within none, the nearest model trained on its kind, with a warning (`mismatch_line`).

Models used to be compared by likelihood under their training statistics; a broad training set
(ISIC photos) then explains any image unlike both sets better than a narrow one, so H&E tiles
from labs outside DSB (MoNuSeg), which lie outside both sets, went to the lesion model. Distances
are each relative to what the model saw, and the kind rule is physics (a dark or light field,
grey or stained), so neither is tuned to one source: a new card's statistics (e.g. DSB and
MoNuSeg) are used as they are. A card without ``image_stats`` is never chosen automatically and
never warned about. Pure numpy + Pillow, used by the app and the CLI alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np

from segcore.card import ModelCard
from segcore.data.imagestats import distance, usable
from segcore.inference.preprocess import ImageSource, open_image
from segcore.kinds import KINDS, LESION, image_kind

#: Another model fits "clearly better" when its distance is below this share of the chosen one's.
CLEARLY_CLOSER = 0.5
#: Distances within this share of the nearest count as equally near (models of the same training
#: images have the same statistics): the first in `measure_fit`'s order wins.
SAME_FIT = 0.05
#: Side of the thumbnail the fit is measured on (the features use a smaller one).
FIT_SIDE = 256
#: What a model's training images were, in words, by their kind.
KIND_WORDS = {LESION: "skin-lesion photos"}
NUCLEI_WORDS = "microscopy images of cell nuclei"
#: Data-set families whose cards predate ``kinds``, and the kinds their images are.
FAMILY_KINDS = {"isic": (LESION,), "dsb": KINDS}

#: a card as the engine reads it, or its JSON dict (both answer ``.get``)
CardLike: TypeAlias = ModelCard | Mapping


@dataclass(frozen=True)
class Fit:
    """How far one image lies from each model's training images (``distances``: 1 = the edge of
    what the model saw; None when a card has no statistics), the image's ``kind`` and the kinds
    each model was trained on (``kinds``)."""

    distances: dict[str, float | None]
    kind: str | None = None
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: the kinds each model's card says Automatic should send it (``automatic_kinds``: chosen on
    #: validation, e.g. a specialist's kind); among the models an image fits, one that prefers
    #: the image's kind wins
    preferred: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def best(self) -> str | None:
        """The model to use (None without statistics): the nearest the image lies within; when
        it lies within none, the nearest trained on the image's kind (else the nearest). Among
        those, a model whose card prefers the image's kind (``automatic_kinds``) comes first.

        Models within `SAME_FIT` of the nearest count as equally near: among them the first in
        `distances`' order wins (`measure_fit` puts the best test Dice first).
        """
        known = {k: v for k, v in self.distances.items() if v is not None}
        inside = {k: v for k, v in known.items() if v <= 1.0}
        same_kind = {k: v for k, v in known.items() if self.kind in self.kinds.get(k, ())}
        pool = inside or same_kind or known
        if not pool:
            return None
        preferring = {k: v for k, v in pool.items() if self.kind in self.preferred.get(k, ())}
        pool = preferring or pool
        top = min(pool.values())
        return next(k for k, v in pool.items() if v <= top * (1 + SAME_FIT))

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


def card_dice(card: CardLike) -> float:
    """A card's mean test Dice (0 when not recorded): the order among equally close models."""
    value = (card.get("test_metrics") or {}).get("dice")
    return float(value) if isinstance(value, int | float) else 0.0


def card_kinds(card: CardLike) -> tuple[str, ...]:
    """The kinds of image a model was trained on: its card's ``kinds``, else those of its
    ``image_stats``, else its data-set family's (`FAMILY_KINDS`; any other: every nuclei kind)."""
    kinds = card.get("kinds") or (card.get("image_stats") or {}).get("kinds")
    if kinds:
        return tuple(kinds)
    return FAMILY_KINDS.get(family(card), KINDS)


def _distance(stats: object, pixels: np.ndarray) -> float | None:
    """`segcore.data.imagestats.distance` to usable statistics, else None."""
    return distance(stats, pixels) if usable(stats) and isinstance(stats, dict) else None


def measure_fit(pixels: np.ndarray, cards: Mapping[str, CardLike]) -> Fit:
    """The image's kind and its distance to every model's training statistics (``cards``:
    name -> card), best test Dice first."""
    ranked = sorted(cards.items(), key=lambda item: -card_dice(item[1]))
    return Fit(
        {name: _distance(card.get("image_stats"), pixels) for name, card in ranked},
        image_kind(pixels),
        {name: card_kinds(card) for name, card in ranked},
        {name: tuple(card.get("automatic_kinds") or ()) for name, card in ranked},
    )


def fit_pixels(source: ImageSource, side: int = FIT_SIDE) -> np.ndarray:
    """A small RGB version of an image file (JPEGs decode at reduced scale) to measure the fit
    on, its intensities mapped as every model's input is before one is chosen
    (`segcore.inference.model_input.plain_view`: a 16-bit file by its bit depth); raises ImageError
    naming the file."""
    from segcore.inference.model_input import plain_view, raw_pixels

    img = open_image(source, draft_size=(side, side))
    img.thumbnail((side, side))
    return plain_view(raw_pixels(img))


def family(card: CardLike) -> str:
    """The data-set family (``isic``, ``dsb``) a card's dataset name starts with, else the name."""
    name = str(card.get("dataset") or "?").lower()
    return next((f for f in FAMILY_KINDS if name.startswith(f)), name)


def kind_of(card: CardLike) -> str:
    """What a model's training images were, in words (``skin-lesion photos``)."""
    kinds = card_kinds(card)
    return KIND_WORDS.get(kinds[0], NUCLEI_WORDS) if len(kinds) == 1 else NUCLEI_WORDS


def mismatch_line(fit: Fit, model: str, cards: Mapping[str, CardLike]) -> str | None:
    """One plain line when the image does not look like ``model``'s training images, naming a
    model that fits (None when it looks alike)."""
    off, better = fit.mismatch(model)
    if not off:
        return None
    text = f"does not look like the {kind_of(cards[model])} {model} was trained on"
    if better is None:
        return text + " (nor like any other model's); its result is likely wrong"
    return text + f"; it looks like the {kind_of(cards[better])} of {better} (use --model auto)"
