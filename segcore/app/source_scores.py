"""Nuclei models across data sources, from ``bench/results/nuclei_sources-*.json``.

`python -m bench.nuclei_sources` scores nuclei models on the validation or test part of every
source (DSB 2018, MoNuSeg 2018, ...), per image kind; `source_table` turns every such file into
one table (a row per file, model, source and kind) that names the file each row comes from, so
the Benchmarks page shows the cross-source numbers, old and new models side by side.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from segcore.app.kind_scores import KIND_LABELS

#: (result key, column label) of the scores shown, in order.
SOURCE_SCORES = (
    ("dsb_score", "DSB score"),
    ("f1_iou50", "F1 @ IoU 0.5"),
    ("count_error", "count error"),
    ("aji", "AJI"),
    ("dice", "Dice"),
)
#: The files `bench.nuclei_sources` writes (in the results folder).
PATTERN = "nuclei_sources-*.json"


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("results"), dict) else None


def source_table(results_dir: Path) -> pd.DataFrame:
    """One row per (file, model, source, kind) of every cross-source result file in
    ``results_dir``: the split scored, image count and mean scores; empty when there is none.
    Unreadable files are left out."""
    rows = []
    for path in sorted(Path(results_dir).glob(PATTERN)):
        data = _read(path)
        if data is None:
            continue
        for model, sources in data["results"].items():
            for source, result in (sources or {}).items():
                by_kind = result.get("by_kind") if isinstance(result, dict) else None
                for kind, scores in (by_kind or {}).items():
                    if not isinstance(scores, dict) or kind not in KIND_LABELS:
                        continue
                    rows.append(
                        {
                            "model": Path(model).stem,
                            "split": data.get("subset", "?"),
                            "source": source,
                            "kind": KIND_LABELS[kind],
                            "images": scores.get("n_images"),
                            **{label: scores.get(key) for key, label in SOURCE_SCORES},
                            "file": path.name,
                        }
                    )
    return pd.DataFrame(rows)
