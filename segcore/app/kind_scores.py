"""Scores per image kind (fluorescence, bright-field, H&E) of the shipped models, from their cards.

A card keeps them as ``test_metrics["by_kind"]`` (and ``val_metrics["by_kind"]``), written by
export or ``python -m bench.card_scores``; models without them are left out.
"""

from __future__ import annotations

import pandas as pd

from segcore.app.model_choice import ModelEntry
from segcore.kinds import KINDS

#: (card key, column label) of the per-kind scores shown, in order; absent ones are left out.
KIND_SCORES = (
    ("dice", "Dice"),
    ("dsb_score", "DSB score"),
    ("f1_iou50", "F1 @ IoU 0.5"),
    ("count_error", "count error"),
)
KIND_LABELS = {"all": "all images", "fluorescence": "fluorescence", "brightfield": "bright-field"}
KIND_LABELS["he"] = "H&E / colour"


def kind_table(entries: list[ModelEntry], split: str = "test") -> pd.DataFrame:
    """One row per (model, image kind) with the kind's image count and mean scores on
    ``split`` (``test`` or ``val``); an empty table when no card holds per-kind scores."""
    rows = []
    for entry in entries:
        by_kind = (entry.card.raw.get(f"{split}_metrics") or {}).get("by_kind")
        if not isinstance(by_kind, dict):
            continue
        for kind in ("all", *KINDS):
            scores = by_kind.get(kind)
            if not isinstance(scores, dict):
                continue
            rows.append(
                {
                    "model": entry.name,
                    "kind": KIND_LABELS[kind],
                    "images": scores.get("n_images"),
                    **{label: scores.get(key) for key, label in KIND_SCORES},
                }
            )
    table = pd.DataFrame(rows)
    return table.dropna(axis=1, how="all") if len(table) else table
