"""``segcore.inference.instances``: training targets, watershed decoding, baselines and measurements."""

from __future__ import annotations

import numpy as np
import pytest

from segcore.inference.instances import (
    OBJECT_COLUMNS,
    DecodeSettings,
    decode,
    distance_watershed,
    instance_targets,
    labels_from_masks,
    measure_objects,
    normalized_distance,
    remove_small,
)


def disc(shape: tuple[int, int], cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def touching_discs(shape=(64, 96)) -> np.ndarray:
    """Labels of two discs of radius 15 whose edges touch along a vertical line at x = 48."""
    a, b = disc(shape, 32, 33, 15), disc(shape, 32, 63, 15)
    b &= ~a
    return labels_from_masks([a, b], shape)


def test_labels_from_masks_last_wins_on_overlap():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0:2, 0:2] = True
    b[1:3, 1:3] = True
    labels = labels_from_masks([a, b], (4, 4))
    assert labels.dtype == np.int32
    assert labels[0, 0] == 1 and labels[1, 1] == 2 and labels[3, 3] == 0


def test_targets_separate_touching_objects():
    labels = touching_discs()
    target = instance_targets(labels)
    assert target.shape == (*labels.shape, 2) and target.dtype == np.uint8
    boundary, foreground = target[..., 0].astype(bool), target[..., 1].astype(bool)
    np.testing.assert_array_equal(foreground, labels > 0)
    assert not (boundary & ~foreground).any()  # the ring lies inside the objects
    body = foreground & ~boundary
    from scipy import ndimage

    assert ndimage.label(body)[1] == 2  # the merged mask is one component, the bodies two
    assert ndimage.label(foreground)[1] == 1


def test_decode_recovers_touching_discs_from_perfect_maps():
    labels = touching_discs()
    target = instance_targets(labels).astype(np.float32) / 255
    pred = decode(target[..., 1], target[..., 0])
    assert pred.dtype == np.int32 and pred.max() == 2
    # each predicted object is one of the discs
    for i in (1, 2):
        ids = np.unique(pred[labels == i])
        assert len(ids) == 1 and ids[0] > 0
        assert (pred == ids[0]).sum() == pytest.approx((labels == i).sum(), rel=0.1)


def test_distance_target_is_one_at_each_centre_and_falls_to_the_edges():
    labels = touching_discs()
    dist = normalized_distance(labels)
    assert dist.dtype == np.float32 and dist[labels == 0].max() == 0.0
    for i in (1, 2):
        inside = dist[labels == i]
        assert inside.max() == pytest.approx(1.0) and inside.min() > 0.0
    # where the discs touch the map falls to its edge value: two separate cores above 0.5
    from scipy import ndimage

    assert ndimage.label(dist > 0.5)[1] == 2
    target = instance_targets(labels, markers="distance")
    assert target.dtype == np.uint8 and target[..., 0].max() == 255
    np.testing.assert_array_equal(target[..., 1] > 0, labels > 0)
    assert not normalized_distance(np.zeros((5, 5), np.int32)).any()
    with pytest.raises(ValueError, match="markers"):
        instance_targets(labels, markers="centroids")


def test_decode_with_distance_markers_recovers_touching_discs():
    labels = touching_discs()
    target = instance_targets(labels, markers="distance").astype(np.float32) / 255
    settings = DecodeSettings(markers="distance", distance=0.5)
    pred = decode(target[..., 1], target[..., 0], settings)
    assert pred.max() == 2
    for i in (1, 2):
        ids = np.unique(pred[labels == i])
        assert len(ids) == 1 and ids[0] > 0
    assert DecodeSettings.from_json(settings.to_json()) == settings


def test_watershed_splits_two_touching_discs():
    labels = touching_discs()
    pred = distance_watershed(labels > 0, min_distance=5)
    assert pred.max() == 2
    left, right = np.unique(pred[labels == 1]), np.unique(pred[labels == 2])
    assert set(left) | set(right) == {1, 2}
    assert np.bincount(pred[labels == 1]).argmax() != np.bincount(pred[labels == 2]).argmax()


def test_decode_keeps_markerless_small_objects_and_drops_specks():
    fg = np.zeros((20, 20), np.float32)
    fg[2:5, 2:5] = 1.0  # 9 px, all boundary: no marker, still one object
    fg[10, 10] = 1.0  # 1 px: below min_size_px
    boundary = np.zeros_like(fg)
    boundary[2:5, 2:5] = 1.0
    pred = decode(fg, boundary, DecodeSettings(min_size_px=4))
    assert pred.max() == 1 and (pred == 1).sum() == 9 and pred[10, 10] == 0


def test_decode_drops_objects_whose_peak_is_below_min_peak():
    fg = np.zeros((20, 30), np.float32)
    fg[2:8, 2:8] = 0.99  # confident object
    fg[10:16, 20:26] = 0.8  # faint object: above the foreground threshold, peak 0.8
    fg[12, 22] = 0.93
    boundary = np.zeros_like(fg)
    kept_all = decode(fg, boundary, DecodeSettings(foreground=0.5, min_peak=0.0))
    assert kept_all.max() == 2
    pred = decode(fg, boundary, DecodeSettings(foreground=0.5, min_peak=0.95))
    assert pred.max() == 1 and (pred == 1).sum() == 36 and pred[2, 2] == 1 and pred[12, 22] == 0
    # the peak, not the mean, decides: the faint object's single 0.93 pixel keeps it at 0.9
    assert decode(fg, boundary, DecodeSettings(foreground=0.5, min_peak=0.9)).max() == 2


def test_remove_small_with_peaks():
    labels = np.array([[1, 1, 0, 2], [1, 1, 0, 2], [0, 0, 3, 3]], dtype=np.int32)
    peaks = np.array([0.0, 0.99, 0.5, 0.97])
    out = remove_small(labels, 2, peaks, 0.9)
    np.testing.assert_array_equal(out, [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2]])


def test_decode_empty_prediction():
    pred = decode(np.zeros((8, 8)), np.zeros((8, 8)))
    assert pred.shape == (8, 8) and pred.max() == 0


def test_remove_small_renumbers():
    labels = np.array([[1, 1, 0, 3], [1, 1, 0, 0], [0, 0, 5, 5]], dtype=np.int32)
    out = remove_small(labels, 2)
    np.testing.assert_array_equal(out, [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 2, 2]])


def test_decode_settings_round_trip():
    s = DecodeSettings(foreground=0.4, boundary=0.6, min_marker_px=3, min_size_px=9, min_peak=0.9)
    assert DecodeSettings.from_json(s.to_json()) == s
    assert DecodeSettings.from_json({"boundary": 0.3, "unknown": 1}).boundary == 0.3
    # a card written before the peak filter existed decodes as it did: no peak filter
    assert DecodeSettings.from_json({"foreground": 0.7}).min_peak == 0.0


def test_measure_objects_by_hand():
    labels = np.zeros((10, 12), np.int32)
    labels[2:4, 3:7] = 1  # 2 x 4 rectangle
    image = np.zeros((10, 12, 3), np.uint8)
    image[2:4, 3:7] = 100
    rows = measure_objects(labels, image)
    assert len(rows) == 1 and tuple(rows[0]) == OBJECT_COLUMNS
    r = rows[0]
    assert r["id"] == 1 and r["area_px"] == 8
    assert (r["centroid_x"], r["centroid_y"]) == (4.5, 2.5)
    assert (r["bbox_x0"], r["bbox_y0"], r["bbox_x1"], r["bbox_y1"]) == (3, 2, 7, 4)
    assert r["equivalent_diameter"] == pytest.approx(np.sqrt(4 * 8 / np.pi), abs=1e-3)
    assert 0 < r["eccentricity"] < 1
    assert r["mean_intensity"] == pytest.approx(100.0, abs=0.01)
    assert measure_objects(np.zeros((4, 4), np.int32), np.zeros((4, 4, 3), np.uint8)) == []
