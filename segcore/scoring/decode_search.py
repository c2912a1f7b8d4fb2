"""Search the watershed decoding settings of an instance model on images already predicted.

`search_decoding` takes (truth labels, output channels) pairs, predicted once, and tries the
`DECODE_GRID` values in `DECODE_STAGES`, keeping the settings with the best mean DSB 2018 score.
It serves both the tuning of a training run (`segcore.training.tuning`, Keras model, whole
validation split) and the per-kind settings of a shipped model (`export.decode_by_kind`, ONNX
model, the validation images of one kind). Never run it on a test split.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from segcore.inference.instances import (
    DecodeSettings,
    decode,
    filter_objects,
    flood,
    label_maxima,
)
from segcore.scoring.matching import instance_scores
from segcore.scoring.scores import binary_scores

#: The values searched, in two stages: the two thresholds together (the object filters at their
#: defaults), then the two sizes and the peak filter together (thresholds at the stage-1 best).
#: The marker threshold is ``boundary`` or ``distance``, after the model's marker channel.
DECODE_GRID = {
    "foreground": (0.4, 0.5, 0.6, 0.7),
    "boundary": (0.1, 0.2, 0.3, 0.4, 0.5),
    "distance": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    "min_marker_px": (2, 4, 8, 16),
    "min_size_px": (4, 8, 16, 32),
    "min_peak": (0.0, 0.9, 0.95, 0.97, 0.99),
}
DECODE_STAGES = (("foreground", "MARKER"), ("min_marker_px", "min_size_px", "min_peak"))
TUNE_SCORES = ("dsb_score", "f1_iou50", "count_error", "dice")  # recorded per trial

Predicted = Sequence[tuple[np.ndarray, np.ndarray]]  # (truth labels, HxWxK output channels)


def image_scores(truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Semantic and instance scores of one image's predicted labels against its truth labels."""
    return {**binary_scores(truth > 0, labels > 0), **instance_scores(truth, labels)}


def score_decoding(predicted: Predicted, settings: DecodeSettings) -> dict[str, float]:
    """Mean `TUNE_SCORES` of ``predicted`` decoded with ``settings``."""
    return _mean_scores(
        image_scores(labels, decode(ch[..., -1], ch[..., 0], settings)) for labels, ch in predicted
    )


def _mean_scores(scores: Iterable[dict[str, float]]) -> dict[str, float]:
    listed = list(scores)
    return {k: float(np.mean([s[k] for s in listed])) for k in TUNE_SCORES}


class _Floods:
    """`decode` of the predicted images, keeping each image's `flood` (and its foreground peaks)
    while the flooding settings stay the same: stage 2 of the search varies the object filters
    (``min_size_px``, ``min_peak``) innermost, so it floods each image 4 times, not 80 (the
    labels are `decode`'s). One flood per image is kept at a time."""

    def __init__(self, predicted: Predicted) -> None:
        self.predicted = predicted
        self.flooding: DecodeSettings | None = None
        self.labels: dict[int, np.ndarray] = {}  # image index -> its flood
        self.peaks: dict[int, np.ndarray] = {}  # image index -> `label_maxima` of its flood

    def decode(self, i: int, settings: DecodeSettings) -> np.ndarray:
        channels = self.predicted[i][1]
        fg = np.asarray(channels[..., -1], dtype=np.float32)
        flooding = replace(settings, min_size_px=0, min_peak=0.0)
        if flooding != self.flooding:
            self.flooding, self.labels, self.peaks = flooding, {}, {}
        if i not in self.labels:
            self.labels[i] = flood(fg, channels[..., 0], settings)
        labels = self.labels[i]
        if settings.min_peak > 0 and labels.any() and i not in self.peaks:
            self.peaks[i] = label_maxima(fg, labels)
        return filter_objects(fg, labels, settings, self.peaks.get(i))

    def scores(self, settings: DecodeSettings) -> dict[str, float]:
        """Mean `TUNE_SCORES` of the images decoded with ``settings`` (`score_decoding`)."""
        return _mean_scores(
            image_scores(truth, self.decode(i, settings))
            for i, (truth, _) in enumerate(self.predicted)
        )


def search_decoding(
    predicted: Predicted, start: DecodeSettings
) -> tuple[DecodeSettings, list[dict]]:
    """The best settings (mean DSB score) over the grid, starting from ``start`` (its markers
    are kept), and every trial (settings and scores)."""
    markers = start.markers
    floods = _Floods(predicted)
    trials: list[dict] = []
    best = start.to_json()
    for stage in DECODE_STAGES:
        keys = tuple(markers if k == "MARKER" else k for k in stage)
        for values in itertools.product(*(DECODE_GRID[k] for k in keys)):
            settings = DecodeSettings.from_json({**best, **dict(zip(keys, values, strict=True))})
            trials.append({**settings.to_json(), **floods.scores(settings)})
        best = DecodeSettings.from_json(max(trials, key=lambda t: t["dsb_score"])).to_json()
    top = max(trials, key=lambda t: t["dsb_score"])
    return DecodeSettings.from_json(top), trials
