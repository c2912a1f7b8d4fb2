"""Benchmarks page: every shipped model's size and accuracy, its speed, and training throughput."""

from __future__ import annotations

import streamlit as st

from segcore.app import ui
from segcore.app.benchmarks import (
    e2e_figure,
    latency_figure,
    latency_table,
    load_nuclei,
    load_results,
    model_table,
    nuclei_caption,
    nuclei_table,
    precision_table,
    scores_as_text,
    scores_figure,
    training_figure,
    training_table,
)
from segcore.app.cards import INSTANCE_SCORES
from segcore.app.dashboard import (
    HOW_TO_READ,
    MAIN_MODEL_COLUMNS,
    NOT_MEASURED,
    accuracy_speed_figure,
    filter_entries,
    filter_records,
    kinds,
    model_rows_for_kind,
    with_every_model,
)
from segcore.app.kind_scores import kind_table
from segcore.app.navigation import enter
from segcore.app.source_scores import source_table
from segcore.app.text import plain
from segcore.paths import bench_dir

DICE = st.column_config.NumberColumn(format="%.3f")
MS = st.column_config.NumberColumn(format="%.1f")
TWO = st.column_config.NumberColumn(format="%.2f")
INSTANCE_COLUMNS = {
    **{label: DICE for _, label in INSTANCE_SCORES if label != "count error"},
    "count error": st.column_config.NumberColumn(format="percent"),
}
#: The inference columns that fit the page's width; the expander below shows all of them.
MAIN_LATENCY_COLUMNS = (
    "model",
    "precision",
    "runs on",
    "onnxruntime ms",
    "p90 ms",
    "img/s (batch 8)",
    "Keras ms",
    "ORT / Keras",
    "e2e s per photo",
)

enter()
st.title("Benchmarks")
st.caption(
    "Accuracy from the model cards (held-out test split), speed from `bench/results/` "
    "(`python -m bench.inference`, `python -m bench.train`)."
)

all_entries = ui.shipped_models()
inference, training, problems = load_results(bench_dir())
nuclei_scores, nuclei_speed, nuclei_problems = load_nuclei(bench_dir())
for problem in problems + nuclei_problems:
    st.warning(f"Skipped a benchmark file: {plain(problem)}")

families = sorted({e.family for e in all_entries})
left, right = st.columns(2)
chosen = left.pills("Data set", families, selection_mode="multi", key="bench-datasets")
entries = filter_entries(all_entries, list(chosen or []))
image_kinds = kinds(entries)
kind = right.pills("Kind of image", image_kinds, key="bench-kind") if image_kinds else None
inference = filter_records(inference, entries)

st.subheader("Models")
models = model_table(entries)
if kind:
    models = model_rows_for_kind(models, entries, kind)
    st.caption(f"Test scores on the {plain(kind)} images of each model's test split.")
MODEL_COLUMNS = {
    "model": st.column_config.TextColumn(pinned=True),
    "ONNX MB": st.column_config.NumberColumn(width="small"),
    "test images": st.column_config.NumberColumn("test n", width="small"),
    "train minutes": st.column_config.NumberColumn("train min", width="small"),
    "test Dice": DICE,
    "test IoU": DICE,
    "params": st.column_config.NumberColumn(format="localized"),
}
shown_models = scores_as_text(models)
st.dataframe(
    shown_models[[c for c in MAIN_MODEL_COLUMNS if c in shown_models.columns]],
    hide_index=True,
    width="stretch",
    column_config=MODEL_COLUMNS,
)
with st.expander("Every column (architecture, parameters, test images, training time)"):
    st.dataframe(shown_models, hide_index=True, width="stretch", column_config=MODEL_COLUMNS)
scored = models.dropna(subset=["test Dice"])
latency = latency_table(inference)
if len(scored):
    left, right = st.columns(2)
    left.plotly_chart(scores_figure(scored), key="scores")
    left.caption(HOW_TO_READ["scores"])
    trade_off = accuracy_speed_figure(scored, latency)
    if trade_off is not None:
        right.plotly_chart(trade_off, key="accuracy-speed")
        right.caption(HOW_TO_READ["accuracy_speed"])

if nuclei_scores is not None or nuclei_speed is not None:
    st.subheader("Nuclei as objects")
    if nuclei_scores is not None:
        st.dataframe(
            nuclei_table(nuclei_scores),
            hide_index=True,
            width="stretch",
            column_config={
                "method": st.column_config.TextColumn(width="large"),
                **INSTANCE_COLUMNS,
                "Dice": DICE,
            },
        )
    st.caption(nuclei_caption(nuclei_scores, nuclei_speed))

by_kind = kind_table(entries)
if len(by_kind):
    st.subheader("Scores per image kind")
    st.dataframe(
        by_kind, hide_index=True, width="stretch", column_config={**INSTANCE_COLUMNS, "Dice": DICE}
    )
    st.caption(
        "Test split means per kind of microscopy image (`segcore.kinds`: a dark field is "
        "fluorescence; a light field is H&E / colour stain when coloured, else bright-field)."
    )

across = source_table(bench_dir() / "results")
if len(across):
    st.subheader("Nuclei across sources")
    st.dataframe(
        across,
        hide_index=True,
        width="stretch",
        column_config={**INSTANCE_COLUMNS, "Dice": DICE, "AJI": DICE},
    )
    st.caption(
        "Every source split on its own as training splits it (0.8/0.1/0.1, seed 42); settings "
        "were chosen on val, test was scored once. AJI is MoNuSeg's aggregated Jaccard index. "
        "Made by `python -m bench.nuclei_sources --model M --subset val|test`; each row names "
        "its file in bench/results/."
    )

st.subheader("Inference speed")
if inference:
    latency = with_every_model(latency, entries)
    number_columns = {
        **{column: TWO for column in latency.columns if latency[column].dtype.kind == "f"},
        "onnxruntime ms": MS,
        "p90 ms": MS,
        "Keras ms": MS,
        "img/s (batch 8)": MS,
    }
    st.dataframe(
        latency[[c for c in MAIN_LATENCY_COLUMNS if c in latency.columns]],
        hide_index=True,
        width="stretch",
        column_config=number_columns,
    )
    with st.expander("Every measured field (machine, photo, date and newer measurements)"):
        st.dataframe(
            latency,
            hide_index=True,
            width="stretch",
            column_config={"model": st.column_config.TextColumn(pinned=True), **number_columns},
        )
    comparison = precision_table(inference)
    if len(comparison):
        st.markdown("**fp32, fp16 weights and int8, timed in one run on the same inputs**")
        st.dataframe(
            comparison.drop(
                columns=[c for c in ("machine", "date", "p90 ms") if c in comparison.columns]
            ),
            hide_index=True,
            width="stretch",
            column_config={
                "model": st.column_config.TextColumn(pinned=True),
                **{c: TWO for c in comparison.columns if comparison[c].dtype.kind == "f"},
                "share of GEMM rate": st.column_config.NumberColumn("of GEMM", format="percent"),
                "machine GEMM GFLOP/s": st.column_config.NumberColumn(
                    "GEMM GFLOP/s", format="%.0f"
                ),
                "speed-up vs fp32": st.column_config.NumberColumn("vs fp32", format="%.2fx"),
                "GMAC per image": st.column_config.NumberColumn("GMAC", format="%.2f"),
            },
        )
        st.caption(
            "GFLOP/s: two FLOPs per multiply-add of the model's convolutions (counted from the "
            "ONNX graph) per second at batch 1 (median), against this machine's own fp32 matrix-multiply "
            "rate; int8 can pass 100% because its integer kernels do more per cycle."
        )
    st.caption(
        "Latency: one model-size image, batch 1, median (p90 beside it); one row per model, "
        "precision (fp32, fp16 weights, int8) and machine; a model without a record says "
        f"{NOT_MEASURED!r} (the nuclei instance model's own timing is under Nuclei as objects)."
    )
    timed = latency.dropna(subset=[c for c in ("onnxruntime ms",) if c in latency.columns])
    if len(timed):
        left, right = st.columns(2)
        left.plotly_chart(latency_figure(timed), key="latency")
        left.caption(HOW_TO_READ["latency"])
        right.plotly_chart(e2e_figure(timed), key="e2e")
        right.caption(HOW_TO_READ["e2e"])
else:
    st.info(
        "No inference benchmark results yet. Run `python -m bench.inference` to time every "
        "model with onnxruntime and Keras; the results appear here."
    )

st.subheader("Training throughput")
if training:
    throughput = training_table(training)
    st.dataframe(throughput, hide_index=True, width="stretch")
    st.plotly_chart(training_figure(throughput), key="training")
    st.caption(HOW_TO_READ["training"])
else:
    st.info("No training benchmark results yet. Run `python -m bench.train` to measure one.")
