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
    """Rows of a history.csv as floats (epoch as int), one per epoch in epoch order.

    A resumed run may have logged an epoch twice: the later row is the one that counts. Rows
    without an epoch are left out. Raises ValueError naming the file when it cannot be read.
    """
    try:
        with open(path, newline="") as f:
            raw = list(csv.DictReader(f))
        rows = [
            {k: (int(float(v)) if k == "epoch" else float(v)) for k, v in r.items() if k and v}
            for r in raw
        ]
    except (OSError, ValueError, csv.Error) as exc:
        raise ValueError(f"{path}: unreadable history ({exc})") from exc
    by_epoch = {r["epoch"]: r for r in rows if "epoch" in r}
    return [by_epoch[e] for e in sorted(by_epoch)]
