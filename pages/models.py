"""Models page: each shipped model card, readable, with where its training data came from.

Card strings (name, architecture, data credit and its address) are shown as plain text: the
name escaped, the facts in a dataframe (never Markdown, never a link).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from segcore.app import ui
from segcore.app.cards import INSTANCE_SCORES, card_facts, card_scores, score_text
from segcore.app.model_choice import ModelEntry
from segcore.app.navigation import enter
from segcore.app.text import plain

#: Height of a dataframe row in pixels (Streamlit's default).
ROW_PX = 35
SCORE_LABELS = {
    "dice": "Test Dice",
    "iou": "Test IoU",
    "precision": "Precision",
    "recall": "Recall",
    "accuracy": "Pixel accuracy",
    **{key: f"Test {label}" for key, label in INSTANCE_SCORES},
}


def show_card(entry: ModelEntry) -> None:
    """One model: scores as metrics, key facts as a table, credit, and the full JSON."""
    with st.container(border=True):
        st.subheader(plain(entry.name))
        scores = card_scores(entry.card)
        n_images = (entry.card.get("test_metrics") or {}).get("n_images")
        if scores:
            labels = [k for k in SCORE_LABELS if k in scores]
            for column, key in zip(st.columns(len(labels)), labels, strict=True):
                column.metric(SCORE_LABELS[key], score_text(key, scores[key]))
            if n_images:
                st.caption(f"Scores: mean over {n_images} held-out test images.")
        else:
            st.caption("No test scores recorded in this card.")
        groups = card_facts(entry.card)
        for column, (group, facts) in zip(st.columns(len(groups)), groups.items(), strict=True):
            column.markdown(f"**{group}**")
            # a dataframe shows card strings as plain text (never Markdown, never a link)
            column.dataframe(
                pd.DataFrame(facts, columns=["fact", "value"]),
                hide_index=True,
                width="stretch",
                height=ROW_PX * (len(facts) + 1) + 3,  # every row, no inner scrolling
                column_config={"value": st.column_config.TextColumn(width="large")},
            )
        with st.expander("Full model card (JSON)"):
            # its top-level keys, each block opened on a click: drawn whole, the shipped cards'
            # JSON (~1000 nodes each, rendered even in a closed expander) took the page's load
            # in Chromium from 5.5 to 11.5 core-seconds
            st.json(entry.card.raw, expanded=1)


enter()
st.title("Models")
st.caption("The model cards written by `python -m export` beside each ONNX file in `models/`.")

for model in ui.shipped_models():
    show_card(model)
