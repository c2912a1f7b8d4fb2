"""What the Benchmarks page adds to its tables: filters by data set and kind of image, every
model in the speed table, accuracy against speed as one chart, and a line on how to read each
chart.

Kinds of image: a card may hold per-kind test scores, ``test_metrics["by_kind"]`` (or a top-level
``by_kind``), a mapping ``kind -> {"dice": .., "iou": .., "n_images": ..}`` (kinds such as
``fluorescence``, ``bright-field``, ``H&E``); `kinds` lists them and `model_rows_for_kind` shows
one kind's scores in place of the whole test split's.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from segcore.app.model_choice import ModelEntry

#: Shared plotly layout: the title on the left, the legend in one row under it (never over the
#: x axis labels), tick labels given room by automargin; readable at 1400 px in two columns.
LAYOUT = {
    "height": 420,
    "margin": {"l": 10, "r": 10, "t": 90, "b": 10},
    "title_x": 0,
    "title_xanchor": "left",
    "title_y": 0.97,
    "title_yanchor": "top",
    "xaxis_automargin": True,
    "yaxis_automargin": True,
    "legend": {"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
    "legend_title_text": "",
}
#: How to read each chart, one line under it.
HOW_TO_READ = {
    "scores": "How to read: one pair of bars per model; higher is better (1 = a perfect mask). "
    "Dice weighs overlap twice, so it is always at or above IoU.",
    "accuracy_speed": "How to read: one point per model file and machine; up is more accurate "
    "(test Dice), left is faster (median ms per model-size image, batch 1). The best trade-offs "
    "lie top left; hover a point for its name. Models without a speed record are not drawn.",
    "latency": "How to read: shorter bars are faster; onnxruntime (what the app runs) beside "
    "Keras (what training runs) for the same model-size image, batch 1, median.",
    "e2e": "How to read: seconds for one 3000x2000 JPEG through the app's engine (decode, "
    "resize, segment, resize back, clean up); shorter is faster.",
    "training": "How to read: taller bars train faster; each device has its own panel and "
    "scale, so compare settings within a panel, not across.",
}
#: Columns of the Models table that fit 1400 px; the rest are in an expander.
MAIN_MODEL_COLUMNS = (
    "model",
    "dataset",
    "precision",
    "ONNX MB",
    "test Dice",
    "test IoU",
    "DSB score",
    "F1 @ IoU 0.5",
    "count error",
)
NOT_MEASURED = "not measured"


def family_of(entries: list[ModelEntry]) -> dict[str, str]:
    """Each model's data-set family (``isic``, ``dsb``...) by name."""
    return {e.name: e.family for e in entries}


def filter_entries(entries: list[ModelEntry], families: list[str]) -> list[ModelEntry]:
    """The models of the chosen data sets (all when none is chosen)."""
    return [e for e in entries if not families or e.family in families]


def filter_records(records: list[dict], entries: list[ModelEntry]) -> list[dict]:
    """The benchmark records of the given models (a record names its model)."""
    names = {e.name for e in entries}
    return [r for r in records if r.get("model") in names]


def _by_kind(entry: ModelEntry) -> dict:
    metrics = entry.card.get("test_metrics") or {}
    found = metrics.get("by_kind") or entry.card.get("by_kind") or {}
    return found if isinstance(found, dict) else {}


def kinds(entries: list[ModelEntry]) -> list[str]:
    """The kinds of image some card has per-kind test scores for, in first-seen order."""
    return list(dict.fromkeys(k for e in entries for k in _by_kind(e)))


def model_rows_for_kind(table: pd.DataFrame, entries: list[ModelEntry], kind: str) -> pd.DataFrame:
    """The Models table with one kind's test Dice, IoU and image count in place of the whole
    split's; models without scores for that kind are left out."""
    scores = {e.name: _by_kind(e).get(kind) for e in entries}
    keep = [isinstance(scores.get(name), dict) for name in table["model"]]
    out = table[keep].copy()
    for column, key in (("test Dice", "dice"), ("test IoU", "iou"), ("test images", "n_images")):
        if column in out:
            out[column] = [(scores[name] or {}).get(key) for name in out["model"]]
    return out


def with_every_model(latency: pd.DataFrame, entries: list[ModelEntry]) -> pd.DataFrame:
    """The speed table with a row for each model that has no speed record yet (its speed
    columns empty, ``runs on`` saying so), so no model is missing from it."""
    measured = set(latency["model"]) if "model" in latency else set()
    missing = [
        {"model": e.name, "precision": e.card.get("precision", "fp32"), "runs on": NOT_MEASURED}
        for e in entries
        if e.name not in measured
    ]
    if not missing:
        return latency
    return pd.concat([latency, pd.DataFrame(missing)], ignore_index=True)


def accuracy_speed_figure(models: pd.DataFrame, latency: pd.DataFrame) -> go.Figure | None:
    """One interactive scatter: test Dice against median batch-1 latency, one point per model
    file and machine, the model's name on hover; None when no model has both."""
    if "onnxruntime ms" not in latency or not len(models):
        return None
    speed = latency.dropna(subset=["onnxruntime ms"])[["model", "runs on", "onnxruntime ms"]]
    points = speed.merge(models[["model", "dataset", "precision", "test Dice"]], on="model")
    points = points.dropna(subset=["test Dice"])
    if not len(points):
        return None
    fig = px.scatter(
        points,
        x="onnxruntime ms",
        y="test Dice",
        color="dataset",
        symbol="runs on",
        hover_name="model",
        hover_data={"precision": True, "runs on": True, "dataset": False},
    )
    fig.update_traces(marker={"size": 14})
    fig.update_xaxes(title_text="ms per image (batch 1, median)", rangemode="tozero")
    fig.update_yaxes(title_text="test Dice")
    fig.update_layout(title_text="Accuracy vs speed", **LAYOUT)
    return fig
