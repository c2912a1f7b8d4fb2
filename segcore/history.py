"""The per-epoch training log, history.csv: its columns and a reader (no Keras import)."""

from __future__ import annotations

import csv
from pathlib import Path

from segcore.scores import SCORE_NAMES as METRIC_NAMES

COLUMNS = (
    ["epoch", "loss", *METRIC_NAMES, "val_loss"]
    + [f"val_{m}" for m in METRIC_NAMES]
    + ["lr", "seconds"]
)


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of a history.csv as floats (epoch as int)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        {k: (int(v) if k == "epoch" else float(v)) for k, v in r.items() if v != ""} for r in rows
    ]
