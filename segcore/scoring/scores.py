"""Segmentation scores on numpy arrays (evaluation, app, predict); never imports Keras.

Convention for empty images: a ratio whose denominator is zero counts as a perfect 1.0, so
when truth and prediction are both empty every score is 1.0; when exactly one of them is empty,
dice and iou are 0.0 (see `binary_scores` for precision and recall).

The ISIC 2017 challenge ranked lesion models by the mean Jaccard index (``iou`` here) and the
thresholded Jaccard: an image's Jaccard, or 0 when it is under `JACCARD_FLOOR` (0.65).
"""

from __future__ import annotations

import numpy as np

SCORE_NAMES = ("dice", "iou", "precision", "recall", "accuracy")
#: An image whose Jaccard index is under this counts 0 in the thresholded Jaccard.
JACCARD_FLOOR = 0.65
THRESHOLDED_JACCARD = "thresholded_jaccard"


def _ratio(num: float, den: float) -> float:
    """num/den with the empty-set convention: 0/0 counts as a perfect 1.0."""
    return 1.0 if den == 0 else float(num) / float(den)


def binary_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Dice, IoU, precision, recall and pixel accuracy of one binary prediction.

    Empty cases: precision = TP/(TP+FP) is 1.0 when nothing is predicted; recall = TP/(TP+FN)
    is 1.0 when the truth is empty; dice and iou are 1.0 only when both are empty.
    """
    t = np.asarray(truth, dtype=bool)
    p = np.asarray(pred, dtype=bool)
    if t.shape != p.shape:
        raise ValueError(f"truth shape {t.shape} != prediction shape {p.shape}")
    tp = float(np.count_nonzero(t & p))
    fp = float(np.count_nonzero(~t & p))
    fn = float(np.count_nonzero(t & ~p))
    total = float(t.size)
    return {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "accuracy": (total - fp - fn) / total if total else 1.0,
    }


def dice(truth: np.ndarray, pred: np.ndarray) -> float:
    """Dice coefficient 2|T∩P|/(|T|+|P|) of two binary masks; 1.0 when both are empty."""
    return binary_scores(truth, pred)["dice"]


def iou(truth: np.ndarray, pred: np.ndarray) -> float:
    """Jaccard index |T∩P|/|T∪P| of two binary masks; 1.0 when both are empty."""
    return binary_scores(truth, pred)["iou"]


def thresholded_jaccard(jaccard: float) -> float:
    """An image's Jaccard index for the thresholded mean: 0.0 under `JACCARD_FLOOR`."""
    return float(jaccard) if jaccard >= JACCARD_FLOOR else 0.0


def with_thresholded_jaccard(row: dict[str, float]) -> dict[str, float]:
    """A per-image score row with ``thresholded_jaccard`` added from its ``iou``."""
    return {**row, THRESHOLDED_JACCARD: thresholded_jaccard(row["iou"])}


def summarize(
    rows: list[dict[str, float]], names: tuple[str, ...] = SCORE_NAMES
) -> dict[str, dict[str, float]]:
    """Mean and median of each named score (default: `SCORE_NAMES`) over per-image rows."""
    out: dict[str, dict[str, float]] = {}
    for name in names:
        values = np.array([r[name] for r in rows], dtype=np.float64)
        out[name] = {
            "mean": float(values.mean()) if values.size else float("nan"),
            "median": float(np.median(values)) if values.size else float("nan"),
        }
    return out
