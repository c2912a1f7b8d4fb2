"""Score instance label images as the 2018 Data Science Bowl did (numpy/scipy only).

For one image: the IoU of every (truth, prediction) object pair; at each threshold t in
0.50, 0.55, ..., 0.95 a truth object and a predicted object match when their IoU > t (one-to-one:
with IoU > 0.5 a pair can match only each other); the image's score is the mean over thresholds
of TP / (TP + FP + FN). Empty truth and empty prediction scores 1.0; exactly one of them empty
scores 0.0. Also F1 at IoU 0.5 and the relative count error |n_pred - n_true| / n_true.
"""

from __future__ import annotations

import numpy as np

DSB_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
INSTANCE_SCORE_NAMES = ("dsb_score", "f1_iou50", "count_error", "n_true", "n_pred")


def iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every truth object (rows, ids 1..) with every predicted object (columns, ids 1..).

    Label images must have the same shape; ids need not be consecutive (absent ids are dropped).
    """
    t = np.asarray(truth).ravel()
    p = np.asarray(pred).ravel()
    if np.asarray(truth).shape != np.asarray(pred).shape:
        raise ValueError(f"truth shape {np.shape(truth)} != prediction shape {np.shape(pred)}")
    t_ids, t_inv = np.unique(t, return_inverse=True)
    p_ids, p_inv = np.unique(p, return_inverse=True)
    inter = np.zeros((t_ids.size, p_ids.size), dtype=np.int64)
    np.add.at(inter, (t_inv, p_inv), 1)
    t_keep, p_keep = t_ids != 0, p_ids != 0
    area_t = inter.sum(axis=1)[t_keep]
    area_p = inter.sum(axis=0)[p_keep]
    inter = inter[np.ix_(t_keep, p_keep)]
    union = area_t[:, None] + area_p[None, :] - inter
    return inter / np.maximum(union, 1)


def match_counts(iou: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """(TP, FP, FN) matching objects one-to-one at IoU > ``threshold`` (>= 0.5).

    Objects of a label image do not overlap, so with IoU above one half a truth object can pair
    with at most one predicted object and vice versa: every pair above the threshold is a match.
    """
    if threshold < 0.5:
        raise ValueError(f"threshold {threshold} < 0.5: the matching is one-to-one only above 0.5")
    n_true, n_pred = iou.shape
    tp = int(np.count_nonzero(iou > threshold)) if n_true and n_pred else 0
    return tp, n_pred - tp, n_true - tp


def instance_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """DSB 2018 score, F1 at IoU 0.5, relative count error and object counts of one image.

    Count error is |n_pred - n_true| / n_true (0.0 when both are 0, 1.0 when only truth is 0).
    """
    iou = iou_matrix(truth, pred)
    n_true, n_pred = iou.shape
    if n_true == 0 and n_pred == 0:
        dsb, f1 = 1.0, 1.0
    else:
        precisions = []
        for t in DSB_THRESHOLDS:
            tp, fp, fn = match_counts(iou, t)
            precisions.append(tp / (tp + fp + fn))
        dsb = float(np.mean(precisions))
        tp, fp, fn = match_counts(iou, 0.5)
        f1 = 2 * tp / (2 * tp + fp + fn)
    if n_true:
        count_error = abs(n_pred - n_true) / n_true
    else:
        count_error = 0.0 if n_pred == 0 else 1.0
    return {
        "dsb_score": dsb,
        "f1_iou50": float(f1),
        "count_error": float(count_error),
        "n_true": n_true,
        "n_pred": n_pred,
    }
