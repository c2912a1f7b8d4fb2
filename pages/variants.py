"""Variants page: every U-Net variant of a data set compared: curves from their training logs,
test scores with 95% intervals and paired verdicts, cost against accuracy, per-image scores, and
the variants side by side on one image (run live through the Segment page's engine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from export.table import batch1_ms
from segcore.app import ui
from segcore.app.curves import CURVES, curve_figure, history_frame
from segcore.app.model_choice import list_models
from segcore.app.navigation import enter
from segcore.app.segment import APP_MAX_PIXELS
from segcore.app.text import plain
from segcore.app.variant_board import (
    COMPARISON,
    COSTS,
    SHIPPED,
    TOY,
    VARIANTS,
    Contender,
    Group,
    colors,
    comparison_groups,
    cost_figure,
    cost_table,
    disagreements,
    distribution_figure,
    gflops,
    interval_figure,
    score_table,
    shipped_groups,
    side_by_side_columns,
)
from segcore.data import Sample, find_samples, load_sample
from segcore.errors import DataError, ImageError
from segcore.inference.preprocess import open_image, to_rgb_array
from segcore.paths import REPO_ROOT, bench_dir, models_dir, samples_dir, variants_dir
from segcore.scoring.variant_runs import find_variants, read_cpu_ms

#: The side-by-side view segments an image at most this many pixels on its long side.
VIEW_SIDE = 1024
DICE = {"Dice": st.column_config.NumberColumn(format="%.3f")} | {
    "IoU": st.column_config.NumberColumn(format="%.3f"),
    "test Dice": st.column_config.NumberColumn(format="%.3f"),
}


@st.cache_data(show_spinner=False, max_entries=8)
def model_gflops(path: str, version: int, size: int, channels: int) -> float | None:
    """GFLOPs per image counted from the ONNX graph (cached per model file version)."""
    try:
        return gflops(Path(path), size, channels)
    except (OSError, ValueError):
        return None


@st.cache_data(show_spinner=False, max_entries=4)
def data_samples(folder: str) -> dict[str, Sample]:
    """The image/mask pairs of a data folder by name (empty when it is not on this machine)."""
    try:
        return {s.name: s for s in find_samples(Path(folder), skip_unmatched=True)[1]}
    except (DataError, OSError):
        return {}


def fitted(pixels: np.ndarray, side: int = VIEW_SIDE) -> np.ndarray:
    """An RGB image scaled down to at most ``side`` pixels on its long side."""
    scale = side / max(pixels.shape[:2])
    if scale >= 1:
        return pixels
    size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR))


def show_side_by_side(
    contenders: list[Contender], image: np.ndarray, truth: np.ndarray | None
) -> None:
    """Image, truth and every contender's mask in one row of columns, each with its Dice."""
    if truth is not None and truth.shape != image.shape[:2]:
        truth = np.asarray(Image.fromarray(truth).resize(image.shape[1::-1], Image.NEAREST))
    predictions = {}
    with ui.segmentation_slot():
        for c in contenders:
            engine = ui.load_engine(str(c.model_path), c.model_path.stat().st_mtime_ns)
            predictions[c.label] = engine.predict(image).mask
    columns = side_by_side_columns(image, truth, predictions)
    for column, panel in zip(st.columns(len(columns)), columns, strict=True):
        column.image(panel.picture, width="stretch")
        dice = "" if panel.dice is None else f" · Dice **{panel.dice:.3f}**"
        column.caption(f"{plain(panel.title)}{dice}")


def curves(group: Group, palette: dict[str, str]) -> None:
    """Loss, Dice, IoU and pixel accuracy of every contender from its log."""
    histories = {}
    for c in group.contenders:
        if c.history_path is None:
            continue
        try:
            histories[c.label] = history_frame(c.history_path)
        except ValueError as exc:
            st.warning(plain(exc))
    if not histories:
        st.info("None of these models has a training log.")
        return
    figures = [(m, curve_figure(histories, m, colors=palette)) for m in CURVES]
    shown = [(m, f) for m, f in figures if f is not None]
    for start in range(0, len(shown), 2):
        for column, (metric, fig) in zip(st.columns(2), shown[start : start + 2], strict=False):
            column.plotly_chart(fig, key=f"variants-curve-{metric}")
    st.caption(
        "Training (solid) and validation (dotted) per epoch, from each model's `history.csv`; "
        "the star marks the best epoch (highest validation Dice), the checkpoint that was "
        "exported. One colour per variant in every chart."
    )


def scores(group: Group, palette: dict[str, str]) -> None:
    """Test Dice and IoU with intervals, and each model against the best."""
    table = score_table(group.contenders)
    st.dataframe(table, hide_index=True, width="stretch", column_config=DICE)
    fig = interval_figure(group.contenders, palette)
    if fig is not None:
        st.plotly_chart(fig, key="variants-intervals")
    st.caption(
        "Means over the test images with 95% bootstrap intervals (2000 resamples of the images). "
        "**Against the best**: each model's per-image Dice minus the best model's on the same "
        "images, resampled in pairs; *better* or *worse* when the whole 95% interval of that "
        "difference lies on one side of zero, else *no measurable difference*. Per-image "
        "scores: `test_per_image.csv` beside each model."
    )


def cost(group: Group, palette: dict[str, str]) -> None:
    """Parameters, GFLOPs, CPU ms and training speed against test Dice, with the Pareto front."""
    cpu_ms, problems = read_cpu_ms(bench_dir())
    for problem in problems:
        st.warning(plain(problem))
    table = cost_table(
        group.contenders,
        cpu_ms,
        batch1_ms(bench_dir()),
        lambda c: model_gflops(
            str(c.model_path), c.model_path.stat().st_mtime_ns, c.card.input_size, c.card.channels
        ),
    )
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config=DICE
        | {
            "params (M)": st.column_config.NumberColumn(format="%.2f"),
            "GFLOPs per image": st.column_config.NumberColumn(format="%.2f"),
            "CPU ms (batch 1)": st.column_config.NumberColumn(format="%.1f"),
            "train img/s": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    choice = st.segmented_control(
        "Cost", list(COSTS), default="GFLOPs per image", key="variants-cost"
    )
    fig = cost_figure(table, choice or "GFLOPs per image", palette)
    if fig is not None:
        st.plotly_chart(fig, key="variants-cost-figure")
    st.caption(
        "Parameters and test Dice from the cards; GFLOPs counted from each ONNX graph at its "
        "input size; CPU ms: onnxruntime, batch 1, median, from `bench/results/variants-cpu-*.json` "
        "(`python -m bench.architectures --time`, all variants interleaved in one run) or, for "
        "shipped models, `bench/results/inference-*.json`; training img/s from each run's config "
        "(its device is in the card). The dashed line is the Pareto front: no model is both "
        "cheaper and more accurate than a model on it."
    )


def per_image(group: Group, palette: dict[str, str]) -> None:
    """The per-image Dice distribution and the images where the models disagree most."""
    fig = distribution_figure(group.contenders, palette)
    if fig is None:
        st.info("No per-image test scores for these models.")
        return
    st.plotly_chart(fig, key="variants-distribution")
    worst = disagreements(group.contenders)
    if worst.empty:
        return
    st.markdown("**Where the variants disagree most** (widest spread of Dice on one image)")
    st.dataframe(
        worst,
        hide_index=True,
        width="stretch",
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in worst.columns[1:]},
    )
    data = (group.contenders[0].card.get("variant") or {}).get("data")
    pairs = data_samples(str((REPO_ROOT / data).resolve())) if data else {}
    found = [pairs[name] for name in worst["image"] if name in pairs]
    if not found:
        st.caption(
            "The test images themselves are not on this machine (the run's data folder "
            f"{plain(data or 'is not recorded')}), so they are not shown side by side."
        )
        return
    chosen = st.selectbox(
        "Show side by side", [s.name for s in found], key="variants-disagreement-image"
    )
    sample = next(s for s in found if s.name == chosen)
    image, truth = load_sample(sample)
    show_side_by_side(group.contenders, fitted(image), truth)


def same_image(group: Group) -> None:
    """Pick a bundled sample or upload an image: image / truth / one column per model."""
    source = st.radio(
        "Image",
        ["A bundled sample", "Upload an image"],
        horizontal=True,
        key="variants-source-image",
    )
    truth = None
    if source == "A bundled sample":
        pairs = data_samples(str(samples_dir() / group.dataset))
        if not pairs:
            st.info(f"No bundled samples for {plain(group.dataset)}.")
            return
        name = st.selectbox("Sample", list(pairs), key=f"variants-sample-{group.dataset}")
        image, truth = load_sample(pairs[name])
        st.caption(
            "Bundled samples come from the same public data set; one may have been a training "
            "image of these models, so its Dice can flatter them."
        )
    else:
        upload = st.file_uploader(
            "Upload an image", type=["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp"],
            key="variants-upload",
        )  # fmt: skip
        if upload is None:
            return
        try:
            image = to_rgb_array(open_image(upload.getvalue(), max_pixels=APP_MAX_PIXELS))
        except ImageError as exc:
            st.error(plain(exc))
            return
    show_side_by_side(group.contenders, fitted(image), truth)
    st.caption(
        f"Each model segments the image (at most {VIEW_SIDE} px on its long side) through the "
        "engine the Segment page uses, with its card's threshold and clean-up"
        + ("; the truth is outlined in green on every prediction." if truth is not None else ".")
    )


enter()
st.title("U-Net variants")
st.caption(
    "The five U-Net variants (" + ", ".join(VARIANTS) + ") trained under one budget per data set "
    "(`python -m bench.architectures`, files in `models/variants/<dataset>/<variant>/`), or the "
    "shipped models until those exist."
)

runs, problems = find_variants(variants_dir())
entries, model_problems = list_models(models_dir())
comparison = comparison_groups(runs)
shipped = shipped_groups(entries)
for problem in problems + model_problems:
    st.warning(f"Skipped: {plain(problem)}")

datasets = sorted(set(comparison) | set(shipped)) or ["isic", "dsb"]
first = ui.DEFAULT_FAMILY if ui.DEFAULT_FAMILY in datasets else datasets[0]
dataset = st.segmented_control("Data set", datasets, default=first, key="variants-dataset") or first
have = comparison.get(dataset)
if have is None or have.missing:
    count = 0 if have is None else len(have.contenders)
    missing = VARIANTS if have is None else have.missing
    st.info(
        f"{plain(dataset)}: {count} of the {len(VARIANTS)} variants have comparison files yet; "
        f"missing: {', '.join(missing)}. `python -m bench.architectures` trains and exports them "
        "into `models/variants/`."
        + (
            " Meanwhile the shipped models are shown."
            if have is None and dataset in shipped
            else ""
        )
    )
sources = [s for s, g in ((COMPARISON, have), (SHIPPED, shipped.get(dataset))) if g is not None]
if not sources:
    st.stop()
chosen = (
    st.segmented_control("Models", sources, default=sources[0], key=f"variants-source-{dataset}")
    or sources[0]
)
group = have if chosen == COMPARISON and have is not None else shipped[dataset]
for problem in group.problems:
    st.warning(f"Skipped: {plain(problem)}")
budget = (group.contenders[0].card.get("variant") or {}).get("budget_text")
if any(c.source == TOY for c in group.contenders):
    st.warning(
        "These are TOY runs (a tiny budget that proves the pipeline works); their scores "
        "compare nothing."
    )
if group.source == SHIPPED:
    st.caption(
        "Shipped models: each trained with its own recipe (the cards say which), so their "
        "differences are not a fair comparison of architectures."
    )
elif budget:
    st.caption(f"Budget shared by every run: {plain(budget)}.")
palette = colors(group.contenders)

st.subheader("Training curves")
curves(group, palette)
st.subheader("Test scores, how sure they are, and each model against the best")
scores(group, palette)
st.subheader("Cost against accuracy")
cost(group, palette)
st.subheader("Per-image scores")
per_image(group, palette)
st.subheader("The variants on the same image")
same_image(group)
