"""How the Segment page shows one result: image | truth | prediction | overlay (or coloured
instances) | probability, the numbers, warnings, downloads, and for instance models the object
sizes and table. Every user-given string is shown as plain text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

from segcore.app.model_choice import ModelEntry
from segcore.app.pictures import probability_picture
from segcore.app.segment import Segmented, measurements, objects_csv
from segcore.app.text import plain
from segcore.inference.visualize import instance_overlay, mask_to_rgb, overlay
from segcore.io.microscopy import stem_of


def show_objects(result: Segmented, index: int) -> None:
    """An instance result's objects: a size histogram and the table, with a CSV download."""
    table = pd.DataFrame(list(result.objects or ()))
    if table.empty:
        st.caption("No objects found.")
        return
    left, right = st.columns([2, 3])
    fig = px.histogram(table, x="area_px", nbins=30, title="Object sizes")
    fig.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="area (pixels)",
        yaxis_title="objects",
        bargap=0.05,
    )
    left.plotly_chart(fig, key=f"sizes-{index}")
    right.dataframe(table, hide_index=True, height=300)
    stem = stem_of(result.name)
    files = [
        ("Download objects (CSV)", objects_csv(result), "objects.csv", "text/csv"),
        ("Download labels (16-bit PNG)", result.labels_png, "labels.png", "image/png"),
        (
            "Download outlines for QuPath (GeoJSON)",
            result.outlines_geojson,
            "outlines.geojson",
            "application/geo+json",
        ),
    ]
    for label, data, suffix, mime in files:
        if data is not None:
            right.download_button(
                label,
                data,
                file_name=f"{stem}_{suffix}",
                mime=mime,
                key=f"{suffix.split('.')[0]}-{index}",
                on_click="ignore",
                icon=":material/table:" if suffix.endswith(".csv") else ":material/download:",
            )


def panels(result: Segmented, opacity: float, probability: bool) -> list[tuple[np.ndarray, str]]:
    """Image | truth | prediction | overlay (instances coloured for instance models), and the
    probability map when asked."""
    image, truth, mask = result.image(), result.truth(), result.mask()
    shown = [(image, "Image")]
    if truth is not None:
        shown.append((mask_to_rgb(truth), "Ground truth"))
    shown.append((mask_to_rgb(mask), "Prediction"))
    labels = result.labels()
    if labels is not None:
        picture = instance_overlay(image, labels, opacity)
        caption = "Objects, one colour each"
        if truth is not None:
            picture = overlay(picture, np.zeros_like(mask), 0.0, truth=truth)
            caption += " · truth outline (green)"
        shown.append((picture, caption))
    elif truth is not None:
        shown.append(
            (overlay(image, mask, opacity, truth=truth), "Overlay · truth outline (green)")
        )
    else:
        shown.append((overlay(image, mask, opacity), "Overlay"))
    if probability:
        shown.append((probability_picture(result.probability()), "Probability (yellow = sure)"))
    return shown


def show_result(
    result: Segmented, entry: ModelEntry, warning: str | None, view: dict, index: int
) -> None:
    """One image's panels, numbers, warnings and downloads, in a bordered box."""
    with st.container(border=True):
        st.markdown(
            f"**{plain(result.name)}** · {result.width}×{result.height} px · "
            f"model {plain(result.model)}"
        )
        if result.source:
            st.caption(plain(result.source))
        if result.truth_name:
            st.caption(f"Ground truth: {plain(result.truth_name)}")
        if warning:
            st.warning(warning, icon=":material/warning:")
        shown = panels(result, view["opacity"], view["probability"])
        for column, (picture, caption) in zip(st.columns(len(shown)), shown, strict=True):
            column.image(picture, caption=caption, width="stretch")
        numbers = measurements(result, entry.family)
        if result.dice is not None:
            numbers += [("Dice", f"{result.dice:.3f}"), ("IoU", f"{result.iou:.3f}")]
        numbers.append(("Time", f"{result.figures.get('seconds', 0.0):.2f} s"))
        for column, (label, value) in zip(st.columns(len(numbers)), numbers, strict=True):
            column.metric(label, value)
        if result.note:
            st.warning(plain(result.note))
        st.download_button(
            "Download mask (PNG)",
            result.mask_png,
            file_name=f"{stem_of(result.name)}_mask.png",
            mime="image/png",
            key=f"mask-{index}",
            on_click="ignore",
            icon=":material/download:",
        )
        if result.is_instances:
            show_objects(result, index)
