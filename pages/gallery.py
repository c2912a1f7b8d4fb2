"""Gallery page: the bundled real samples, their truth and a model's prediction, with Dice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from segcore.app import ui
from segcore.app.cards import INSTANCE_SCORES
from segcore.app.gallery import (
    ORDERS,
    GalleryItem,
    mean_dice,
    sample_sets,
    score_samples,
    sort_items,
)
from segcore.app.navigation import enter
from segcore.app.text import plain
from segcore.card import ModelCard
from segcore.paths import samples_dir

COLUMNS = 2
NAME_CHARS = 24


@st.cache_data(show_spinner="Segmenting the samples…", max_entries=16)
def scored(model_path: str, version: int, folder: str, dataset: str) -> tuple[list, list]:
    """Gallery items and problems for one model on one bundled dataset (cached)."""
    engine = ui.load_engine(model_path, version)
    return score_samples(engine, sample_sets(Path(folder))[dataset])


def instance_scores(card: ModelCard) -> list[tuple[str, str, None]]:
    """The card's held-out instance scores (DSB score, F1 at IoU 0.5, count error) as metrics,
    for instance models."""
    metrics = card.test_metrics
    if card.instances is None:
        return []
    shown = []
    for key, label in INSTANCE_SCORES:
        value = metrics.get(key)
        if isinstance(value, int | float):
            text = f"{100 * value:.1f} %" if key == "count_error" else f"{value:.3f}"
            shown.append((f"Test {label}", text, None))
    return shown


def short(name: str) -> str:
    """A file stem cut to `NAME_CHARS` (DSB ids are 64 hex digits)."""
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def show_items(items: list[GalleryItem]) -> None:
    """The triptychs in a grid, captioned with name, Dice and IoU."""
    for start in range(0, len(items), COLUMNS):
        for column, item in zip(st.columns(COLUMNS), items[start : start + COLUMNS], strict=False):
            caption = f"{plain(short(item.name))} · Dice {item.dice:.3f} · IoU {item.iou:.3f}"
            if item.count is not None:
                caption += f" · {item.count} found / {item.true_count} annotated"
            column.image(item.picture, caption=caption, width="stretch")


enter()
st.title("Gallery")
st.caption(
    "Bundled real samples: image | ground truth | prediction (red, over the image), "
    "scored by the model trained on the same dataset. Most samples were in that model's "
    "training split, so these scores run high: the held-out test Dice is on the Models page."
)

entries = ui.shipped_models()
sets = sample_sets(samples_dir())
if not sets:
    st.info(f"No bundled samples found in `{samples_dir()}`.")
    st.stop()
with_model = [name for name in sets if any(e.family == name for e in entries)]
# open on the dataset of the Segment page's model, else the first one with a model
preferred = st.session_state.get(ui.DATASET_KEY, ui.DEFAULT_FAMILY)
start = preferred if preferred in sets else (with_model[0] if with_model else list(sets)[0])
if st.session_state.get("gallery-dataset") not in sets:
    st.session_state["gallery-dataset"] = start
dataset = st.sidebar.radio("Dataset", list(sets), key="gallery-dataset")
st.session_state[ui.DATASET_KEY] = dataset
matching = [e for e in entries if e.family == dataset]
if not matching:
    st.info(
        f"No shipped model was trained on {plain(dataset)}; export one with "
        "`python -m export RUN_DIR`."
    )
    st.stop()
entry = ui.pick_model(matching, key=f"gallery-model-{dataset}")
order = st.sidebar.radio("Sort", ORDERS, key="gallery-order")
if ui.engine_for(entry) is None:
    st.stop()

items, problems = scored(str(entry.path), entry.version, str(samples_dir()), dataset)
for problem in problems:
    st.warning(f"Skipped a sample: {problem}")
if not items:
    st.stop()

best = max(items, key=lambda it: it.dice)
worst = min(items, key=lambda it: it.dice)
numbers = [
    ("Samples", str(len(items)), None),
    ("Mean Dice", f"{mean_dice(items):.3f}", None),
    ("Best", f"{best.dice:.3f}", best.name),
    ("Worst", f"{worst.dice:.3f}", worst.name),
]
errors = [it.count_error for it in items if it.count_error is not None]
if errors:
    numbers.append(("Mean count error", f"{100 * np.mean(errors):.1f} %", None))
numbers += instance_scores(entry.card)
for column, (label, value, name) in zip(st.columns(len(numbers)), numbers, strict=True):
    column.metric(label, value, help=None if name is None else plain(name))

ordered = sort_items(items, order)
show_items(ordered)
with st.expander("Per-image scores"):
    rows = []
    for it in ordered:
        row = {"image": it.name, "Dice": it.dice, "IoU": it.iou}
        if it.count is not None:
            row.update(found=it.count, annotated=it.true_count, **{"count error": it.count_error})
        rows.append(row)
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        column_config={"Dice": number, "IoU": number, "count error": number},
    )
