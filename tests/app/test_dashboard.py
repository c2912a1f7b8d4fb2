"""segcore.app.dashboard: data-set and kind filters, every model in the speed table, the
accuracy-vs-speed scatter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from segcore.app.benchmarks import latency_table, model_table
from segcore.app.dashboard import (
    NOT_MEASURED,
    accuracy_speed_figure,
    filter_entries,
    filter_records,
    kinds,
    model_rows_for_kind,
    with_every_model,
)
from segcore.app.model_choice import ModelEntry
from segcore.card import ModelCard


def entry(name: str, dataset: str, dice: float, by_kind: dict | None = None) -> ModelEntry:
    metrics = {"dice": dice, "iou": dice - 0.1, "n_images": 60}
    if by_kind:
        metrics["by_kind"] = by_kind
    card = {"dataset": dataset, "input_size": 32, "channels": 3, "test_metrics": metrics}
    card["onnx_bytes"] = 1_000_000
    return ModelEntry(
        name, Path(f"{name}.onnx"), ModelCard.from_json(card, default_name=name), None
    )


ENTRIES = [
    entry("lesions", "isic", 0.90),
    entry(
        "nuclei",
        "dsb",
        0.92,
        {"fluorescence": {"dice": 0.93, "n_images": 50}, "H&E": {"dice": 0.8, "n_images": 6}},
    ),
    entry("nuclei_objects", "dsb", 0.93),
]
RECORDS = [
    {"model": "lesions", "ort_latency_ms_median": 70.0, "providers": ["CPUExecutionProvider"]},
    {"model": "nuclei", "ort_latency_ms_median": 30.0, "providers": ["CPUExecutionProvider"]},
]


def test_filters_by_data_set_and_kind():
    dsb = filter_entries(ENTRIES, ["dsb"])
    assert [e.name for e in dsb] == ["nuclei", "nuclei_objects"]
    assert filter_entries(ENTRIES, []) == ENTRIES
    assert [r["model"] for r in filter_records(RECORDS, dsb)] == ["nuclei"]
    assert kinds(ENTRIES) == ["fluorescence", "H&E"]
    he = model_rows_for_kind(model_table(ENTRIES), ENTRIES, "H&E")
    assert he["model"].tolist() == ["nuclei"] and he["test Dice"].tolist() == [0.8]
    assert he["test images"].tolist() == [6]


def test_every_model_is_in_the_speed_table():
    latency = with_every_model(latency_table(RECORDS), ENTRIES)
    assert latency["model"].tolist() == ["lesions", "nuclei", "nuclei_objects"]
    assert latency["runs on"].tolist() == ["CPU", "CPU", NOT_MEASURED]
    assert pd.isna(latency["onnxruntime ms"].iloc[2])


def test_accuracy_vs_speed_is_one_scatter_with_the_model_on_hover():
    fig = accuracy_speed_figure(model_table(ENTRIES), latency_table(RECORDS))
    names = sorted(n for trace in fig.data for n in trace.hovertext)
    assert names == ["lesions", "nuclei"]  # the unmeasured model is not drawn
    assert fig.layout.xaxis.title.text.startswith("ms per image")
    assert accuracy_speed_figure(model_table(ENTRIES), latency_table([])) is None
