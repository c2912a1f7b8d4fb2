"""segcore.scoring.decode_search: the grid search gives the scores `decode` itself gives."""

from __future__ import annotations

import numpy as np
import pytest

from segcore.inference.instances import DecodeSettings, instance_targets, labels_from_masks
from segcore.scoring.decode_search import DECODE_GRID, score_decoding, search_decoding


def predicted_pair(seed: int, markers: str) -> tuple[np.ndarray, np.ndarray]:
    """Truth labels of touching and lone discs plus specks, and noisy output channels for them
    (so that the thresholds, marker and object sizes and the peak filter all change the labels)."""
    rng = np.random.default_rng(seed)
    shape = (48, 64)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    discs = [(14, 14, 9), (14, 31, 9), (34, 46, 8), (38, 12, 3), (8, 56, 2)]
    masks = [(yy - cy) ** 2 + (xx - cx) ** 2 <= r**2 for cy, cx, r in discs]
    truth = labels_from_masks(masks, shape)
    target = instance_targets(truth, markers=markers).astype(np.float32) / 255
    channels = np.clip(target * rng.uniform(0.5, 1.0) + rng.normal(0, 0.2, target.shape), 0, 1)
    return truth, channels.astype(np.float32)


@pytest.mark.parametrize("markers", ["boundary", "distance"])
def test_every_trial_scores_what_decode_gives(markers: str):
    predicted = [predicted_pair(seed, markers) for seed in (0, 1)]
    best, trials = search_decoding(predicted, DecodeSettings(markers=markers))
    assert len(trials) == len(DECODE_GRID["foreground"]) * len(DECODE_GRID[markers]) + len(
        DECODE_GRID["min_marker_px"]
    ) * len(DECODE_GRID["min_size_px"]) * len(DECODE_GRID["min_peak"])
    for trial in trials:
        assert trial == {**trial, **score_decoding(predicted, DecodeSettings.from_json(trial))}
    distinct = {tuple(t[k] for k in ("dsb_score", "f1_iou50", "count_error")) for t in trials}
    assert len(distinct) > 5  # the settings do change the labels here
    assert best.markers == markers
    assert max(t["dsb_score"] for t in trials) == score_decoding(predicted, best)["dsb_score"]
