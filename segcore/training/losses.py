"""Segmentation losses by name, written with keras.ops (backend-agnostic).

Every loss accepts predictions with K >= 1 channels: channel -1 is the main output and the
channels before it are deep-supervision side outputs (coarse to fine). The loss of each
channel is computed against the same binary truth and weighted 1, 2, ..., K (normalised), so the
main output weighs most.
"""

from __future__ import annotations

from collections.abc import Callable

from keras import ops

from segcore.run_config import LOSSES

EPS = 1e-6


def _per_channel(y_true, y_pred):
    y_true = ops.cast(y_true, "float32")[..., :1]
    y_pred = ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0 - EPS)
    return y_true, y_pred


def bce_map(y_true, y_pred):
    """Per-pixel binary cross-entropy, shape (N, H, W, K)."""
    return -(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))


def soft_dice_loss(y_true, y_pred):
    """1 - soft Dice per image and channel, shape (N, K); empty truth + empty prediction -> 0."""
    inter = ops.sum(y_true * y_pred, axis=(1, 2))
    denom = ops.sum(y_true, axis=(1, 2)) + ops.sum(y_pred, axis=(1, 2))
    return 1.0 - (2.0 * inter + 1.0) / (denom + 1.0)


def focal_map(y_true, y_pred, gamma: float = 2.0, alpha: float = 0.25):
    """Per-pixel binary focal loss (Lin et al. 2017), shape (N, H, W, K)."""
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    a_t = y_true * alpha + (1.0 - y_true) * (1.0 - alpha)
    return -a_t * ops.power(1.0 - p_t, gamma) * ops.log(p_t)


def tversky_loss(y_true, y_pred, alpha: float = 0.3, beta: float = 0.7):
    """1 - Tversky index per image and channel (beta > alpha weighs misses over false alarms)."""
    tp = ops.sum(y_true * y_pred, axis=(1, 2))
    fp = ops.sum((1.0 - y_true) * y_pred, axis=(1, 2))
    fn = ops.sum(y_true * (1.0 - y_pred), axis=(1, 2))
    return 1.0 - (tp + 1.0) / (tp + alpha * fp + beta * fn + 1.0)


def _per_image_channel(name: str, y_true, y_pred):
    """Loss per image and channel, shape (N, K)."""
    if name == "bce":
        return ops.mean(bce_map(y_true, y_pred), axis=(1, 2))
    if name == "dice":
        return soft_dice_loss(y_true, y_pred)
    if name == "bce_dice":
        return ops.mean(bce_map(y_true, y_pred), axis=(1, 2)) + soft_dice_loss(y_true, y_pred)
    if name == "focal":
        return ops.mean(focal_map(y_true, y_pred), axis=(1, 2))
    if name == "tversky":
        return tversky_loss(y_true, y_pred)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def channel_weights(k: int):
    """Deep-supervision weights 1..k normalised to sum 1 (main output last, heaviest)."""
    w = ops.arange(1, k + 1, dtype="float32")
    return w / ops.sum(w)


def get_loss(name: str) -> Callable:
    """Return a Keras loss function (y_true, y_pred) -> per-image loss, for the given name."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")

    def loss(y_true, y_pred):
        y_true, y_pred = _per_channel(y_true, y_pred)
        per = _per_image_channel(name, y_true, y_pred)  # (N, K)
        k = y_pred.shape[-1]
        return ops.sum(per * channel_weights(k), axis=-1)

    loss.__name__ = name
    return loss


def get_instance_loss(name: str, n_targets: int) -> Callable:
    """Loss for instance targets: the named loss on each of ``n_targets`` channels, summed.

    Predictions hold G groups of ``n_targets`` channels (deep-supervision side outputs first,
    the main output last), each group scored against the same target and weighted 1..G.
    """
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")

    def loss(y_true, y_pred):
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.clip(ops.cast(y_pred, "float32"), EPS, 1.0 - EPS)
        groups = y_pred.shape[-1] // n_targets
        weights = channel_weights(groups)
        total = 0.0
        for g in range(groups):
            part = y_pred[..., g * n_targets : (g + 1) * n_targets]
            total = total + weights[g] * ops.sum(_per_image_channel(name, y_true, part), axis=-1)
        return total

    loss.__name__ = f"instance_{name}"
    return loss
