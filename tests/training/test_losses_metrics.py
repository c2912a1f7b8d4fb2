"""Losses by name on hand-computed examples, deep-supervision weighting, and the Keras metrics
against `segcore.scoring.scores.binary_scores` (same per-image values and empty-set conventions)."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from segcore.scoring.scores import binary_scores
from segcore.training.losses import LOSSES, channel_weights, get_loss
from segcore.training.metrics import METRIC_NAMES, get_metrics
from segcore.training.metrics import accuracy as m_accuracy
from segcore.training.metrics import dice as m_dice
from segcore.training.metrics import iou as m_iou
from segcore.training.metrics import precision as m_precision
from segcore.training.metrics import recall as m_recall

# one 2x2 image: truth [[1, 0], [0, 0]], prediction [[0.8, 0.2], [0.4, 0.1]]
TRUTH = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32).reshape(1, 2, 2, 1)
PRED = np.array([[0.8, 0.2], [0.4, 0.1]], np.float32).reshape(1, 2, 2, 1)
LOG = math.log

EXPECTED = {
    # mean over the 4 pixels of -[t log p + (1-t) log(1-p)]
    "bce": -(LOG(0.8) + LOG(0.8) + LOG(0.6) + LOG(0.9)) / 4,
    # 1 - (2 * 0.8 + 1) / (1 + 1.5 + 1)
    "dice": 1 - 2.6 / 3.5,
    # alpha 0.25 on the positive pixel, 0.75 on the negatives, gamma 2
    "focal": -(
        0.25 * 0.2**2 * LOG(0.8)
        + 0.75 * 0.2**2 * LOG(0.8)
        + 0.75 * 0.4**2 * LOG(0.6)
        + 0.75 * 0.1**2 * LOG(0.9)
    )
    / 4,
    # TP 0.8, FP 0.7, FN 0.2, alpha 0.3 (FP), beta 0.7 (FN)
    "tversky": 1 - 1.8 / (0.8 + 0.3 * 0.7 + 0.7 * 0.2 + 1),
}
EXPECTED["bce_dice"] = EXPECTED["bce"] + EXPECTED["dice"]


def numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


def test_every_loss_has_a_hand_computed_case():
    assert set(EXPECTED) == set(LOSSES)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_hand_computed(name):
    value = numpy(get_loss(name)(TRUTH, PRED))
    assert value.shape == (1,)  # one value per image
    assert value[0] == pytest.approx(EXPECTED[name], rel=1e-5)


@pytest.mark.parametrize("name", LOSSES)
def test_loss_is_per_image_and_orders_predictions(name):
    rng = np.random.default_rng(0)
    truth = (rng.random((3, 8, 8, 1)) > 0.5).astype(np.float32)
    good = np.where(truth > 0, 0.9, 0.1).astype(np.float32)
    bad = (1.0 - good).astype(np.float32)
    loss = get_loss(name)
    assert loss.__name__ == name
    batch = numpy(loss(np.concatenate([truth, truth]), np.concatenate([good, bad])))
    assert batch.shape == (6,)
    assert (batch[:3] < batch[3:]).all()
    np.testing.assert_allclose(batch[:3], numpy(loss(truth, good)), rtol=1e-6)


def test_dice_loss_both_empty_is_zero():
    empty = np.zeros((1, 4, 4, 1), np.float32)
    assert numpy(get_loss("dice")(empty, empty))[0] == pytest.approx(0.0, abs=1e-4)
    assert numpy(get_loss("tversky")(empty, empty))[0] == pytest.approx(0.0, abs=1e-4)


def test_predictions_are_clipped_no_infinities():
    truth = np.array([1.0, 0.0], np.float32).reshape(1, 1, 2, 1)
    wrong = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)
    for name in LOSSES:
        assert np.isfinite(numpy(get_loss(name)(truth, wrong))).all()


def test_channel_weights():
    np.testing.assert_allclose(numpy(channel_weights(1)), [1.0])
    np.testing.assert_allclose(numpy(channel_weights(3)), [1 / 6, 2 / 6, 3 / 6], rtol=1e-6)
    np.testing.assert_allclose(numpy(channel_weights(4)), [0.1, 0.2, 0.3, 0.4], rtol=1e-6)


@pytest.mark.parametrize("name", LOSSES)
def test_deep_supervision_weighting(name):
    rng = np.random.default_rng(1)
    truth = (rng.random((2, 8, 8, 1)) > 0.5).astype(np.float32)
    side = rng.uniform(0.05, 0.95, (2, 8, 8, 3)).astype(np.float32)  # K = 3 channels
    loss = get_loss(name)
    per = [numpy(loss(truth, side[..., k : k + 1])) for k in range(3)]
    expected = (1 * per[0] + 2 * per[1] + 3 * per[2]) / 6
    np.testing.assert_allclose(numpy(loss(truth, side)), expected, rtol=1e-5)


def test_unknown_loss():
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("hinge")


# --- metrics ------------------------------------------------------------------------------------

METRIC_FNS = {
    "dice": m_dice,
    "iou": m_iou,
    "precision": m_precision,
    "recall": m_recall,
    "accuracy": m_accuracy,
}


def random_batch(seed: int = 0):
    """Random truths and probabilities, with the empty cases included."""
    rng = np.random.default_rng(seed)
    n = 8
    truth = (rng.random((n, 12, 12, 1)) > rng.uniform(0.2, 0.9, (n, 1, 1, 1))).astype(np.float32)
    prob = rng.random((n, 12, 12, 1)).astype(np.float32)
    truth[0], prob[0] = 0.0, 0.1  # both empty
    truth[1], prob[1, :2] = 0.0, 0.9  # nothing to find, something predicted
    prob[2] = 0.2  # something to find, nothing predicted
    prob[3] = np.where(truth[3] > 0, 0.7, 0.3)  # perfect
    return truth, prob


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_metric_functions_equal_binary_scores_per_image(name):
    truth, prob = random_batch()
    values = numpy(METRIC_FNS[name](truth, prob))
    expected = [
        binary_scores(t[..., 0] > 0.5, p[..., 0] > 0.5)[name]
        for t, p in zip(truth, prob, strict=True)
    ]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)


def test_metric_empty_conventions():
    truth, prob = random_batch()
    got = {name: numpy(fn(truth, prob)) for name, fn in METRIC_FNS.items()}
    assert all(got[name][0] == 1.0 for name in METRIC_NAMES)  # both empty: everything 1
    assert got["dice"][1] == 0.0 and got["iou"][1] == 0.0 and got["recall"][1] == 1.0
    assert got["dice"][2] == 0.0 and got["precision"][2] == 1.0 and got["recall"][2] == 0.0
    assert all(got[name][3] == 1.0 for name in METRIC_NAMES)


def test_keras_metric_objects_average_per_image_scores():
    truth, prob = random_batch(3)
    metrics = get_metrics()
    assert [m.name for m in metrics] == ["dice", "iou", "precision", "recall", "accuracy"]
    # two updates, as over two batches: the result is the mean over all images
    for m in metrics:
        m.update_state(truth[:5], prob[:5])
        m.update_state(truth[5:], prob[5:])
    rows = [
        binary_scores(t[..., 0] > 0.5, p[..., 0] > 0.5) for t, p in zip(truth, prob, strict=True)
    ]
    for m in metrics:
        assert float(numpy(m.result())) == pytest.approx(
            np.mean([r[m.name] for r in rows]), rel=1e-5
        )


def test_metrics_score_the_main_output_channel_only():
    truth, prob = random_batch(4)
    garbage = 1.0 - prob  # a deep-supervision side output, before the main one
    stacked = np.concatenate([garbage, prob], axis=-1)
    for name, fn in METRIC_FNS.items():
        np.testing.assert_allclose(numpy(fn(truth, stacked)), numpy(fn(truth, prob)), err_msg=name)
