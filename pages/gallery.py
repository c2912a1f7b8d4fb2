"""Gallery page: the bundled real samples, their truth and a model's prediction, with Dice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from segcore.app import ui
from segcore.app.gallery import (
    ORDERS,
    GalleryItem,
    mean_dice,
    sample_sets,
    score_samples,
    sort_items,
)
from segcore.app.settings import samples_dir

COLUMNS = 2
NAME_CHARS = 24


@st.cache_data(show_spinner="Segmenting the samples…", max_entries=16)
def scored(model_path: str, version: int, folder: str, dataset: str) -> tuple[list, list]:
    """Gallery items and problems for one model on one bundled dataset (cached)."""
    engine = ui.load_engine(model_path, version)
    return score_samples(engine, sample_sets(Path(folder))[dataset])


def short(name: str) -> str:
    """A file stem cut to `NAME_CHARS` (DSB ids are 64 hex digits)."""
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"


def show_items(items: list[GalleryItem]) -> None:
    """The triptychs in a grid, captioned with name, Dice and IoU."""
    for start in range(0, len(items), COLUMNS):
        for column, item in zip(st.columns(COLUMNS), items[start : start + COLUMNS], strict=False):
            column.image(
                item.picture,
                caption=f"{short(item.name)} · Dice {item.dice:.3f} · IoU {item.iou:.3f}",
                width="stretch",
            )


ui.route_through_entry("pages/gallery.py")
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
dataset = st.sidebar.radio(
    "Dataset",
    list(sets),
    index=list(sets).index(with_model[0]) if with_model else 0,
    key="gallery-dataset",
)
matching = [e for e in entries if e.family == dataset]
if not matching:
    st.info(
        f"No shipped model was trained on {dataset}; export one with `python -m export RUN_DIR`."
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
stats = st.columns(4)
stats[0].metric("Samples", len(items))
stats[1].metric("Mean Dice", f"{mean_dice(items):.3f}")
stats[2].metric("Best", f"{best.dice:.3f}", help=best.name)
stats[3].metric("Worst", f"{worst.dice:.3f}", help=worst.name)

ordered = sort_items(items, order)
show_items(ordered)
with st.expander("Per-image scores"):
    table = pd.DataFrame([{"image": it.name, "Dice": it.dice, "IoU": it.iou} for it in ordered])
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(table, hide_index=True, column_config={"Dice": number, "IoU": number})
