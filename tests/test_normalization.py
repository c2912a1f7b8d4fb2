"""The percentile normalisation: what it maps where, and that the engine applies it per image."""

from __future__ import annotations

import numpy as np

from segcore.inference.preprocess import (
    PERCENTILE_CLIP,
    percentile_normalize,
    percentile_range,
    to_model_input,
)


def ramp(low: int, high: int, dtype=np.uint16) -> np.ndarray:
    """A 100x100x3 image whose values run evenly from ``low`` to ``high``."""
    values = np.linspace(low, high, 100 * 100).reshape(100, 100)
    return np.repeat(values[..., None], 3, axis=2).astype(dtype)


def test_percentiles_go_to_zero_and_one():
    image = ramp(100, 4095)
    low, high = percentile_range(image, (1.0, 99.8))
    y = percentile_normalize(image.astype(np.float32), (low, high))
    assert abs(float(np.percentile(y, 1.0))) < 1e-3
    assert abs(float(np.percentile(y, 99.8)) - 1.0) < 1e-3
    assert y.min() >= PERCENTILE_CLIP[0] and y.max() <= PERCENTILE_CLIP[1]


def normalized(image: np.ndarray) -> np.ndarray:
    """The percentile normalisation of an image by its own range."""
    return percentile_normalize(image.astype(np.float32), percentile_range(image))


def test_the_same_scene_at_any_exposure_or_bit_depth_gives_the_same_input():
    dim8 = ramp(10, 60, np.uint8)
    bright16 = (dim8.astype(np.uint16) * 1000 + 500).astype(np.uint16)
    a = percentile_normalize(to_model_input(dim8), percentile_range(to_model_input(dim8)))
    np.testing.assert_allclose(a, normalized(bright16), atol=1e-4)


def test_a_flat_image_stays_finite():
    out = normalized(np.full((8, 8, 3), 77, np.uint8))
    assert np.isfinite(out).all() and abs(float(out.max())) < 1e-6


def test_colours_keep_their_balance():
    image = np.zeros((50, 50, 3), np.uint8)
    image[..., 0], image[..., 2] = 200, 50
    image[:5, :5] = 0
    y = normalized(image)
    assert y[20, 20, 0] > y[20, 20, 2] > y[0, 0, 1]
