"""Intensity mapping: from a file's pixel values to the model's [0, 1] input, once per image.

The card's ``intensity`` entry names the rule (default `DEFAULT_RULE`):

- ``divide_by_255``: 8-bit pixels / 255, what every model here was trained on; used for 8-bit
  files whatever the card says, so a PNG and the same pixels in a TIFF give the same result;
- ``dtype_range``: integer pixels / the largest value of their type (65535 for 16-bit), for
  files that use their type's whole range;
- ``bit_depth`` (the default): integer pixels / (2**b - 1), b the smallest of 8, 10, 12, 14, 16
  or 32 bits that holds the largest sampled value: a 12-bit camera's image in a 16-bit file is
  divided by 4095, a full-range 16-bit one by 65535, as an 8-bit image is divided by 255 (the
  detector's range, not the scene's, so dim and bright images keep their difference, as in
  training); float files in [0, 1] or [0, 255] by that range; other values (32-bit integers,
  negative or larger floats) by their own min..max, with a `segcore.inference.preprocess.RangeWarning`;
- ``percentile``: for 16-bit, 32-bit and float files, an affine map fitted once per image on a
  sample of its pixels: the ``low`` and ``high`` percentiles go to ``target_low`` and
  ``target_high``, the same percentiles of the model's training images (/255), so a 16-bit image
  looks to the model like the 8-bit images it learnt from. Values are clipped to [0, 1].

A card may instead say ``"normalization": "percentile"`` (`percentile_normalization`, StarDist's
normaliser, `segcore.inference.preprocess.percentile_normalize`): any dtype, 8-bit included, goes straight
to ``(v - p_low) / (p_high - p_low)``, p_low and p_high the card's ``normalization_percentiles``
of the image over all its channels together, clipped to `segcore.inference.preprocess.PERCENTILE_CLIP`.
The intensity rule then only makes the image's 8-bit view (overlays, the image's kind).

`fit_mapping` samples a whole image through a region reader (a grid of small windows), so a
whole slide is never read at once, and every block of a mosaic is mapped the same way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from segcore.inference.preprocess import (
    PERCENTILE_CLIP,
    PERCENTILES,
    RangeWarning,
    percentile_range,
)

RULES = ("divide_by_255", "bit_depth", "dtype_range", "percentile")
#: The mapping rule of a card with ``"normalization": "percentile"`` (`percentile_normalization`).
PERCENTILE_NORMALIZATION = "percentile_normalization"
#: The bit depths `bit_depth` chooses from.
BIT_DEPTHS = (8, 10, 12, 14, 16, 32)
#: The DSB nuclei training split (480 images, luma / 255): median over images of each image's
#: 1st and 99.8th percentile (bench/mosaic.py --training-percentiles measures it).
DEFAULT_RULE = {
    "rule": "bit_depth",
    "low": 1.0,
    "high": 99.8,
    "target_low": 0.012,
    "target_high": 0.357,
}
#: Side of the windows `fit_mapping` samples, and how many per axis at most.
SAMPLE_WINDOW = 256
SAMPLE_GRID = 8

Reader = Callable[[int, int, int, int], np.ndarray]


@dataclass(frozen=True)
class IntensityMapping:
    """``clip(y, low, high)`` with ``y = (x - offset) * scale``, or ``1 - y`` when ``invert``
    (a bright-field image for a card with ``invert_brightfield``), with the rule it came from."""

    rule: str
    offset: float = 0.0
    scale: float = 1.0 / 255.0
    invert: bool = False
    low: float = 0.0
    high: float = 1.0

    def apply(self, pixels: np.ndarray, clip: bool = True) -> np.ndarray:
        """HxWxC float32 model input (in [low, high]; not clipped yet with ``clip`` False)."""
        x = (pixels.astype(np.float32) - np.float32(self.offset)) * np.float32(self.scale)
        if self.invert:
            np.subtract(np.float32(1.0), x, out=x)
        return self.clip(x) if clip else x

    def clip(self, x: np.ndarray) -> np.ndarray:
        """``x`` (float32, changed in place) clipped to [low, high] where the rule needs it."""
        if self.rule in ("divide_by_255", "dtype_range"):  # in [0, 1] by construction
            return x
        return np.clip(x, np.float32(self.low), np.float32(self.high), out=x)

    def to_json(self) -> dict:
        """The mapping as written beside the outputs."""
        return {
            "rule": self.rule,
            "offset": self.offset,
            "scale": self.scale,
            "invert": self.invert,
            "clip": [self.low, self.high],
        }


class CheckedCard(Protocol):
    """A card read and checked (`segcore.card.ModelCard`, which reads its rules from here)."""

    @property
    def intensity(self) -> dict:
        """The card's intensity rule, checked, defaults filled in."""
        ...


def card_rule(card: CheckedCard | Mapping) -> dict:
    """The ``intensity`` rule of a card (a `segcore.card.ModelCard` or its dict) with defaults
    filled in; ValueError for an unknown rule (`segcore.card` checks it when a card is read)."""
    if not isinstance(card, Mapping):  # a ModelCard's rule, checked when it was read
        return card.intensity
    rule = {**DEFAULT_RULE, **(card.get("intensity") or {})}
    if rule["rule"] not in RULES:
        raise ValueError(f"unknown intensity rule {rule['rule']!r} (expected one of {RULES})")
    return rule


def percentile_normalization(
    sample: np.ndarray, percentiles: tuple[float, float] = PERCENTILES, invert: bool = False
) -> IntensityMapping:
    """StarDist's normaliser fitted on ``sample`` (an image, or N x C pixels of one): its
    ``percentiles`` over all channels together (`segcore.inference.preprocess.percentile_range`) go to 0
    and 1, values clipped to `segcore.inference.preprocess.PERCENTILE_CLIP`; any dtype. ``invert``
    normalises the inverted image (its percentiles, not 1 - x: the same as inverting the pixels
    first, as training does), a flat image is only shifted."""
    values = np.asarray(sample)
    sign = -1.0 if invert else 1.0
    low, high = percentile_range(values.astype(np.float32) * np.float32(sign), percentiles)
    scale = 1.0 / (high - low) if high > low else 1.0
    low_clip, high_clip = PERCENTILE_CLIP
    return IntensityMapping(
        PERCENTILE_NORMALIZATION, sign * low, sign * scale, False, low_clip, high_clip
    )


def sample_pixels(read: Reader, height: int, width: int) -> np.ndarray:
    """Pixels of up to SAMPLE_GRID x SAMPLE_GRID windows spread evenly over the image (all of a
    small image), as an N x C array."""
    ys = _window_starts(height)
    xs = _window_starts(width)
    parts = [
        read(y, min(y + SAMPLE_WINDOW, height), x, min(x + SAMPLE_WINDOW, width))
        for y in ys
        for x in xs
    ]
    return np.concatenate([p.reshape(-1, p.shape[-1]) for p in parts])


def _window_starts(length: int) -> list[int]:
    if length <= SAMPLE_WINDOW * SAMPLE_GRID:
        return list(range(0, length, SAMPLE_WINDOW))
    return [int(v) for v in np.linspace(0, length - SAMPLE_WINDOW, SAMPLE_GRID)]


def fit_mapping(dtype: np.dtype, rule: dict, sample: Callable[[], np.ndarray]) -> IntensityMapping:
    """The mapping for an image of ``dtype`` under the card ``rule``; ``sample`` (called only for
    the percentile rule) returns an N x C array of the image's pixels."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return IntensityMapping("divide_by_255")
    if rule["rule"] in ("dtype_range", "divide_by_255"):  # /255 of a wider type: its range
        top = float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0
        return IntensityMapping("dtype_range", 0.0, 1.0 / top)
    integer = np.issubdtype(dtype, np.integer)
    if rule["rule"] == "bit_depth":
        values = np.asarray(sample())
        finite = values[np.isfinite(values)] if not integer else values
        low, top = float(np.min(finite, initial=0)), float(np.max(finite, initial=0))
        if integer and low >= 0 and top <= 2**16 - 1:
            bits = next(b for b in BIT_DEPTHS if top <= 2**b - 1)
            return IntensityMapping("bit_depth", 0.0, 1.0 / (2**bits - 1))
        if not integer and low >= 0 and top <= 255:  # float images in [0, 1] or [0, 255]
            return IntensityMapping("bit_depth", 0.0, 1.0 if top <= 1 else 1.0 / 255.0)
        warnings.warn(
            f"pixel values {low:g}..{top:g} are outside 0..255: mapped by their range",
            RangeWarning,
            stacklevel=2,
        )
        return IntensityMapping("range", low, 1.0 / max(top - low, 1e-12))
    values = sample().astype(np.float64)
    values = values.mean(axis=-1) if values.ndim == 2 else values
    values = values[np.isfinite(values)]
    if values.size == 0:
        return IntensityMapping("percentile", 0.0, 1.0)
    low, high = np.percentile(values, [rule["low"], rule["high"]])
    t_low, t_high = float(rule["target_low"]), float(rule["target_high"])
    span = float(high - low)
    scale = (t_high - t_low) / span if span > 0 else 1.0
    return IntensityMapping("percentile", float(low) - t_low / scale, scale)
