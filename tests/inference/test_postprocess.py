"""Mask clean-up and component counting on crafted masks."""

import numpy as np
import pytest
from scipy import ndimage
from synthetic_images import box_labels

import segcore.inference.postprocess as postprocess
from segcore.inference.postprocess import (
    Postprocess,
    count_components,
    fill_holes,
    keep_largest_component,
    to_image_size,
)
from segcore.inference.preprocess import resize_probabilities


def squares(*boxes: tuple[int, int, int, int], shape=(20, 20)) -> np.ndarray:
    """A bool mask with the filled boxes (y0, x0, y1, x1)."""
    return box_labels(*boxes, shape=shape) > 0


def test_count_components_is_four_connected():
    assert count_components(np.zeros((5, 5), bool)) == 0
    assert count_components(squares((0, 0, 3, 3), (10, 10, 12, 12), (15, 0, 20, 5))) == 3
    diagonal = np.eye(4, dtype=bool)  # pixels touching only at corners
    assert count_components(diagonal) == 4


def test_keep_largest_component():
    mask = squares((0, 0, 3, 3), (5, 5, 15, 15), (17, 17, 19, 19))
    assert np.array_equal(keep_largest_component(mask), squares((5, 5, 15, 15)))
    empty = np.zeros((4, 4), bool)
    assert not keep_largest_component(empty).any()


def test_fill_holes_fills_enclosed_background_only():
    ring = squares((2, 2, 12, 12))
    ring[5:8, 5:8] = False  # enclosed hole
    open_notch = squares((14, 0, 20, 8))
    open_notch[16:18, 0:3] = False  # touches the border: not a hole
    mask = ring | open_notch
    filled = fill_holes(mask)
    assert filled[5:8, 5:8].all()
    assert not filled[16:18, 0:3].any()
    assert np.array_equal(filled, ndimage.binary_fill_holes(mask))


def test_fill_holes_edge_cases():
    full = np.ones((6, 6), bool)
    assert fill_holes(full).all()
    empty = np.zeros((6, 6), bool)
    assert not fill_holes(empty).any()


def test_fill_holes_matches_scipy_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((30, 40)) > 0.45
        assert np.array_equal(fill_holes(mask), ndimage.binary_fill_holes(mask))


def test_defaults_by_dataset_and_json_round_trip():
    assert Postprocess.for_dataset("isic") == Postprocess(keep_largest=True, fill_holes=True)
    assert Postprocess.for_dataset("dsb") == Postprocess(keep_largest=False, fill_holes=True)
    assert Postprocess.for_dataset("plain") == Postprocess(keep_largest=False, fill_holes=True)
    settings = Postprocess(keep_largest=True, fill_holes=False)
    assert Postprocess.from_json(settings.to_json()) == settings
    assert Postprocess.from_json({}) == Postprocess()


def test_apply_runs_keep_largest_then_fill():
    big = squares((2, 2, 14, 14))
    big[6:9, 6:9] = False
    mask = big | squares((16, 16, 19, 19))
    out = Postprocess(keep_largest=True, fill_holes=True).apply(mask)
    assert np.array_equal(out, squares((2, 2, 14, 14)))
    assert np.array_equal(Postprocess.none().apply(mask), mask)


def blob_probabilities(shape=(32, 32)) -> np.ndarray:
    """A smooth model-size map: a big ring with a hole, a small far blob, a steep sigmoid."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    big = np.hypot(yy - 14, xx - 13)
    ring = (big < 10) & (big > 3)
    small = np.hypot(yy - 28, xx - 28) < 2.5
    field = ndimage.gaussian_filter((ring | small).astype(np.float32), 0.8)
    return 1 / (1 + np.exp(-20 * (field - 0.5)))


def test_image_size_small_image_is_cleaned_at_full_size():
    prob = blob_probabilities()
    settings = Postprocess(keep_largest=True, fill_holes=True)
    out = to_image_size(prob, (20, 24), 0.5, settings)
    full = resize_probabilities(prob, (20, 24))
    assert out.probability.dtype == np.float16 and out.mask.dtype == bool
    np.testing.assert_allclose(out.probability, full, atol=1e-3)
    assert np.array_equal(out.mask, settings.apply(full > 0.5))


@pytest.mark.parametrize("size", [(320, 288), (97, 400), (1000, 50)])
def test_image_size_large_image_matches_full_size_cleanup(size, monkeypatch):
    monkeypatch.setattr(postprocess, "STRIP_ROWS", 37)  # several strips, one ragged
    prob = blob_probabilities()
    full = resize_probabilities(prob, size)
    for settings in (Postprocess(True, True), Postprocess(False, True), Postprocess.none()):
        out = to_image_size(prob, size, 0.5, settings)
        np.testing.assert_allclose(out.probability, full, atol=1e-3)
        reference = settings.apply(full > 0.5)
        # cleaned at model resolution and upsampled: the same mask up to boundary pixels
        assert np.count_nonzero(out.mask != reference) <= 0.002 * reference.size
        assert out.components == count_components(settings.apply(prob > 0.5))
    kept = to_image_size(prob, size, 0.5, Postprocess(True, True))
    raw = to_image_size(prob, size, 0.5, Postprocess.none())
    assert count_components(raw.mask) == 2 and count_components(kept.mask) == 1
    assert kept.mask.sum() > raw.mask.sum() - (full > 0.5)[int(size[0] * 0.8) :].sum()


def test_image_size_strips_equal_one_resize(monkeypatch):
    prob = blob_probabilities()
    whole = to_image_size(prob, (300, 310), 0.5, Postprocess.none())
    monkeypatch.setattr(postprocess, "STRIP_ROWS", 7)
    strips = to_image_size(prob, (300, 310), 0.5, Postprocess.none())
    # Pillow samples a sub-box where the whole resize does; sums may round differently
    np.testing.assert_allclose(strips.probability, whole.probability, atol=1e-3)
    assert np.count_nonzero(strips.mask != whole.mask) <= 0.0005 * whole.mask.size
