"""Nuclei as objects, side by side: instance scores of exported models on one split of DSB data.

    python -m bench.nuclei_scores --data DSB_DIR --subset test --model models/A.onnx [...]
        [--min-distance 2 3 5] [--out bench/results/nuclei-scores.json]

The split is the seeded one training uses (`segcore.data.make_split`, ``--fractions`` and
``--seed``, default 0.8,0.1,0.1 and 42), so ``test`` is the shipped models' test split. Each
semantic model is scored twice: connected components of its mask, and a distance-transform
watershed on that mask (`segcore.inference.instances.distance_watershed`, one row per
``--min-distance``); an instance model is scored on its own labels. Each row gives the mean
DSB 2018 score, F1 at IoU 0.5, relative count error and Dice over the images, and is printed and
written to ``--out``. Choose ``--min-distance`` on ``--subset val``, then run ``test`` once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from segcore.atomic import write_text
from segcore.data import find_samples, make_split
from segcore.data.layouts import load_labels
from segcore.data.split import SPLIT_NAMES, parse_fractions
from segcore.inference.engine import Engine
from segcore.inference.instances import distance_watershed, remove_small
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.scoring.matching import instance_scores
from segcore.scoring.scores import dice

MIN_SIZE_PX = 8  # the baselines drop objects smaller than this, as the default decoding does


def _rows_for(pred, min_distances: list[int]) -> dict[str, np.ndarray]:
    """Label images per method for one prediction."""
    if pred.labels is not None:
        return {"instances": pred.labels}
    out = {"components": remove_small(ndimage.label(pred.mask)[0], MIN_SIZE_PX)}
    for d in min_distances:
        out[f"distance_watershed(min_distance={d})"] = distance_watershed(pred.mask, d, MIN_SIZE_PX)
    return out


def score_models(
    models: list[Path], samples: list, min_distances: list[int]
) -> list[dict[str, object]]:
    """Mean DSB score, F1@0.5, count error and Dice per (model, method) over the samples."""
    results = []
    for model in models:
        engine = Engine(model)
        per_method: dict[str, list[dict]] = {}
        for sample in tqdm(samples, desc=engine.name, leave=False):
            image, truth = load_labels(sample)
            pred = engine.predict(image)
            for method, labels in _rows_for(pred, min_distances).items():
                row = instance_scores(truth, labels)
                row["dice"] = dice(truth > 0, labels > 0)
                per_method.setdefault(method, []).append(row)
        for method, rows in per_method.items():
            results.append(
                {
                    "model": engine.name,
                    "mode": engine.mode,
                    "method": method,
                    "n_images": len(rows),
                    **{
                        k: float(np.mean([r[k] for r in rows]))
                        for k in ("dsb_score", "f1_iou50", "count_error", "dice")
                    },
                }
            )
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line; prints a table and writes the JSON results."""
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.nuclei_scores",
        description=__doc__,
    )
    p.add_argument("--data", required=True, type=Path, help="DSB stage1_train (or its parent)")
    p.add_argument("--subset", default="test", choices=SPLIT_NAMES, help="which split to score")
    p.add_argument("--split", dest="subset", choices=SPLIT_NAMES, help=argparse.SUPPRESS)
    p.add_argument("--fractions", default="0.8,0.1,0.1")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--model", required=True, type=Path, action="append", help="ONNX model(s)")
    p.add_argument("--min-distance", type=int, nargs="+", default=[3])
    p.add_argument("--out", type=Path, help="JSON results (default: print only)")
    a = p.parse_args(argv)
    quiet_onnxruntime_logs()
    _, samples = find_samples(a.data, "dsb")
    split = make_split(samples, parse_fractions(a.fractions), a.seed)[a.subset]
    results = score_models(a.model, split, a.min_distance)
    print(f"{a.split} split: {len(split)} images (seed {a.seed}, {a.fractions})")
    print(f"{'model':<24} {'method':<38} {'DSB':>6} {'F1@.5':>6} {'count err':>9} {'Dice':>6}")
    for r in results:
        print(
            f"{r['model']:<24} {r['method']:<38} {r['dsb_score']:6.4f} {r['f1_iou50']:6.4f} "
            f"{r['count_error']:9.4f} {r['dice']:6.4f}"
        )
    if a.out:
        record = {
            "split": a.split,
            "n_images": len(split),
            "seed": a.seed,
            "fractions": a.fractions,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "results": results,
        }
        write_text(a.out, json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
