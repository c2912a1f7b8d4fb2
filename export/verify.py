"""Checks of an exported model: ONNX-vs-Keras parity and scores on the run's held-out images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from export import ExportError
from segcore.data import Sample
from segcore.data.layouts import readable
from segcore.inference.engine import Engine
from segcore.inference.postprocess import Postprocess
from segcore.inference.preprocess import prepare
from segcore.kinds import image_kind, reports_kinds, scores_by_kind
from segcore.scoring.matching import instance_scores
from segcore.scoring.scores import (
    SCORE_NAMES,
    THRESHOLDED_JACCARD,
    binary_scores,
    summarize,
    with_thresholded_jaccard,
)

#: Instance scores averaged into an instance model's test metrics (names of the card's keys).
INSTANCE_METRICS = ("dsb_score", "f1_iou50", "count_error")


def model_inputs(samples: list[Sample], size: int, channels: int) -> np.ndarray:
    """Real images prepared as model input (NxHxWxC float32); unreadable ones are skipped."""
    images = [prepare(image, (size, size), channels) for _, image, _ in readable(samples)]
    if not images:
        raise ExportError("no readable held-out image to check the export on")
    return np.stack(images)


def parity(keras_probs: np.ndarray, engine: Engine, x: np.ndarray) -> float:
    """Largest absolute difference between Keras' (N, H, W) probabilities and the engine's."""
    return float(np.abs(engine.probabilities(x) - keras_probs).max())


@dataclass(frozen=True)
class ImageScores:
    """Per-image scores of held-out images, in the order scored: the image names, their kinds
    (`segcore.kinds.image_kind`), and the scores post-processed and of the raw masks."""

    names: list[str]
    kinds: list[str]
    post: list[dict[str, float]]
    raw: list[dict[str, float]]


def image_scores(
    engine: Engine, samples: list[Sample], settings: Postprocess, batch_size: int = 8
) -> ImageScores:
    """Scores of every readable image of ``samples`` at its original size (see `score`)."""
    instance = engine.instances is not None
    out = ImageScores([], [], [], [])
    for start in tqdm(
        range(0, len(samples), batch_size),
        desc=f"score {engine.name}",
        leave=False,
        disable=None,  # no progress lines in a log or a pipe, only on a terminal
    ):
        triples = list(readable(samples[start : start + batch_size], instance))
        pairs = [(engine.load(image), truth) for _, image, truth in triples]
        if not pairs:
            continue
        out.names.extend(sample.name for sample, _, _ in triples)
        out.kinds.extend(image_kind(im.pixels) for im, _ in pairs)
        if instance:
            preds = engine.predict_batch([im for im, _ in pairs], postprocess=False)
            for (_, truth), pred in zip(pairs, preds, strict=True):
                out.raw.append(with_thresholded_jaccard(binary_scores(truth > 0, pred.mask)))
                out.post.append({**out.raw[-1], **instance_scores(truth, pred.instance_labels())})
            continue
        x = np.stack([engine.resized_input(im) for im, _ in pairs])
        for (im, truth), prob in zip(pairs, engine.probabilities(x), strict=True):
            raw = binary_scores(truth, engine.finish(im, prob, postprocess=False).mask)
            out.raw.append(with_thresholded_jaccard(raw))
            post = engine.finish(im, prob, postprocess=settings).mask
            out.post.append(with_thresholded_jaccard(binary_scores(truth, post)))
    return out


def score(
    engine: Engine, samples: list[Sample], settings: Postprocess, batch_size: int = 8
) -> tuple[dict, dict]:
    """Mean scores over ``samples`` at their original size: (post-processed, raw masks).

    Semantic models: one model run per batch, finished by the engine twice (``settings``, none).
    Each is {"n_images": N, "dice": mean, "iou": ..., "precision", "recall", "accuracy",
    "thresholded_jaccard"}; for instance models the post-processed one adds dsb_score, f1_iou50
    and count_error; for microscopy models it adds ``by_kind``, the same means per image kind.
    """
    scores = image_scores(engine, samples, settings, batch_size)
    post = means(scores.post)
    if reports_kinds(engine.card.dataset):
        post["by_kind"] = scores_by_kind(
            scores.post, scores.kinds, [k for k in post if k != "n_images"]
        )
    return post, means(scores.raw)


def means(rows: list[dict[str, float]]) -> dict:
    """{"n_images": N, score: mean, ...} from per-image score rows."""
    names = (*SCORE_NAMES, THRESHOLDED_JACCARD)
    summary = summarize(rows, names)
    out = {"n_images": len(rows), **{k: summary[k]["mean"] for k in names}}
    for k in INSTANCE_METRICS:
        if rows and k in rows[0]:
            out[k] = float(np.mean([r[k] for r in rows]))
    return out
