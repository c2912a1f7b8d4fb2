"""Models page: each shipped model card, readable, with where its training data came from."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from segcore.app import ui
from segcore.app.cards import INSTANCE_SCORES, card_facts, card_scores, data_credit
from segcore.app.catalog import ModelEntry
from segcore.app.navigation import enter

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
        st.subheader(entry.name)
        scores = card_scores(entry.card)
        n_images = (entry.card.get("test_metrics") or {}).get("n_images")
        if scores:
            labels = [k for k in SCORE_LABELS if k in scores]
            for column, key in zip(st.columns(len(labels)), labels, strict=True):
                column.metric(SCORE_LABELS[key], f"{scores[key]:.3f}")
            if n_images:
                st.caption(f"Scores: mean over {n_images} held-out test images.")
        else:
            st.caption("No test scores recorded in this card.")
        groups = card_facts(entry.card)
        for column, (group, facts) in zip(st.columns(len(groups)), groups.items(), strict=True):
            column.markdown(f"**{group}**")
            table = pd.DataFrame(facts, columns=["fact", "value"]).set_index("fact")
            column.table(table, border="horizontal", hide_header=True)
        credit, url = data_credit(entry.card)
        link = f" ([source]({url}))" if url else ""
        st.markdown(f"**Training data:** {credit}{link}")
        with st.expander("Full model card (JSON)"):
            st.json(entry.card.raw, expanded=True)


enter()
st.title("Models")
st.caption("The model cards written by `python -m export` beside each ONNX file in `models/`.")

for model in ui.shipped_models():
    show_card(model)
