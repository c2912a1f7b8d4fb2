"""Evaluate a run's best model on its test split: ``python -m segcore.evaluate RUN_DIR [--tta]``.

Writes test_per_image.csv (image, dice, iou, precision, recall, accuracy), test_metrics.json
(mean and median of each, n_images, threshold) and triptychs/ (image | truth | prediction PNGs
for random and for the worst test images), each file atomically. Scores are computed at each
image's original size (the probabilities are resized back before thresholding), so they differ
from the training-time ``val_dice``, which is measured at the training size.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np

from segcore.atomic import replacing, write_text
from segcore.data import DataError, load_sample, read_split
from segcore.preprocess import ImageError, flip_views, merge_flips, prepare, resize_probabilities
from segcore.scores import SCORE_NAMES, binary_scores, summarize
from segcore.visualize import triptych

N_TRIPTYCHS = 4
CONFIG_KEYS = ("img_size", "channels", "threshold")  # what evaluation reads from config.json


def load_model(run_dir: Path):
    """The run's best model reduced to its main output (compile=False)."""
    from segcore.models import load_main_model

    return load_main_model(Path(run_dir) / "best.keras")


def predict_batch(model, x: np.ndarray, tta: bool = False) -> np.ndarray:
    """Main-output probabilities (N, H, W) for a model-input batch, flip-averaged with tta."""
    if not tta:
        return np.asarray(model.predict(x, verbose=0))[..., -1]
    return merge_flips([np.asarray(model.predict(v, verbose=0))[..., -1] for v in flip_views(x)])


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
    config = json.loads((run_dir / "config.json").read_text())
    size, channels = config["img_size"], config["channels"]
    threshold = config["threshold"] if threshold is None else threshold
    test = read_split(run_dir / "split.json")["test"]
    model = model if model is not None else load_model(run_dir)
    if config.get("target") == "instance":
        return _evaluate_instance_run(run_dir, config, model, tta)
    rows, kept = [], []
    for start in range(0, len(test), batch_size):
        pairs = []
        for sample in test[start : start + batch_size]:
            try:
                pairs.append((sample, *load_sample(sample)))
            except ImageError as exc:
                print(f"warning: skipping {exc}", file=sys.stderr)
        if not pairs:
            continue
        x = np.stack([prepare(img, (size, size), channels) for _, img, _ in pairs])
        probs = predict_batch(model, x, tta)
        for (sample, image, truth), prob in zip(pairs, probs, strict=True):
            pred = resize_probabilities(prob, truth.shape) > threshold
            rows.append({"image": sample.name, **binary_scores(truth, pred)})
            kept.append((sample, image, truth, pred))
    summary = {"n_images": len(rows), "tta": tta, "threshold": threshold, **summarize(rows)}
    _write_results(run_dir, summary, rows, kept, ["image", *SCORE_NAMES], config)
    return summary


def _evaluate_instance_run(run_dir: Path, config: dict, model, tta: bool) -> dict:
    """`evaluate_run` for instance models: tiled at native scale, DSB score, F1, count error."""
    from segcore.instance_eval import evaluate_instances, read_decode, summarize_instances
    from segcore.matching import INSTANCE_SCORE_NAMES

    rows, kept = evaluate_instances(run_dir, model, tta)
    summary = {
        "tta": tta,
        "decode": read_decode(run_dir).get("instances", "defaults"),
        **summarize_instances(rows),
    }
    columns = ["image", *SCORE_NAMES, *INSTANCE_SCORE_NAMES]
    _write_results(run_dir, summary, rows, kept, columns, config)
    return summary


def _write_results(
    run_dir: Path, summary: dict, rows: list[dict], kept: list, columns: list[str], config: dict
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
    _write_triptychs(run_dir / "triptychs", rows, kept, seed=config.get("seed", 0))


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


def _threshold(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 for bad input, no traceback)."""
    from segcore.quiet import quiet_tensorflow

    p = argparse.ArgumentParser(
        prog="python -m segcore.evaluate", description=__doc__.split("\n")[0]
    )
    p.add_argument("run_dir", type=Path)
    p.add_argument("--tta", action="store_true", help="average predictions over the four flips")
    p.add_argument("--batch-size", type=_positive, default=8, help="images per batch (8)")
    p.add_argument(
        "--threshold", type=_threshold, default=None, help="mask threshold (the run's, 0.5)"
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up notices")
    a = p.parse_args(argv)
    quiet_tensorflow(a.verbose)
    try:
        model = _checked_model(a.run_dir)
        s = evaluate_run(a.run_dir, a.tta, model, a.batch_size, a.threshold)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{a.run_dir}: test dice mean {s['dice']['mean']:.4f} median {s['dice']['median']:.4f} "
        f"iou {s['iou']['mean']:.4f} ({s['n_images']} images{', tta' if a.tta else ''})"
    )
    return 0


def _checked_model(run_dir: Path):
    """The run's model, after checking the files evaluation reads (DataError naming the file)."""
    path = run_dir / "best.keras"
    if not path.is_file():
        raise DataError(f"{run_dir}: no best.keras (not a finished run folder)")
    for name, keys in (("config.json", CONFIG_KEYS), ("split.json", ("root", "test"))):
        try:
            content = json.loads((run_dir / name).read_text())
            missing = [k for k in keys if k not in content]
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{run_dir / name}: unreadable ({type(exc).__name__})") from None
        if missing:
            raise DataError(f"{run_dir / name}: no {', '.join(missing)} (not a run's file)")
    try:
        return load_model(run_dir)
    except Exception as exc:  # Keras raises many types for a file it refuses
        reason = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise DataError(f"{path}: Keras cannot load it ({type(exc).__name__}: {reason})") from None


if __name__ == "__main__":
    sys.exit(main())
