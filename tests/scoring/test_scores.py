"""segcore.scoring.scores: hand-computed Dice/IoU/precision/recall/accuracy, empty cases, summarize."""

from __future__ import annotations

import math

import numpy as np
import pytest

from segcore.scoring.scores import SCORE_NAMES, binary_scores, dice, iou, summarize


def test_hand_computed_scores():
    truth = np.zeros((4, 4), dtype=bool)
    pred = np.zeros((4, 4), dtype=bool)
    truth[0, :4] = True  # 4 true pixels
    pred[0, :3] = True  # 3 of them found (TP=3, FN=1)
    pred[3, 3] = True  # one false alarm (FP=1); TN = 11
    s = binary_scores(truth, pred)
    assert s == pytest.approx(
        {"dice": 6 / 8, "iou": 3 / 5, "precision": 3 / 4, "recall": 3 / 4, "accuracy": 14 / 16}
    )
    assert dice(truth, pred) == pytest.approx(0.75)
    assert iou(truth, pred) == pytest.approx(0.6)


def test_asymmetric_precision_recall():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    pred = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)  # TP 1, FN 3, FP 2, TN 2
    s = binary_scores(truth, pred)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 4)
    assert s["dice"] == pytest.approx(2 / 7)
    assert s["iou"] == pytest.approx(1 / 6)
    assert s["accuracy"] == pytest.approx(3 / 8)


def test_accepts_0_1_and_bool_arrays_alike():
    rng = np.random.default_rng(0)
    t, p = rng.random((2, 9, 9)) > 0.5
    assert binary_scores(t, p) == binary_scores(t.astype(np.uint8), p.astype(np.float32))


def test_empty_truth_and_prediction_conventions():
    empty = np.zeros((3, 3), dtype=bool)
    some = empty.copy()
    some[1, 1] = True
    assert binary_scores(empty, empty) == dict.fromkeys(SCORE_NAMES, 1.0)
    # nothing to find, something predicted
    s = binary_scores(empty, some)
    assert (s["dice"], s["iou"], s["precision"], s["recall"]) == (0.0, 0.0, 0.0, 1.0)
    assert s["accuracy"] == pytest.approx(8 / 9)
    # something to find, nothing predicted
    s = binary_scores(some, empty)
    assert (s["dice"], s["iou"], s["precision"], s["recall"]) == (0.0, 0.0, 1.0, 0.0)


def test_perfect_and_disjoint():
    a = np.eye(5, dtype=bool)
    assert binary_scores(a, a) == dict.fromkeys(SCORE_NAMES, 1.0)
    s = binary_scores(a, ~a)
    assert s["dice"] == s["iou"] == s["precision"] == s["recall"] == s["accuracy"] == 0.0


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        binary_scores(np.zeros((3, 3)), np.zeros((3, 4)))


def test_summarize_mean_and_median():
    rows = [
        {"dice": 0.2, "iou": 0.1, "precision": 1.0, "recall": 0.5, "accuracy": 0.9},
        {"dice": 0.4, "iou": 0.3, "precision": 0.0, "recall": 0.5, "accuracy": 0.8},
        {"dice": 0.9, "iou": 0.8, "precision": 0.5, "recall": 1.0, "accuracy": 1.0},
    ]
    out = summarize(rows)
    assert set(out) == set(SCORE_NAMES)
    assert out["dice"] == pytest.approx({"mean": 0.5, "median": 0.4})
    assert out["precision"] == pytest.approx({"mean": 0.5, "median": 0.5})
    assert out["accuracy"] == pytest.approx({"mean": 0.9, "median": 0.9})


def test_summarize_even_count_and_empty():
    rows = [dict.fromkeys(SCORE_NAMES, v) for v in (0.0, 1.0, 0.5, 0.7)]
    assert summarize(rows)["iou"]["median"] == pytest.approx(0.6)
    empty = summarize([])
    assert all(math.isnan(v["mean"]) and math.isnan(v["median"]) for v in empty.values())


def test_thresholded_jaccard_counts_images_under_the_floor_as_zero():
    from segcore.scoring.scores import JACCARD_FLOOR, thresholded_jaccard, with_thresholded_jaccard

    assert thresholded_jaccard(0.64) == 0.0
    assert thresholded_jaccard(JACCARD_FLOOR) == JACCARD_FLOOR
    assert thresholded_jaccard(0.9) == 0.9
    truth = np.zeros((10, 10), bool)
    truth[:, :6] = True
    pred = np.zeros((10, 10), bool)
    pred[:, :4] = True  # iou 4/6 = 0.667: kept
    rows = [with_thresholded_jaccard(binary_scores(truth, pred))]
    pred[:, 3] = False  # iou 3/6 = 0.5: counts 0
    rows.append(with_thresholded_jaccard(binary_scores(truth, pred)))
    assert [r["thresholded_jaccard"] for r in rows] == pytest.approx([4 / 6, 0.0])
    out = summarize(rows, ("iou", "thresholded_jaccard"))
    assert out["iou"]["mean"] == pytest.approx((4 / 6 + 0.5) / 2)
    assert out["thresholded_jaccard"]["mean"] == pytest.approx(2 / 6)
