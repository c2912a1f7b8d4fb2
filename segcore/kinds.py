"""The kind of a nuclei image (fluorescence, bright-field or H&E / colour stain) from its pixels.

The rule, from two statistics of the whole RGB image scaled to [0, 1]:

1. ``background`` = the median luma (ITU-R 601). Nuclei cover a minority of a field, so the
   median is the background. Under ``DARK_BACKGROUND`` (0.3) the image is **fluorescence**:
   bright objects on a dark field, whatever the colour of the dye; unless the median pixel
   itself is coloured (its max - min channel over ``STAINED_FIELD``, 0.1): a fluorescence
   background is black, while a densely stained tissue section (MoNuSeg H&E tiles with a median
   luma of 0.26-0.29 and a median channel spread of 0.21-0.28) is dark and coloured: **he**.
2. Otherwise (a light field, transmitted light) ``colour`` = the mean over pixels of
   max(R, G, B) - min(R, G, B). Over ``COLOUR`` (0.02) the image is **he**: a colour stain
   (H&E, haematoxylin, Giemsa, ...); else **brightfield**: a grey transmitted-light image.

Checked on all 600 images of DSB 2018 stage1_train (kinds set by looking at the images): the
statistics fall in separate clusters: fluorescence has a median luma of at most 0.17 and no
colour (0.0); bright-field a median of 0.89-0.91 and no colour; H&E a median of 0.41-0.85 and a
colour of at least 0.047. The rule puts 492 / 13 / 95 images in the three kinds with no
image confused (``python -m bench.kinds --data DSB_DIR`` prints the table). Skin-lesion photos
are not microscopy: a model trained on them has the kind `LESION` (`training_kind`).

`scores_by_kind` summarises per-image score rows per kind beside the overall mean, as
evaluation and the model cards report them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

KINDS = ("fluorescence", "brightfield", "he")
#: Median luma under which the field is dark (fluorescence).
DARK_BACKGROUND = 0.3
#: Mean per-pixel channel spread over which a light-field image is colour stained.
COLOUR = 0.02
#: Channel spread of the median pixel over which a dark field is stained tissue, not fluorescence.
STAINED_FIELD = 0.1
#: The kind of a model's images when they are skin-lesion photos, not microscopy.
LESION = "lesion"
#: The images of these data sets are not microscopy: evaluation reports no kinds for them.
NOT_MICROSCOPY = ("isic",)
_LUMA = np.array([0.299, 0.587, 0.114])


def _rgb(image: np.ndarray) -> np.ndarray:
    """An HxW or HxWx3(+) uint8 image as HxWx3 float32 in [0, 1]."""
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[..., None].repeat(3, axis=2)
    return pixels[..., :3].astype(np.float32) / 255.0


def kind_statistics(image: np.ndarray) -> tuple[float, float]:
    """(background, colour) of an HxW or HxWx3 uint8 image, both in [0, 1] (see the module)."""
    rgb = _rgb(image)
    background = float(np.median(rgb @ _LUMA.astype(np.float32)))
    colour = float((rgb.max(axis=2) - rgb.min(axis=2)).mean())
    return background, colour


def image_kind(image: np.ndarray) -> str:
    """The kind of a nuclei image: ``fluorescence``, ``brightfield`` or ``he`` (see the module)."""
    background, colour = kind_statistics(image)
    if background < DARK_BACKGROUND:
        rgb = _rgb(image)
        stained = float(np.median(rgb.max(axis=2) - rgb.min(axis=2))) > STAINED_FIELD
        return "he" if stained else "fluorescence"
    return "he" if colour > COLOUR else "brightfield"


def training_kind(image: np.ndarray, dataset: str | None) -> str:
    """The kind a training image of ``dataset`` counts as in its model's card: its `image_kind`,
    or `LESION` when the data set is not microscopy."""
    return image_kind(image) if reports_kinds(dataset) else LESION


def invert_brightfield(image: np.ndarray) -> np.ndarray:
    """A uint8 RGB image inverted (255 - value) when it is bright-field, else unchanged: the
    pre-processing of models whose card says ``"invert_brightfield": true``."""
    return 255 - image if image_kind(image) == "brightfield" else image


def invert_brightfield_all(images) -> None:
    """`invert_brightfield` on every image of a uint8 batch array or list, in place."""
    for i in range(len(images)):
        images[i] = invert_brightfield(images[i])


def reports_kinds(dataset: str | None) -> bool:
    """Whether evaluation of a model trained on ``dataset`` reports scores per image kind."""
    return dataset not in NOT_MICROSCOPY


def _mean(rows: Sequence[dict], name: str) -> float:
    values = [float(r[name]) for r in rows if name in r]
    return float(np.mean(values)) if values else float("nan")


def scores_by_kind(
    rows: Sequence[dict], kinds: Iterable[str], names: Iterable[str]
) -> dict[str, dict[str, float]]:
    """Mean of each score in ``names`` per image kind, and over all rows as ``all``.

    ``kinds`` gives each row's kind, in the order of ``rows``. Every kind present gets
    {"n_images": N, name: mean, ...}; kinds with no image are left out.
    """
    kinds = list(kinds)
    if len(kinds) != len(rows):
        raise ValueError(f"{len(kinds)} kinds for {len(rows)} score rows")
    names = list(names)
    groups: dict[str, list[dict]] = {"all": list(rows)}
    for kind in KINDS:
        groups[kind] = [r for r, k in zip(rows, kinds, strict=True) if k == kind]
    return {
        group: {"n_images": len(members), **{n: _mean(members, n) for n in names}}
        for group, members in groups.items()
        if members
    }
