"""Segment page: upload images (and optionally their masks), get masks, areas, counts and Dice."""

from __future__ import annotations

from pathlib import Path, PurePath

import numpy as np
import streamlit as st

from segcore.app import ui
from segcore.app.gallery import sample_sets
from segcore.app.segment import (
    Segmented,
    Upload,
    batch_csv,
    comparison,
    match_truths,
    measurements,
    segment_upload,
)
from segcore.app.settings import samples_dir
from segcore.data import Sample, load_sample
from segcore.preprocess import IMAGE_EXTENSIONS, ImageError
from segcore.visualize import mask_to_rgb, overlay

FILE_TYPES = [ext.lstrip(".") for ext in IMAGE_EXTENSIONS]


@st.cache_data(max_entries=32, show_spinner=False)
def segment(
    model_path: str,
    version: int,
    upload: Upload,
    truth: Upload | np.ndarray | None,
    threshold: float,
    tta: bool,
) -> Segmented:
    """`segment_upload` on the cached engine, cached per model, file, truth and settings."""
    engine = ui.load_engine(model_path, version)
    return segment_upload(engine, upload, threshold=threshold, tta=tta, truth=truth)


@st.cache_data(show_spinner=False)
def bundled_samples(folder: str) -> dict[str, list[Sample]]:
    """The bundled image/mask pairs per dataset."""
    return sample_sets(Path(folder))


def plural(count: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def sample_upload(sample: Sample) -> tuple[Upload, np.ndarray]:
    """A bundled sample as if uploaded: the image file's bytes and its (merged) truth mask."""
    _, truth = load_sample(sample)
    return Upload(sample.image.name, sample.image.read_bytes()), truth


def show_result(result: Segmented, dataset: str, index: int) -> None:
    """One image's panels, numbers and mask download, in a bordered box."""
    with st.container(border=True):
        st.markdown(f"**{result.name}** · {result.width}×{result.height} px")
        if result.truth is None:
            panels = [
                (result.image, "Original"),
                (mask_to_rgb(result.mask), "Predicted mask"),
                (overlay(result.image, result.mask), "Overlay"),
            ]
        else:
            panels = [
                (result.image, "Original"),
                (mask_to_rgb(result.truth), "Ground truth"),
                (
                    comparison(result.image, result.truth, result.mask),
                    "Prediction (red) · truth outline (green)",
                ),
            ]
        for column, (picture, caption) in zip(st.columns(3), panels, strict=True):
            column.image(picture, caption=caption, width="stretch")
        numbers = measurements(result, dataset)
        if result.dice is not None:
            numbers += [("Dice", f"{result.dice:.3f}"), ("IoU", f"{result.iou:.3f}")]
        numbers.append(("Time", f"{result.seconds:.2f} s"))
        for column, (label, value) in zip(st.columns(len(numbers)), numbers, strict=True):
            column.metric(label, value)
        if result.note:
            st.warning(result.note)
        st.download_button(
            "Download mask (PNG)",
            result.mask_png,
            file_name=f"{PurePath(result.name).stem}_mask.png",
            mime="image/png",
            key=f"mask-{index}",
            on_click="ignore",
            icon=":material/download:",
        )


ui.route_through_entry("pages/segment.py")
st.title("Segment")
st.caption(
    "Drop skin-lesion photos or microscopy images: each gets a mask, its area or nucleus count, "
    "and, with a ground-truth mask, its Dice. Files stay in memory."
)

entries = ui.shipped_models()
entry = ui.pick_model(entries, key="segment-model", family="isic")
ui.card_summary(entry)
engine = ui.engine_for(entry)
if engine is None:
    st.stop()
threshold = st.sidebar.slider(
    "Threshold",
    0.05,
    0.95,
    value=round(engine.threshold, 2),
    step=0.01,
    key=f"threshold-{entry.name}",
    help="Pixels whose probability is above this are foreground (default: the card's).",
)
tta = st.sidebar.toggle(
    "Test-time augmentation",
    key="segment-tta",
    help="Average the predictions of the four flips of each image (4x the compute).",
)

left, right = st.columns(2)
image_files = left.file_uploader(
    "Images", type=FILE_TYPES, accept_multiple_files=True, key="images"
)
truth_files = right.file_uploader(
    "Ground-truth masks (optional)",
    type=FILE_TYPES,
    accept_multiple_files=True,
    key="truths",
    help="Matched to images by file name; ISIC's `<name>_segmentation.png` works too.",
)
sets = bundled_samples(str(samples_dir()))
offered = sets.get(entry.family) or [s for samples in sets.values() for s in samples]
by_name = {s.image.name: s for s in offered}
chosen = st.selectbox(
    "No images at hand? Try a bundled sample",
    list(by_name),
    index=None,
    placeholder="Choose a sample image (with its ground truth)",
    key="sample",
)

uploads = [Upload(f.name, f.getvalue()) for f in image_files or []]
truths = {f.name: Upload(f.name, f.getvalue()) for f in truth_files or []}
matched = match_truths([u.name for u in uploads], list(truths))
batch: list[tuple[Upload, Upload | np.ndarray | None]] = [
    (u, truths.get(matched.get(u.name, ""))) for u in uploads
]
for name in sorted(set(truths) - set(matched.values())):
    st.warning(f"{name}: no uploaded image has this mask's name, so it was not used.")
if chosen:
    batch.append(sample_upload(by_name[chosen]))

if not batch:
    st.info("Upload one or more images above, or pick a bundled sample.")
    st.stop()

results: list[Segmented] = []
with st.spinner(f"Segmenting {plural(len(batch), 'image')}…"):
    for upload, truth in batch:
        try:
            results.append(segment(str(entry.path), entry.version, upload, truth, threshold, tta))
        except ImageError as exc:
            st.error(f"Skipped {exc}")

if results:
    scored = [r.dice for r in results if r.dice is not None]
    summary = f"{plural(len(results), 'image')} segmented with **{entry.name}**"
    if scored:
        summary += f" · mean Dice **{np.mean(scored):.3f}** over {len(scored)} with truth"
    info, download = st.columns([3, 1], vertical_alignment="center")
    info.markdown(summary)
    download.download_button(
        "Download results (CSV)",
        batch_csv(results, entry.name, threshold, tta),
        file_name="segcore_results.csv",
        mime="text/csv",
        key="csv",
        on_click="ignore",
        icon=":material/table:",
    )
for i, result in enumerate(results):
    show_result(result, entry.family, i)
