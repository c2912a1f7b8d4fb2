"""The one input contract: an image's pixels, with what is known of them, become model input.

Every entry (`segcore.inference.engine.Engine` in memory, resized or tiled; the block-wise path of
`segcore.large.blockplan`; Automatic; the app's uploads; napari layers) turns pixels into model input
here, by the card's rules (`segcore.card.ModelCard`), in this order:

1. the pixels as decoded, of their own dtype, HxWxC (`raw_pixels`, `raw_array`): 8-bit colour
   as RGB, 16-bit, 32-bit and float grey levels as they are (never cut to 8 bits first);
2. one `ImageMapping` per image (`InputContract.fit`), fitted on the whole image or, for a
   file read block by block, on its image-wide sample (`segcore.inference.intensity.sample_pixels`), so
   every block is mapped alike. Its ``view`` maps the pixels to an 8-bit-like [0, 1] image by the
   card's ``intensity`` rule (8-bit / 255, wider types by bit depth, type range or percentiles);
   the image's kind (`segcore.kinds.image_kind`) is judged on that view. Its ``model`` maps them
   to the model's input: the card's ``normalization`` ``percentile`` (StarDist's per-image
   percentiles over all channels, any dtype straight from its raw values), else the view itself;
   ``invert_brightfield`` cards invert an image of the bright-field kind (before the
   percentiles are taken, as training does);
3. the model's channels (`InputContract.model_input`): one grey channel repeated for an RGB
   model, colour to ITU-R 601 luma for a one-channel model.

`InputContract.view` is the view as 8-bit RGB (never inverted): what overlays and thumbnails show.
Measurements (mean intensity) use the raw pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from segcore.errors import ImageError
from segcore.inference.intensity import (
    DEFAULT_RULE,
    IntensityMapping,
    card_rule,
    fit_mapping,
    percentile_normalization,
)
from segcore.inference.preprocess import LUMA_WEIGHTS, NORMALIZATION, PERCENTILES, to_rgb_array
from segcore.kinds import image_kind

if TYPE_CHECKING:  # segcore.card loads with the engine
    from segcore.card import ModelCard

#: Pillow modes whose pixels are grey levels wider than 8 bits (kept as they are).
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
#: The largest value a 16-bit grey level can have (a 32-bit "I" image within it is 16-bit).
UINT16_MAX = 65535


def as_rgb(x: np.ndarray) -> np.ndarray:
    """HxWx3 of HxWxC pixels: one (or two) channels give the first one three times, four or
    more their first three (RGB of RGBA)."""
    if x.shape[-1] == 3:
        return x
    if x.shape[-1] < 3:
        return np.repeat(x[..., :1], 3, axis=-1)
    return x[..., :3]


def raw_pixels(img: Image.Image) -> np.ndarray:
    """A decoded Pillow image as HxWxC pixels of its own type: 8-bit modes as HxWx3 RGB (alpha
    over black), 16-bit grey as uint16 (a 32-bit ``I`` image within 0..65535, as Pillow opens
    some 16-bit PNGs, too), other ``I`` images as int32 and ``F`` as float32, HxWx1."""
    if img.mode not in WIDE_MODES:
        return to_rgb_array(img)
    return raw_array(np.asarray(img))


def raw_array(array: np.ndarray, name: str = "<array>") -> np.ndarray:
    """Any image-like array (HxW, HxWxC; bool, integer or float) as HxWxC raw pixels: bool to
    0/255 uint8, integers within 0..65535 as uint16 (uint8 kept), other integers as int32 when
    they fit, floats as float32. ImageError naming ``name`` for any other shape."""
    a = np.asarray(array)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 2, 3, 4) or 0 in a.shape:
        raise ImageError(f"{name}: not an image array (shape {np.shape(array)}, {a.dtype})")
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype == np.uint8 or a.dtype == np.uint16:
        return a
    if np.issubdtype(a.dtype, np.integer):
        low, high = int(a.min()), int(a.max())
        if low >= 0 and high <= UINT16_MAX:
            return a.astype(np.uint16)
        if np.iinfo(np.int32).min <= low and high <= np.iinfo(np.int32).max:
            return a.astype(np.int32)
        return a.astype(np.float64)
    if np.issubdtype(a.dtype, np.floating):
        return a.astype(np.float32, copy=False)
    raise ImageError(f"{name}: unsupported pixel type {a.dtype}")


@dataclass(frozen=True)
class ImageMapping:
    """How one image's raw values become model input (``model``) and its 8-bit view (``view``)."""

    model: IntensityMapping
    view: IntensityMapping

    @property
    def rule(self) -> str:
        """The rule of the model's mapping (``divide_by_255``, ``bit_depth``, ...)."""
        return self.model.rule

    def to_json(self) -> dict:
        """The mapping as written beside the outputs."""
        return {**self.model.to_json(), "view": self.view.to_json()}


@dataclass(frozen=True)
class InputContract:
    """A card's rules for model input (see the module docstring)."""

    channels: int
    normalization: str
    percentiles: tuple[float, float]
    rule: dict
    invert_brightfield: bool

    @classmethod
    def of(cls, card: ModelCard) -> InputContract:
        """The contract of a `segcore.card.ModelCard`."""
        low, high = card.percentiles
        return cls(
            channels=int(card.channels),
            normalization=str(card.normalization),
            percentiles=(float(low), float(high)),
            rule=card_rule(card),
            invert_brightfield=bool(card.invert_brightfield),
        )

    def fit(self, dtype: np.dtype, sample: Callable[[], np.ndarray]) -> ImageMapping:
        """The one mapping of an image of ``dtype``; ``sample()`` gives its pixels (the whole
        image, or an image-wide N x C sample of them), called at most once."""
        cache: list[np.ndarray] = []

        def once() -> np.ndarray:
            if not cache:
                cache.append(np.asarray(sample()))
            return cache[0]

        view = fit_mapping(np.dtype(dtype), self.rule, once)
        invert = False
        if self.invert_brightfield:
            pixels = once()
            shown = _to_8bit(view.apply(as_rgb(pixels.reshape(-1, 1, pixels.shape[-1]))))
            invert = image_kind(shown) == "brightfield"
        if self.normalization == NORMALIZATION:
            return ImageMapping(replace(view, invert=invert), view)
        return ImageMapping(percentile_normalization(once(), self.percentiles, invert), view)

    def fit_image(self, pixels: np.ndarray) -> ImageMapping:
        """The mapping of a whole HxWxC image held in memory."""
        return self.fit(pixels.dtype, lambda: pixels)

    def model_input(self, pixels: np.ndarray, mapping: ImageMapping) -> np.ndarray:
        """HxWx(card channels) float32 model input of HxWxC raw ``pixels``."""
        x = mapping.model.apply(pixels, clip=False)
        if self.channels == 1:
            if x.shape[-1] != 1:
                x = (as_rgb(x) @ np.asarray(LUMA_WEIGHTS, dtype=np.float32))[..., None]
        else:
            x = np.ascontiguousarray(as_rgb(x))
        return mapping.model.clip(x)

    def view(self, pixels: np.ndarray, mapping: ImageMapping) -> np.ndarray:
        """The image as 8-bit RGB by its view mapping (overlays and thumbnails); 8-bit RGB
        pixels are returned as they are."""
        if mapping.view.rule == "divide_by_255" and pixels.dtype == np.uint8:
            return as_rgb(pixels)
        return _to_8bit(mapping.view.apply(as_rgb(pixels)))


def _to_8bit(x: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] (clipped) as uint8 0-255."""
    return np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


#: The contract of a card with every default (8-bit / 255, the default intensity rule, RGB): how
#: thumbnails and the model check (`segcore.modelfit`) see an image before a model is chosen.
PLAIN = InputContract(3, NORMALIZATION, PERCENTILES, dict(DEFAULT_RULE), False)


def plain_view(pixels: np.ndarray) -> np.ndarray:
    """HxWxC raw pixels as 8-bit RGB by the `PLAIN` contract (a 12-bit plane by its bit depth)."""
    return PLAIN.view(pixels, PLAIN.fit_image(pixels))
