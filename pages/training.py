"""Training page: loss, Dice, accuracy and IoU per epoch for one or several models, overlaid."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from segcore.app import ui
from segcore.app.curves import CURVES, curve_figure, history_frame, summary_rows
from segcore.app.navigation import enter

enter()
st.title("Training curves")
st.caption(
    "Per-epoch logs of each shipped model: training (solid) and validation (dotted); "
    "the star marks the best epoch (highest validation Dice), the checkpoint that was exported."
)

entries = [e for e in ui.shipped_models() if e.history is not None]
if not entries:
    st.info(
        "None of the models has a training log (`<name>.history.csv` beside the model); "
        "`python -m export RUN_DIR` copies the run's history.csv there."
    )
    st.stop()

names = [e.name for e in entries]
chosen = st.multiselect(
    "Models", names, default=names[:4], key="training-models", placeholder="Pick models"
)
if not chosen:
    st.info("Pick one or more models to compare.")
    st.stop()

histories: dict[str, pd.DataFrame] = {}
for entry in entries:
    if entry.name not in chosen:
        continue
    try:
        histories[entry.name] = history_frame(entry.history)
    except ValueError as exc:
        st.warning(str(exc))
if not histories:
    st.stop()

log_loss = st.sidebar.toggle("Loss on a log scale", key="training-log-loss")
figures = {
    metric: curve_figure(histories, metric, metric == "loss" and log_loss) for metric in CURVES
}
shown = [(metric, fig) for metric, fig in figures.items() if fig is not None]
for start in range(0, len(shown), 2):
    for column, (metric, fig) in zip(st.columns(2), shown[start : start + 2], strict=False):
        column.plotly_chart(fig, key=f"curve-{metric}")
missing = [CURVES[m] for m, fig in figures.items() if fig is None]
if missing:
    st.caption(f"Not logged for these models: {', '.join(missing)}.")

st.subheader("Summary")
summary = pd.DataFrame(summary_rows(histories))
number = st.column_config.NumberColumn(format="%.4f")
st.dataframe(
    summary,
    hide_index=True,
    column_config={"best val Dice": number, "val loss there": number},
)
