"""The per-epoch training log, history.csv: its columns and a reader (no Keras import)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from segcore.scoring.scores import SCORE_NAMES as METRIC_NAMES

COLUMNS = (
    ["epoch", "loss", *METRIC_NAMES, "val_loss"]
    + [f"val_{m}" for m in METRIC_NAMES]
    + ["lr", "seconds"]
)


def read_history(path: Path) -> list[dict[str, float]]:
    """Rows of a history.csv as floats (epoch as int), one per epoch in epoch order.

    A resumed run may have logged an epoch twice: the later row is the one that counts. What
    a spreadsheet round trip does is undone: a byte-order mark, ``;`` or tab separators (with
    decimal commas). Rows without an epoch or cut short by a kill are left out (a file with no
    epoch column gives none). Raises ValueError naming the file when it cannot be read.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
        lines = text.splitlines()
        delimiter = max(",;\t", key=lines[0].count) if lines else ","
        raw = list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: unreadable history ({exc})") from exc
    decimal_comma = delimiter != ","
    rows = [row for r in raw if (row := _parsed(r, decimal_comma)) is not None]
    by_epoch = {r["epoch"]: r for r in rows}
    return [by_epoch[e] for e in sorted(by_epoch)]


def _parsed(raw: dict, decimal_comma: bool) -> dict[str, float] | None:
    """One row's numbers (epoch as int), or None for a row without an epoch, with a field missing
    or a value that is not a number (a line cut short by a kill)."""
    row: dict[str, float] = {}
    for key, value in raw.items():
        if value is None or key is None:  # fewer or more fields than the header: a torn line
            return None
        if not key or not value.strip():
            continue
        key = key.strip()
        try:
            number = float(value.replace(",", ".") if decimal_comma else value)
        except ValueError:
            return None
        row[key] = int(number) if key == "epoch" else number
    return row if "epoch" in row else None
