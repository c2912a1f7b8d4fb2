"""The percentile normalisation: what it maps where, and that the engine applies it per image."""

from __future__ import annotations

import numpy as np

from segcore.inference.preprocess import (
    PERCENTILE_CLIP,
    normalize_input,
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


def test_the_same_scene_at_any_exposure_or_bit_depth_gives_the_same_input():
    dim8 = ramp(10, 60, np.uint8)
    bright16 = (dim8.astype(np.uint16) * 1000 + 500).astype(np.uint16)
    a = normalize_input(to_model_input(dim8), "percentile")
    b = percentile_normalize(bright16.astype(np.float32), percentile_range(bright16))
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_divide_by_255_is_left_alone_and_a_flat_image_stays_finite():
    x = to_model_input(ramp(0, 255, np.uint8))
    assert normalize_input(x.copy(), "divide_by_255") is not None
    np.testing.assert_array_equal(normalize_input(x.copy(), "divide_by_255"), x)
    flat = np.full((8, 8, 3), 0.3, np.float32)
    out = normalize_input(flat, "percentile")
    assert np.isfinite(out).all()


def test_colours_keep_their_balance():
    image = np.zeros((50, 50, 3), np.uint8)
    image[..., 0], image[..., 2] = 200, 50
    image[:5, :5] = 0
    y = normalize_input(to_model_input(image), "percentile")
    assert y[20, 20, 0] > y[20, 20, 2] > y[0, 0, 1]
