"""``segcore.matching``: the DSB 2018 score, F1 at IoU 0.5 and count error on hand-built labels."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_images import box_labels

from segcore.matching import DSB_THRESHOLDS, instance_scores, iou_matrix, match_counts


def test_thresholds_are_the_dsb_ones():
    assert DSB_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_iou_matrix_by_hand():
    truth = box_labels((0, 0, 4, 4), (10, 10, 14, 14))  # 16 px each
    pred = box_labels(
        (0, 0, 4, 2), (10, 10, 14, 15)
    )  # 8 px inside the first; 20 px over the second
    iou = iou_matrix(truth, pred)
    assert iou.shape == (2, 2)
    np.testing.assert_allclose(iou, [[8 / 16, 0.0], [0.0, 16 / 20]])


def test_perfect_prediction_scores_one():
    truth = box_labels((0, 0, 4, 4), (5, 5, 9, 9))
    s = instance_scores(truth, truth * 3)  # ids need not match
    assert s == {"dsb_score": 1.0, "f1_iou50": 1.0, "count_error": 0.0, "n_true": 2, "n_pred": 2}


def test_hand_computed_dsb_score():
    # truth: A (16 px), B (16 px), C (4 px). pred: A' = A exactly, B' over B with IoU 16/20 = 0.8,
    # D a false object. C is missed.
    truth = box_labels((0, 0, 4, 4), (10, 10, 14, 14), (17, 0, 19, 2))
    pred = box_labels((0, 0, 4, 4), (10, 10, 14, 15), (0, 15, 3, 18))
    s = instance_scores(truth, pred)
    # t in .50..0.75 (6 thresholds): TP 2, FP 1, FN 1 -> 2/4; t in .80..0.95 (4): IoU 0.8 is not
    # > 0.8, so TP 1, FP 2, FN 2 -> 1/5
    assert s["dsb_score"] == pytest.approx((6 * 0.5 + 4 * 0.2) / 10)
    assert s["f1_iou50"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert s["count_error"] == 0.0  # 3 predicted for 3 true
    assert (s["n_true"], s["n_pred"]) == (3, 3)


def test_iou_exactly_half_is_not_a_match():
    truth = box_labels((0, 0, 4, 4))
    pred = box_labels((0, 0, 4, 2))  # IoU 0.5
    s = instance_scores(truth, pred)
    assert s["dsb_score"] == 0.0 and s["f1_iou50"] == 0.0


def test_split_object_gives_one_match_at_most():
    truth = box_labels((0, 0, 4, 10))  # 40 px
    pred = np.zeros_like(truth)
    pred[0:4, 0:7] = 1  # IoU 28/40 = 0.7
    pred[0:4, 7:10] = 2  # IoU 0.3
    tp, fp, fn = match_counts(iou_matrix(truth, pred), 0.5)
    assert (tp, fp, fn) == (1, 1, 0)
    s = instance_scores(truth, pred)
    # thresholds 0.50..0.65 match (4 of 10): 1/2 each; the rest 0/3
    assert s["dsb_score"] == pytest.approx(4 * 0.5 / 10)
    assert s["count_error"] == 1.0


def test_empty_truth_and_empty_prediction():
    empty = np.zeros((8, 8), dtype=np.int32)
    one = box_labels((1, 1, 3, 3), shape=(8, 8))
    assert instance_scores(empty, empty) == {
        "dsb_score": 1.0,
        "f1_iou50": 1.0,
        "count_error": 0.0,
        "n_true": 0,
        "n_pred": 0,
    }
    missed = instance_scores(one, empty)
    assert (missed["dsb_score"], missed["f1_iou50"], missed["count_error"]) == (0.0, 0.0, 1.0)
    false_alarm = instance_scores(empty, one)
    assert (false_alarm["dsb_score"], false_alarm["f1_iou50"]) == (0.0, 0.0)
    assert false_alarm["count_error"] == 1.0


def test_shapes_must_agree_and_threshold_at_least_half():
    with pytest.raises(ValueError, match="shape"):
        iou_matrix(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="0.5"):
        match_counts(np.ones((1, 1)), 0.3)
