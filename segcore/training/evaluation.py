"""Score a run's best Keras model on its test split through the inference engine's pipeline.

The Keras model becomes the engine's runner (`keras_runner`) under the card the run's config
describes (`RunConfig.card`), so evaluation pre-processes, tiles, flips and decodes exactly as the
exported model will; only post-processing is left out (the Keras scores are the raw model's).
Writes test_per_image.csv, test_metrics.json (mean and median of each score) and triptychs/
(image | truth | prediction PNGs for random and for the worst test images), each atomically.
Scores are computed at each image's original size, so they differ from the training-time
``val_dice``, measured at the training size.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from segcore.atomic import replacing, write_text
from segcore.card import ModelCard, TileSpec
from segcore.data import read_split
from segcore.data.layouts import readable
from segcore.errors import DataError, reason
from segcore.inference.engine import Engine, Runner
from segcore.inference.preprocess import flip_averaged
from segcore.inference.visualize import triptych
from segcore.kinds import image_kind, reports_kinds, scores_by_kind
from segcore.run_config import RunConfig, read_decode
from segcore.scoring.decode_search import image_scores
from segcore.scoring.matching import INSTANCE_SCORE_NAMES
from segcore.scoring.scores import (
    SCORE_NAMES,
    THRESHOLDED_JACCARD,
    binary_scores,
    summarize,
    with_thresholded_jaccard,
)

N_TRIPTYCHS = 4


def load_model(run_dir: Path):
    """The run's best model reduced to its main output, the "mask" layer with all its channels
    (instance models: marker and foreground), compile=False; DataError naming the file when it
    is missing or Keras cannot load it."""
    from segcore.models import load_main_model

    path = Path(run_dir) / "best.keras"
    if not path.is_file():
        raise DataError(f"{run_dir}: no best.keras (not a finished run folder)")
    try:
        return load_main_model(path)
    except Exception as exc:  # Keras raises many types for a file it refuses
        raise DataError(f"{path}: Keras cannot load it ({reason(exc)})") from None


def keras_runner(model) -> Runner:
    """A Keras model as an engine runner: NHWC batch -> NHWK maps, in inference mode, through
    Keras' compiled predict step (`predict_on_batch`): an eager ``model(batch)`` call per tile
    batch ran op by op and took about 3x as long over a validation set's tiles."""

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict_on_batch(batch))

    return run


def predict_batch(model, x: np.ndarray, tta: bool = False) -> np.ndarray:
    """Main-output probabilities (N, H, W) of a Keras model for a model-input batch."""
    run = keras_runner(model)
    return np.asarray((flip_averaged(run) if tta else run)(x))[..., -1]


def run_engine(
    run_dir: Path, model, tile: TileSpec | None = None, config: RunConfig | None = None
) -> Engine:
    """The inference engine around a run's Keras model, under the card of its config (with the
    tuned decoding of decode.json, and ``tile`` instead of the run's when given)."""
    config = config or RunConfig.read(run_dir)
    decoded = read_decode(run_dir)
    tuned_tile = decoded.get("tile")
    tile = tile or (
        TileSpec(int(tuned_tile["size"]), float(tuned_tile["overlap"])) if tuned_tile else None
    )
    card: ModelCard = config.card(decoded.get("instances"), tile)
    return Engine.from_runner(card, keras_runner(model))


def evaluate_run(
    run_dir: Path,
    tta: bool = False,
    model=None,
    batch_size: int = 8,
    threshold: float | None = None,
) -> dict:
    """Score the best model on the test split, write the CSV, JSON and triptychs; returns the
    summary. ``threshold`` defaults to the run's (config.json)."""
    run_dir = Path(run_dir)
    config = RunConfig.read(run_dir)
    instance = config.settings.target == "instance"
    if model is None:
        model = load_model(run_dir)
    engine = run_engine(run_dir, model, config=config)
    threshold = config.threshold if threshold is None else threshold
    test = read_split(run_dir / "split.json")["test"]
    rows, kept = [], []
    for start in range(0, len(test), batch_size):
        chunk = list(readable(test[start : start + batch_size], instance))
        preds = engine.predict_batch(
            [image for _, image, _ in chunk],
            threshold=None if instance else threshold,
            tta=tta,
            postprocess=False,
            batch_size=batch_size,
        )
        for (sample, image, truth), pred in zip(chunk, preds, strict=True):
            if instance:
                rows.append({"image": sample.name, **image_scores(truth, pred.instance_labels())})
                truth = truth > 0
            else:
                scores = with_thresholded_jaccard(binary_scores(truth, pred.mask))
                rows.append({"image": sample.name, **scores})
            kept.append((sample, image, truth, pred.mask))
    names = (*SCORE_NAMES, *(INSTANCE_SCORE_NAMES if instance else (THRESHOLDED_JACCARD,)))
    summary = _summary(run_dir, rows, tta, threshold, instance, names)
    columns = ["image", *names, *_add_kinds(summary, rows, kept, config.dataset, names)]
    _write_results(run_dir, summary, rows, kept, columns, config.settings.seed)
    return summary


def _summary(
    run_dir: Path,
    rows: list[dict],
    tta: bool,
    threshold: float,
    instance: bool,
    names: tuple[str, ...],
) -> dict:
    if not instance:
        return {"n_images": len(rows), "tta": tta, "threshold": threshold, **summarize(rows, names)}
    return {
        "tta": tta,
        "decode": read_decode(run_dir).get("instances", "defaults"),
        "n_images": len(rows),
        **summarize(rows, names),
    }


def _add_kinds(
    summary: dict, rows: list[dict], kept: list, dataset: str, names: tuple[str, ...]
) -> list[str]:
    """Each row's image kind (`segcore.kinds`) and the summary's ``by_kind`` means, for
    microscopy runs; returns the extra CSV column (none for lesion photos)."""
    if not reports_kinds(dataset):
        return []
    kinds = [image_kind(image) for _, image, _, _ in kept]
    for row, kind in zip(rows, kinds, strict=True):
        row["kind"] = kind
    summary["by_kind"] = scores_by_kind(rows, kinds, names)
    return ["kind"]


def _write_results(
    run_dir: Path, summary: dict, rows: list[dict], kept: list, columns: list[str], seed: int
) -> None:
    """test_per_image[_tta].csv, test_metrics[_tta].json (atomically) and the triptychs."""
    suffix = "_tta" if summary.get("tta") else ""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(
        {k: (f"{v:.5f}" if isinstance(v, float) else v) for k, v in r.items()} for r in rows
    )
    write_text(run_dir / f"test_per_image{suffix}.csv", text.getvalue())
    write_text(run_dir / f"test_metrics{suffix}.json", json.dumps(summary, indent=1))
    if rows:
        _write_triptychs(run_dir / "triptychs", rows, kept, seed=seed)


def _write_triptychs(folder: Path, rows: list[dict], kept: list, seed: int) -> None:
    folder.mkdir(exist_ok=True)
    order = np.argsort([r["dice"] for r in rows])
    rng = np.random.default_rng(seed)
    picks = [("worst", i) for i in order[:N_TRIPTYCHS]]
    picks += [
        ("random", i) for i in rng.choice(len(rows), min(N_TRIPTYCHS, len(rows)), replace=False)
    ]
    for kind, i in picks:
        sample, image, truth, pred = kept[i]
        caption = f"{sample.name}  dice {rows[i]['dice']:.3f}"
        with replacing(folder / f"{kind}_{sample.name}.png") as tmp:
            triptych(image, truth, pred, caption).save(tmp, format="PNG")
