"""Keras training metrics (Dice, IoU, precision, recall, pixel accuracy) on the main output.

Each metric thresholds the main output channel (-1) at 0.5, scores every image with the same
empty-set convention as `segcore.scoring.scores` (0/0 counts as 1.0), and averages over images. The truth
is the last channel of the target (the only one for semantic models, the foreground of instance
ones).

What the numbers are:
- ``val_dice`` (history.csv, the checkpoint rule): the mean per-image Dice on the validation
  split, at the training size (``--img-size``; images and masks both resized), without
  post-processing. It picks the best epoch.
- the evaluated Dice (``segcore.commands.evaluate``: test_metrics.json, test_per_image.csv): the mean
  per-image Dice on the test split, at each image's original size (probabilities resized back,
  then thresholded). It is the number to report.
They differ: other images, and resizing changes mask edges (most for small objects). The
exported ONNX model's card scores test images again through the engine, with its
post-processing (``segcore.inference.engine``), which can differ from the raw Keras score as well.
"""

from __future__ import annotations

import keras
from keras import ops

METRIC_NAMES = ("dice", "iou", "precision", "recall", "accuracy")


def _counts(y_true, y_pred, threshold: float = 0.5):
    t = ops.cast(ops.cast(y_true, "float32")[..., -1:] > 0.5, "float32")
    p = ops.cast(ops.cast(y_pred, "float32")[..., -1:] > threshold, "float32")
    tp = ops.sum(t * p, axis=(1, 2, 3))
    fp = ops.sum((1.0 - t) * p, axis=(1, 2, 3))
    fn = ops.sum(t * (1.0 - p), axis=(1, 2, 3))
    total = ops.cast(ops.prod(ops.shape(t)[1:]), "float32")
    return tp, fp, fn, total


def _ratio(num, den):
    return ops.where(den > 0, num / ops.maximum(den, 1.0), ops.ones_like(num))


def dice(y_true, y_pred):
    """Per-image Dice of the thresholded main output."""
    tp, fp, fn, _ = _counts(y_true, y_pred)
    return _ratio(2.0 * tp, 2.0 * tp + fp + fn)


def iou(y_true, y_pred):
    """Per-image IoU (Jaccard) of the thresholded main output."""
    tp, fp, fn, _ = _counts(y_true, y_pred)
    return _ratio(tp, tp + fp + fn)


def precision(y_true, y_pred):
    """Per-image precision TP/(TP+FP); 1.0 when nothing is predicted."""
    tp, fp, _, _ = _counts(y_true, y_pred)
    return _ratio(tp, tp + fp)


def recall(y_true, y_pred):
    """Per-image recall TP/(TP+FN); 1.0 when the truth is empty."""
    tp, _, fn, _ = _counts(y_true, y_pred)
    return _ratio(tp, tp + fn)


def accuracy(y_true, y_pred):
    """Per-image pixel accuracy of the thresholded main output."""
    _, fp, fn, total = _counts(y_true, y_pred)
    return (total - fp - fn) / total


def get_metrics() -> list[keras.metrics.Metric]:
    """Fresh metric objects named dice, iou, precision, recall, accuracy."""
    fns = {"dice": dice, "iou": iou, "precision": precision, "recall": recall, "accuracy": accuracy}
    return [keras.metrics.MeanMetricWrapper(fn, name=name) for name, fn in fns.items()]
