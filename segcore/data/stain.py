"""Stain and modality measures for H&E and bright-field nuclei images (options, not defaults).

- `stain_jitter`: HED-space colour augmentation (Tellez et al. 2018): each colour-stained image
  is taken into haematoxylin / eosin / DAB optical densities (-log of the intensity through
  scikit-image's Ruifrok-Johnston matrices, an exact round trip), each density scaled by U(1-s, 1+s) and shifted by U(-s, s) times its image's range,
  and taken back to RGB. Images that are not colour stained (`segcore.kinds`) are left alone:
  fluorescence and bright-field images carry no stain to vary. ``segcore.commands.train --stain-jitter S``.
- `segcore.kinds.invert_brightfield`: a bright-field image (dark nuclei on a light field)
  inverted to look like fluorescence (bright nuclei on a dark field), the kind the training set
  holds most of. ``segcore.commands.train --invert-brightfield`` inverts the training and validation
  images so; the card records ``"invert_brightfield": true`` and the engine then inverts every
  bright-field image before the model.
Whether either lifts the H&E / bright-field scores is to be measured on validation (GPU job).
"""

from __future__ import annotations

import numpy as np
from skimage.color import hed_from_rgb, rgb_from_hed

from segcore.kinds import image_kind

#: Intensities are clipped at this before the logarithm (a black pixel has a finite density).
OD_FLOOR = 1.0 / 255.0


def _stained(image01: np.ndarray) -> bool:
    """Whether a float [0, 1] RGB image is colour stained (kind ``he``)."""
    return image_kind(np.clip(image01 * 255.0, 0, 255).astype(np.uint8)) == "he"


def jitter_hed(image01: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """One float [0, 1] HxWx3 RGB image with its H, E and D densities randomly scaled and
    shifted by ``strength`` (see the module); float32 in [0, 1]."""
    density = -np.log(np.clip(image01.astype(np.float64), OD_FLOOR, 1.0))
    hed = density @ hed_from_rgb
    scale = rng.uniform(1 - strength, 1 + strength, size=3)
    span = hed.reshape(-1, 3).max(axis=0) - hed.reshape(-1, 3).min(axis=0)
    shift = rng.uniform(-strength, strength, size=3) * span
    rgb = np.exp(-((hed * scale + shift) @ rgb_from_hed))
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)


def stain_jitter(x: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """`jitter_hed` on every colour-stained image of a float32 NHWC RGB batch (in place too)."""
    if strength <= 0 or x.shape[-1] != 3:
        return x
    for i in range(x.shape[0]):
        if _stained(x[i]):
            x[i] = jitter_hed(x[i], rng, strength)
    return x
