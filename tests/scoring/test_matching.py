"""``segcore.scoring.matching``: the DSB 2018 score, F1 at IoU 0.5, count error and AJI on hand-built labels."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_images import box_labels

from bench.matching import overlaps_by_sorting
from segcore.scoring.matching import (
    DSB_THRESHOLDS,
    aggregated_jaccard,
    instance_scores,
    iou_matrix,
    match_counts,
    overlap_table,
)


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
    assert s == {
        "dsb_score": 1.0,
        "f1_iou50": 1.0,
        "count_error": 0.0,
        "aji": 1.0,
        "n_true": 2,
        "n_pred": 2,
    }


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
        "aji": 1.0,
        "n_true": 0,
        "n_pred": 0,
    }
    missed = instance_scores(one, empty)
    assert (missed["dsb_score"], missed["f1_iou50"], missed["count_error"]) == (0.0, 0.0, 1.0)
    assert missed["aji"] == 0.0
    false_alarm = instance_scores(empty, one)
    assert (false_alarm["dsb_score"], false_alarm["f1_iou50"]) == (0.0, 0.0)
    assert false_alarm["count_error"] == 1.0
    assert false_alarm["aji"] == 0.0


def test_shapes_must_agree_and_threshold_at_least_half():
    with pytest.raises(ValueError, match="shape"):
        iou_matrix(np.zeros((4, 4), int), np.zeros((4, 5), int))
    with pytest.raises(ValueError, match="0.5"):
        match_counts(np.ones((1, 1)), 0.3)


def test_hand_computed_aji():
    # truth: A (16 px), B (16 px), C (4 px). pred: A' the left half of A (8 px, IoU 0.5), B' over
    # B (20 px, 16 shared), D a false object of 9 px. C has no overlapping prediction.
    truth = box_labels((0, 0, 4, 4), (10, 10, 14, 14), (17, 0, 19, 2))
    pred = box_labels((0, 0, 4, 2), (10, 10, 14, 15), (0, 15, 3, 18))
    # intersections 8 + 16; unions 16 (A, A') + 20 (B, B') + 4 (C alone) + 9 (D unused)
    assert instance_scores(truth, pred)["aji"] == pytest.approx(24 / 49)


def test_aji_counts_a_merged_prediction_in_each_union():
    truth = box_labels((0, 0, 4, 4), (0, 4, 4, 8))  # two 16 px objects side by side
    pred = box_labels((0, 0, 4, 8))  # one 32 px object over both
    # each truth object takes it: intersection 16, union 32, twice
    assert aggregated_jaccard(overlap_table(truth, pred)) == pytest.approx(32 / 64)


def test_aji_ties_take_the_lower_id_and_the_other_counts_unused():
    truth = box_labels((0, 0, 4, 4))
    pred = box_labels((0, 0, 4, 2), (0, 2, 4, 4))  # IoU 0.5 each
    # the first is taken (intersection 8, union 16); the second (8 px) is unused
    assert aggregated_jaccard(overlap_table(truth, pred)) == pytest.approx(8 / 24)


def _aji_by_loops(truth: np.ndarray, pred: np.ndarray) -> float:
    """AJI written out as Kumar et al. 2017 give it, one object at a time."""
    used: set[int] = set()
    inter = union = 0
    pred_ids = [j for j in np.unique(pred) if j]
    for i in [i for i in np.unique(truth) if i]:
        g = truth == i
        best, best_iou = None, 0.0
        for j in pred_ids:
            s = pred == j
            iou = (g & s).sum() / (g | s).sum()
            if iou > best_iou:
                best, best_iou = j, iou
        if best is None:
            union += g.sum()
        else:
            s = pred == best
            inter += (g & s).sum()
            union += (g | s).sum()
            used.add(best)
    union += sum((pred == j).sum() for j in pred_ids if j not in used)
    return inter / union


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aji_equals_the_per_object_definition_on_random_labels(seed: int):
    rng = np.random.default_rng(seed)
    truth = np.zeros((40, 40), np.int32)
    pred = np.zeros((40, 40), np.int32)
    for labels, n in ((truth, 12), (pred, 15)):
        for i in range(1, n + 1):
            y, x = rng.integers(0, 34, size=2)
            h, w = rng.integers(2, 7, size=2)
            labels[y : y + h, x : x + w] = i * 7  # ids not consecutive; later boxes win
    assert instance_scores(truth, pred)["aji"] == pytest.approx(_aji_by_loops(truth, pred))


def test_overlap_table_matches_the_dense_iou():
    truth = box_labels((0, 0, 4, 4), (10, 10, 14, 14))
    pred = box_labels((0, 0, 4, 2), (10, 10, 14, 15), (0, 15, 3, 18))
    table = overlap_table(truth, pred * 5)
    assert list(table.true_area) == [16, 16] and list(table.pred_area) == [8, 20, 9]
    assert sorted(zip(table.rows, table.cols, table.inter, strict=True)) == [(0, 0, 8), (1, 1, 16)]


@pytest.mark.parametrize("seed", range(6))
def test_overlap_table_counts_like_sorting_whatever_the_ids(seed: int):
    """Counting by bincount (dense ids) and by sorting (sparse, huge or negative ids, no
    background, empty images) give the same table."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 120))
    truth = ndimage.label(rng.random((size, size)) > rng.random())[0]
    pred = ndimage.label(rng.random((size, size)) > rng.random())[0]
    cases = [
        (truth, pred),
        (truth * 1_000_003, pred.astype(np.uint8)),  # sparse ids; a narrow dtype
        (truth.astype(np.int64) - 5, pred),  # negative ids
        (np.full_like(truth, 7), pred),  # one object and no background
        (np.zeros_like(truth), pred),
        (truth.astype(np.uint64) + np.uint64(2**62), pred),  # ids past any lookup table
    ]
    for a, b in cases:
        table = overlap_table(a, b)
        got = [table.true_area, table.pred_area, table.rows, table.cols, table.inter]
        for mine, plain in zip(got, overlaps_by_sorting(a, b), strict=True):
            np.testing.assert_array_equal(mine, plain)
