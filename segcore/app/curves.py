"""Training curves from each model's ``<name>.history.csv`` as interactive plotly figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from segcore.history import read_history

#: Curves the Training page offers: history column -> axis title.
CURVES = {"loss": "Loss", "dice": "Dice", "accuracy": "Pixel accuracy", "iou": "IoU"}
COLORS = qualitative.Plotly


def history_frame(path: Path) -> pd.DataFrame:
    """A history.csv (`segcore.history.read_history`) as a table, one row per epoch.

    Raises ValueError naming the file when it cannot be read or logs no epoch.
    """
    rows = read_history(path)
    if not rows:
        raise ValueError(f"{path}: unreadable history (no epochs logged)")
    return pd.DataFrame(rows)


def best_epoch(history: pd.DataFrame) -> int | None:
    """The epoch with the highest ``val_dice`` (the checkpoint rule), else the lowest
    ``val_loss``; None when neither was logged."""
    for column, pick in (("val_dice", "idxmax"), ("val_loss", "idxmin")):
        values = history.get(column)
        if values is not None and values.notna().any():
            return int(history.loc[getattr(values, pick)(), "epoch"])
    return None


def curve_figure(
    histories: dict[str, pd.DataFrame],
    metric: str,
    log_y: bool = False,
    colors: dict[str, str] | None = None,
) -> go.Figure | None:
    """Train (solid) and validation (dotted) ``metric`` per model, best epoch starred, on a log
    y axis if ``log_y``, each model in its ``colors`` entry (default: in turn); None when no
    history logged ``metric``."""
    fig = go.Figure()
    for i, (name, history) in enumerate(histories.items()):
        color = (colors or {}).get(name, COLORS[i % len(COLORS)])
        for column, dash, kind in ((metric, "solid", "train"), (f"val_{metric}", "dot", "val")):
            if column not in history:
                continue
            fig.add_trace(
                go.Scatter(
                    x=history["epoch"],
                    y=history[column],
                    mode="lines",
                    name=f"{name} {kind}",
                    legendgroup=name,
                    line={"color": color, "dash": dash, "width": 2},
                )
            )
        best = best_epoch(history)
        val = f"val_{metric}"
        if best is not None and val in history:
            y = history.loc[history["epoch"] == best, val]
            fig.add_trace(
                go.Scatter(
                    x=[best],
                    y=y,
                    mode="markers",
                    name=f"{name} best epoch {best}",
                    legendgroup=name,
                    showlegend=False,
                    marker={"symbol": "star", "size": 13, "color": color, "line": {"width": 1}},
                    hovertemplate=f"{name}<br>best epoch %{{x}}<br>val {metric} %{{y:.4f}}"
                    "<extra></extra>",
                )
            )
    if not fig.data:
        return None
    fig.update_layout(
        title=CURVES.get(metric, metric),
        xaxis_title="epoch",
        yaxis_title=CURVES.get(metric, metric),
        hovermode="x unified",
        # the legend sits under the x axis title (never over it), the plot keeps its height
        legend={"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top"},
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        height=340 + 22 * len(fig.data) // 2,
    )
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _at_epoch(history: pd.DataFrame, epoch: int | None, column: str) -> float | None:
    """``column`` at ``epoch``, or None when either is missing."""
    if epoch is None or column not in history:
        return None
    values = history.loc[history["epoch"] == epoch, column]
    return float(values.iloc[0]) if len(values) else None


def summary_rows(histories: dict[str, pd.DataFrame]) -> list[dict]:
    """Per model: epochs run, best epoch, val Dice and val loss there, and training minutes."""
    rows = []
    for name, history in histories.items():
        best = best_epoch(history)
        minutes = history["seconds"].sum() / 60 if "seconds" in history else None
        rows.append(
            {
                "model": name,
                "epochs": int(history["epoch"].max()),
                "best epoch": best,
                "best val Dice": _at_epoch(history, best, "val_dice"),
                "val loss there": _at_epoch(history, best, "val_loss"),
                "train minutes": None if minutes is None else round(float(minutes), 1),
            }
        )
    return rows
