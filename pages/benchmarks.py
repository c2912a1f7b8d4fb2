"""Benchmarks page: every shipped model's size and accuracy, its speed, and training throughput."""

from __future__ import annotations

import streamlit as st

from segcore.app import ui
from segcore.app.benchmarks import (
    accuracy_figure,
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
from segcore.app.kind_scores import kind_table
from segcore.app.navigation import enter
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

entries = ui.shipped_models()
inference, training, problems = load_results(bench_dir())
nuclei_scores, nuclei_speed, nuclei_problems = load_nuclei(bench_dir())
for problem in problems + nuclei_problems:
    st.warning(f"Skipped a benchmark file: {problem}")

st.subheader("Models")
models = model_table(entries)
st.dataframe(
    scores_as_text(models),
    hide_index=True,
    width="stretch",
    column_config={
        "model": st.column_config.TextColumn(pinned=True),
        "ONNX MB": st.column_config.NumberColumn(width="small"),
        "test images": st.column_config.NumberColumn("test n", width="small"),
        "train minutes": st.column_config.NumberColumn("train min", width="small"),
        "test Dice": DICE,
        "test IoU": DICE,
        "params": st.column_config.NumberColumn(format="localized"),
    },
)
scored = models.dropna(subset=["test Dice"])
if len(scored):
    left, right = st.columns(2)
    left.plotly_chart(scores_figure(scored), key="scores")
    right.plotly_chart(accuracy_figure(scored), key="accuracy")

if nuclei_scores is not None or nuclei_speed is not None:
    st.subheader("Nuclei as objects")
    if nuclei_scores is not None:
        st.dataframe(
            nuclei_table(nuclei_scores),
            hide_index=True,
            width="stretch",
            column_config={
                "method": st.column_config.TextColumn(width="medium"),
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

st.subheader("Inference speed")
if inference:
    latency = latency_table(inference)
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
            comparison,
            hide_index=True,
            width="stretch",
            column_config={
                "model": st.column_config.TextColumn(pinned=True),
                **{c: TWO for c in comparison.columns if comparison[c].dtype.kind == "f"},
                "share of GEMM rate": st.column_config.NumberColumn(format="percent"),
            },
        )
        st.caption(
            "GFLOP/s: two FLOPs per multiply-add of the model's convolutions (counted from the "
            "ONNX graph) per second at batch 1 (median), against this machine's own fp32 matrix-multiply "
            "rate; int8 can pass 100% because its integer kernels do more per cycle."
        )
    left, right = st.columns(2)
    left.plotly_chart(latency_figure(latency), key="latency")
    right.plotly_chart(e2e_figure(latency), key="e2e")
    st.caption(
        "Latency: one model-size image, batch 1, median (p90 beside it); one row per model, "
        "precision (fp32, fp16 weights, int8) and machine. End to end: a 3000x2000 JPEG "
        "decoded, resized, segmented, resized back and cleaned up by the app's engine."
    )
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
else:
    st.info("No training benchmark results yet. Run `python -m bench.train` to measure one.")
