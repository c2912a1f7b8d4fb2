"""Per-kind scores of shipped models on their own validation and test splits, into their cards.

    python -m bench.card_scores --data DATA_DIR models/A.onnx [models/B.onnx ...] [--write]

Each model's split is re-created from its card (``split``, ``seed``: the seeded split training
made, `export.run_folder.split_from_card`) on ``--data``, and the model is scored by the engine
exactly as export scores it (`export.verify.score`: post-processed, at each image's size). Prints
the mean Dice, thresholded Jaccard and, for instance models, DSB score, F1@0.5 and count error,
overall and per image kind (`segcore.kinds`). With ``--write`` each card gets its test split's
``thresholded_jaccard`` and ``by_kind`` inside ``test_metrics`` (the existing test numbers are
kept; the script says how far its recomputed Dice lies from them) and ``val_metrics``, the same
scores on the validation split. The test split is scored once and never chosen on.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from export.run_folder import split_from_card
from export.verify import score
from segcore.atomic import write_text
from segcore.inference.engine import Engine, quiet_onnxruntime_logs
from segcore.inference.postprocess import Postprocess

SHOWN = ("dice", "thresholded_jaccard", "dsb_score", "f1_iou50", "count_error")


def card_scores(model: Path, data: Path) -> dict[str, dict]:
    """{"val": metrics, "test": metrics} of one ONNX model on its card's split of ``data``."""
    card = json.loads(model.with_suffix(".json").read_text())
    split = split_from_card(card, data)
    engine = Engine(model)
    settings = Postprocess.from_json(card.get("postprocess") or {})
    return {name: score(engine, split[name], settings)[0] for name in ("val", "test")}


def table_lines(name: str, split: str, metrics: dict) -> list[str]:
    """Printable rows: one per kind (``all`` first) with the `SHOWN` scores present."""
    lines = []
    for kind, row in metrics.get("by_kind", {"all": metrics}).items():
        cells = " ".join(f"{k} {row[k]:.4f}" for k in SHOWN if k in row)
        lines.append(f"{name:<26} {split:<5} {kind:<13} n={row['n_images']:<4d} {cells}")
    return lines


def updated_card(card: dict, scores: dict[str, dict]) -> tuple[dict, float]:
    """The card with the new keys, and |recomputed test Dice - the card's test Dice|."""
    test = scores["test"]
    old = card["test_metrics"]
    drift = abs(test["dice"] - old["dice"])
    new_test = {**old, "thresholded_jaccard": test["thresholded_jaccard"]}
    if "by_kind" in test:
        new_test["by_kind"] = test["by_kind"]
    return {**card, "test_metrics": new_test, "val_metrics": scores["val"]}, drift


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the table, and with --write updates the cards."""
    p = argparse.ArgumentParser(prog="python -m bench.card_scores", description=__doc__)
    p.add_argument("models", type=Path, nargs="+", help="shipped ONNX models (card beside)")
    p.add_argument("--data", type=Path, required=True, help="the data set the models trained on")
    p.add_argument("--write", action="store_true", help="write the scores into the cards")
    a = p.parse_args(argv)
    quiet_onnxruntime_logs()
    for model in a.models:
        scores = card_scores(model, a.data)
        for split in ("val", "test"):
            print("\n".join(table_lines(model.stem, split, scores[split])))
        if a.write:
            card_path = model.with_suffix(".json")
            card, drift = updated_card(json.loads(card_path.read_text()), scores)
            write_text(card_path, json.dumps(card, indent=1) + "\n")
            print(f"{card_path}: written (recomputed test Dice differs by {drift:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
