"""The per-image results table (``predictions.csv``): one shape for the CLI and the app.

Columns (`COLUMNS`), in order:

- ``file``: the image's file name (no folder); ``folder``: the folder it was read from (empty
  for an upload);
- ``model``: the model that segmented it; ``threshold``: the probability threshold used;
  ``tta``: whether the four flips were averaged;
- ``width``, ``height``: the image's size in pixels; ``area_px``, ``area_pct``: the predicted
  foreground, in pixels and percent of the image;
- ``components``: connected regions of the mask; ``count``: objects found, which is the nuclei
  count for an instance model (touching nuclei are told apart, so it is usually above
  ``components``) and ``components`` for any other model;
- with a ground truth: ``annotated`` (objects in the truth), ``dice`` and ``iou`` of the masks,
  and for instance models ``dsb_score`` (the DSB 2018 score: mean over IoU thresholds
  0.5..0.95 of TP / (TP + FP + FN)) and ``f1_iou50`` (F1 of objects matched at IoU > 0.5);
  ``truth``: the truth file;
- ``seconds``: time spent on the image; ``outputs``: the files written for it, ``;``-separated;
  ``error``: why the image failed (empty when it succeeded).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from pathlib import Path

from segcore.atomic import write_text

COLUMNS = (
    "file",
    "folder",
    "model",
    "threshold",
    "tta",
    "width",
    "height",
    "area_px",
    "area_pct",
    "components",
    "count",
    "annotated",
    "dice",
    "iou",
    "dsb_score",
    "f1_iou50",
    "truth",
    "seconds",
    "outputs",
    "error",
)
#: Separator of the file names in the ``outputs`` column.
OUTPUTS_SEPARATOR = ";"


def table_text(rows: Iterable[Mapping[str, object]]) -> str:
    """The rows as CSV text with the `COLUMNS` header (missing values empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_table(path: Path, rows: Iterable[Mapping[str, object]]) -> None:
    """Write the rows to ``path`` atomically (UTF-8)."""
    write_text(path, table_text(rows))


def read_table(path: Path) -> list[dict[str, str]]:
    """The complete rows of a results table: a row cut short by a kill (columns missing) or a
    torn last line is left out; a missing file gives no rows."""
    if not path.is_file():
        return []
    rows: list[dict[str, str]] = []
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        try:
            for row in csv.DictReader(f):
                if all(row.get(k) is not None for k in COLUMNS):
                    rows.append({k: row[k] for k in COLUMNS})
        except csv.Error:
            pass  # a torn last line: the rows before it still count
    return rows


def row_outputs(row: Mapping[str, str], folder: Path) -> list[Path]:
    """The files a row names in ``outputs``, under ``folder``."""
    names = [n for n in str(row.get("outputs") or "").split(OUTPUTS_SEPARATOR) if n]
    return [folder / n for n in names]
