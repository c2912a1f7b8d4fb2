"""``segcore.inference.tiling``: overlapping tiles equal whole-image prediction where one tile fits, and
Gaussian blending leaves no seams (numpy models here; the ONNX engine in test_instance_engine)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from segcore.inference.tiling import gaussian_weights, predict_tiled, window_starts


def blur_model(batch: np.ndarray) -> np.ndarray:
    """A position-dependent 'model': 5x5 mean filter of channel 0 with zero padding, 2 outputs."""
    out = ndimage.uniform_filter(batch[..., 0], size=(1, 5, 5), mode="constant")
    return np.stack([out, 1.0 - out], axis=-1)


def test_window_starts_cover_and_end_flush():
    assert window_starts(100, 128, 0.25) == [0]
    starts = window_starts(300, 128, 0.25)
    assert starts[0] == 0 and starts[-1] == 300 - 128
    assert all(b - a <= 96 for a, b in zip(starts, starts[1:], strict=False))


def test_gaussian_weights_peak_in_the_centre():
    w = gaussian_weights(32, 48)
    assert w.shape == (32, 48) and w.max() == pytest.approx(1.0)
    assert w.min() > 0 and w[16, 24] > w[0, 0]


@pytest.mark.parametrize("shape", [(64, 64), (50, 60), (17, 64)])
def test_one_tile_equals_whole_image(shape):
    rng = np.random.default_rng(0)
    image = rng.random((*shape, 3)).astype(np.float32)
    tiled = predict_tiled(image, blur_model, tile=64, overlap=0.25, multiple=16)
    padded_h, padded_w = -(-shape[0] // 16) * 16, -(-shape[1] // 16) * 16
    padded = np.pad(
        image, ((0, padded_h - shape[0]), (0, padded_w - shape[1]), (0, 0)), "symmetric"
    )
    whole = blur_model(padded[None])[0][: shape[0], : shape[1]]
    assert tiled.shape == (*shape, 2)
    np.testing.assert_allclose(tiled, whole, atol=1e-6)


def test_constant_model_gives_constant_map():
    image = np.random.default_rng(1).random((300, 410, 3)).astype(np.float32)

    def constant(batch: np.ndarray) -> np.ndarray:
        return np.full((*batch.shape[:3], 2), (0.25, 0.7), dtype=np.float32)

    out = predict_tiled(image, constant, tile=64, overlap=0.25, multiple=16)
    np.testing.assert_allclose(out[..., 0], 0.25, atol=1e-6)
    np.testing.assert_allclose(out[..., 1], 0.7, atol=1e-6)


def test_pointwise_model_is_seamless():
    """A model that returns its input passes through tiling unchanged: no seams, no shifts."""
    image = np.random.default_rng(2).random((200, 333, 3)).astype(np.float32)
    out = predict_tiled(
        image, lambda b: b[..., :2], tile=64, overlap=0.5, multiple=16, batch_size=3
    )
    np.testing.assert_allclose(out, image[..., :2], atol=1e-5)


def test_bad_tile_settings():
    image = np.zeros((20, 20, 3), np.float32)
    with pytest.raises(ValueError, match="multiple"):
        predict_tiled(image, blur_model, tile=50, overlap=0.25, multiple=16)
    with pytest.raises(ValueError, match="overlap"):
        predict_tiled(image, blur_model, tile=64, overlap=1.0, multiple=16)


def test_a_one_pixel_high_image_is_tiled_without_a_padded_copy():
    image = np.random.default_rng(0).random((1, 3000, 2)).astype(np.float32)
    shapes = []

    def run(batch: np.ndarray) -> np.ndarray:
        shapes.append(batch.shape)
        return batch * 2

    out = predict_tiled(image, run, tile=64, overlap=0.25, multiple=16)
    np.testing.assert_allclose(out, image * 2, rtol=1e-6)
    assert out.shape == image.shape and {s[1:3] for s in shapes} == {(16, 64)}
