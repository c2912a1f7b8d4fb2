"""Score instance label images as the 2018 Data Science Bowl and MoNuSeg did (numpy only).

For one image: the IoU of every (truth, prediction) object pair; at each threshold t in
0.50, 0.55, ..., 0.95 a truth object and a predicted object match when their IoU > t (one-to-one:
with IoU > 0.5 a pair can match only each other); the image's score is the mean over thresholds
of TP / (TP + FP + FN). Empty truth and empty prediction scores 1.0; exactly one of them empty
scores 0.0. Also F1 at IoU 0.5, the relative count error |n_pred - n_true| / n_true and the
Aggregated Jaccard Index of MoNuSeg (`aggregated_jaccard`).

Overlaps are counted once per image from the pairs of ids that share a pixel (`overlap_table`:
one `np.bincount` over combined ids, a sort only where ids are sparse), so a tile of several
hundred nuclei costs a few passes over its pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DSB_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
INSTANCE_SCORE_NAMES = ("dsb_score", "f1_iou50", "count_error", "aji", "n_true", "n_pred")


@dataclass(frozen=True)
class OverlapTable:
    """The objects of a truth and a predicted label image and the pixels each pair shares.

    ``true_area``/``pred_area``: pixels per object (truth rows, prediction columns, in id order);
    ``rows``/``cols``/``inter``: one entry per overlapping (truth, prediction) pair, as indices
    into the areas and the pixels shared.
    """

    true_area: np.ndarray
    pred_area: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    inter: np.ndarray

    def pair_iou(self) -> np.ndarray:
        """IoU of each overlapping pair (aligned with ``rows``/``cols``)."""
        union = self.true_area[self.rows] + self.pred_area[self.cols] - self.inter
        return self.inter / np.maximum(union, 1)

    def iou(self) -> np.ndarray:
        """The dense IoU matrix: truth objects in rows, predicted objects in columns."""
        dense = np.zeros((self.true_area.size, self.pred_area.size))
        dense[self.rows, self.cols] = self.pair_iou()
        return dense


#: Largest id counted through a table (np.bincount, a lookup) rather than by sorting: about the
#: number of pixels, so the table is no bigger than the per-pixel index itself.
_DENSE_SLACK = 65536


def _dense(codes: np.ndarray) -> bool:
    """Whether non-empty integer ``codes`` lie in 0 .. len(codes) + `_DENSE_SLACK`."""
    return (
        codes.size > 0
        and np.issubdtype(codes.dtype, np.integer)
        and int(codes.min()) >= 0
        and int(codes.max()) <= codes.size + _DENSE_SLACK
    )


def _counts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, their counts) of integer ``codes``: one `np.bincount` pass where
    they are dense (`_dense`), else `np.unique` (a sort)."""
    if _dense(codes):
        counts = np.bincount(codes.astype(np.intp, copy=False))
        values = np.flatnonzero(counts)
        return values, counts[values]
    return np.unique(codes, return_counts=True)


def _ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted non-zero ids, their areas, each pixel's index into them with -1 for background)."""
    flat = labels.ravel()
    if _dense(flat):
        ids, counts = _counts(flat)
        lut = np.full(int(ids[-1]) + 1, -1, np.int64)
        keep = ids != 0
        ids, counts = ids[keep], counts[keep]
        lut[ids] = np.arange(ids.size)
        return ids, counts, lut[flat]
    ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    if ids.size and ids[0] == 0:
        return ids[1:], counts[1:], inverse - 1
    return ids, counts, inverse


def overlap_table(truth: np.ndarray, pred: np.ndarray) -> OverlapTable:
    """Object areas and the sparse table of overlaps of two label images of the same shape.

    Ids need not be consecutive (absent ids are dropped); 0 is background.
    """
    truth, pred = np.asarray(truth), np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"truth shape {truth.shape} != prediction shape {pred.shape}")
    _, true_area, t_index = _ids(truth.ravel())
    _, pred_area, p_index = _ids(pred.ravel())
    both = (t_index >= 0) & (p_index >= 0)
    width = max(pred_area.size, 1)
    pairs, inter = _counts(t_index[both] * width + p_index[both])
    return OverlapTable(true_area, pred_area, pairs // width, pairs % width, inter)


def iou_matrix(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU of every truth object (rows, ids 1..) with every predicted object (columns, ids 1..).

    Label images must have the same shape; ids need not be consecutive (absent ids are dropped).
    """
    return overlap_table(truth, pred).iou()


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


def aggregated_jaccard(table: OverlapTable) -> float:
    """The Aggregated Jaccard Index (Kumar et al. 2017, MoNuSeg) of one image.

    Each truth object takes the predicted object of highest IoU with it (ties: the lower id; none
    when nothing overlaps it): AJI = sum of their intersections / (sum of their unions + the
    areas of predicted objects no truth object took). A predicted object taken by two truth
    objects counts in both unions, as in the original. 1.0 when both images are empty.
    """
    n_true, n_pred = table.true_area.size, table.pred_area.size
    if n_true == 0 and n_pred == 0:
        return 1.0
    iou = table.pair_iou()
    order = np.lexsort((table.cols, -iou, table.rows))  # by truth, best IoU first, lower id
    rows = table.rows[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    best = order[first]
    inter = int(table.inter[best].sum())
    taken = np.zeros(n_pred, dtype=bool)
    taken[table.cols[best]] = True
    union = (
        int(table.true_area.sum())  # every truth object's area (alone when unmatched)
        + int(table.pred_area[table.cols[best]].sum())
        - inter
        + int(table.pred_area[~taken].sum())
    )
    return inter / union if union else 0.0


def instance_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """DSB 2018 score, F1 at IoU 0.5, relative count error, AJI and object counts of one image.

    Count error is |n_pred - n_true| / n_true (0.0 when both are 0, 1.0 when only truth is 0).
    """
    table = overlap_table(truth, pred)
    iou = table.iou()
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
        "aji": aggregated_jaccard(table),
        "n_true": n_true,
        "n_pred": n_pred,
    }
