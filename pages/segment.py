"""Segment page: upload images (and optionally their masks), get masks, areas, counts and Dice."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from segcore.app import ui
from segcore.app.fit import Fit, measure_fit, mismatch_message
from segcore.app.gallery import sample_sets
from segcore.app.microscopy_upload import (
    PlaneChoice,
    channel_labels,
    command_flags,
    default_channel,
    describe,
    microscopy_image,
    needs_choice,
)
from segcore.app.model_choice import ModelEntry
from segcore.app.navigation import enter
from segcore.app.result_view import show_result
from segcore.app.segment import (
    APP_MAX_PIXELS,
    MAX_BATCH,
    Segmented,
    Upload,
    batch_csv,
    check_upload,
    match_truths,
    segment_upload,
    thumbnail,
)
from segcore.app.text import plain
from segcore.data import Sample, load_labels
from segcore.errors import ImageError
from segcore.inference.preprocess import IMAGE_EXTENSIONS
from segcore.paths import samples_dir

FILE_TYPES = [ext.lstrip(".") for ext in IMAGE_EXTENSIONS]
log = logging.getLogger("segcore.app")


@st.cache_data(max_entries=32, show_spinner=False)
def segment(
    model_path: str,
    version: int,
    upload: Upload,
    truth: Upload | np.ndarray | None,
    truth_name: str | None,
    threshold: float | None,
    tta: bool,
    choice: PlaneChoice | None,
) -> Segmented:
    """`segment_upload` on the cached engine in one of the server's segmentation slots, cached
    per model, file, plane choice, truth and settings (the cache holds compact previews only).
    A progress bar is updated between the strips of a microscopy file: Streamlit stops the run
    there when the page is closed or rerun, so no decoding outlives its page."""
    engine = ui.load_engine(model_path, version)
    bar, reading = st.empty(), plain(f"Reading {upload.name}")
    with ui.segmentation_slot():
        try:
            return segment_upload(
                engine,
                upload,
                threshold=threshold,
                tta=tta,
                truth=truth,
                truth_name=truth_name,
                choice=choice,
                progress=lambda fraction: bar.progress(fraction, text=reading),
            )
        finally:
            bar.empty()


@st.cache_data(max_entries=64, show_spinner=False)
def image_fit(
    upload: Upload, choice: PlaneChoice | None, models: tuple[tuple[str, int], ...], _entries: list
) -> Fit:
    """How far the upload lies from each model's training images (cached per file, plane choice
    and model set); decoded in a segmentation slot, as it may be large."""
    with ui.segmentation_slot():
        return measure_fit(thumbnail(upload, choice=choice), _entries)


def plane_choice(upload: Upload) -> PlaneChoice | None:
    """For a microscopy TIFF with channels, z planes or time points: the nuclear channel and
    the plane (or maximum projection) the user picks, with the matching command-line flags.
    None for other uploads (an unreadable file is reported when it is checked)."""
    try:
        image = microscopy_image(upload.name, upload.data)
    except ImageError:
        return None
    if image is None or not needs_choice(image):
        return None
    key = f"{upload.name}-{len(upload.data)}"
    with st.container(border=True):
        st.markdown(f"**{plain(upload.name)}** · {describe(image)}")
        columns = iter(st.columns(3))
        channel = z = t = project = None
        if image.channels > 1 and not image.is_rgb:
            labels = channel_labels(image)
            picked = next(columns).selectbox(
                "Nuclear channel",
                labels,
                index=default_channel(image),
                key=f"channel-{key}",
                help="The channel showing the nuclei (by default one named like a nuclear "
                "stain, such as DAPI or Hoechst, else the first).",
            )
            channel = str(labels.index(picked))
        if image.planes > 1:
            options = ["maximum projection"] + [f"plane {i}" for i in range(image.planes)]
            picked = next(columns).selectbox("Z planes", options, key=f"z-{key}")
            project, z = (
                ("max", None) if picked == options[0] else (None, options.index(picked) - 1)
            )
        if image.times > 1:
            t = next(columns).selectbox("Time point", list(range(image.times)), key=f"t-{key}")
        choice = PlaneChoice(channel, z, t, project)
        st.caption(f"On the command line: `{command_flags(choice)}`")  # digits and words only
    return choice


@st.cache_data(show_spinner=False)
def bundled_samples(folder: str) -> dict[str, list[Sample]]:
    """The bundled image/mask pairs per dataset."""
    return sample_sets(Path(folder))


def plural(count: int, noun: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def sample_upload(sample: Sample) -> tuple[Upload, np.ndarray]:
    """A bundled sample as if uploaded: the image file's bytes and its truth (instance labels)."""
    _, truth = load_labels(sample)
    return Upload(sample.image.name, sample.image.read_bytes()), truth


enter()
st.title("Segment")
st.caption(
    "Drop skin-lesion photos or microscopy images: each gets a mask, its area or nucleus count, "
    "and, with a ground-truth mask, its Dice. Files stay in memory on this machine."
)

entries = ui.shipped_models()
by_name = {e.name: e for e in entries}
chosen_entry = ui.pick_model(
    entries,
    key="segment-model",
    family=st.session_state.get(ui.DATASET_KEY, ui.DEFAULT_FAMILY),
    automatic=True,
)
if chosen_entry is not None:
    st.session_state[ui.DATASET_KEY] = chosen_entry.family
    engine = ui.engine_for(chosen_entry)
    if engine is None:
        st.stop()
    threshold: float | None = st.sidebar.slider(
        "Threshold",
        0.05,
        0.95,
        value=round(engine.threshold, 2),
        step=0.01,
        key=f"threshold-{chosen_entry.name}",
        help="Pixels whose probability is above this are foreground (default: the card's).",
    )
else:
    threshold = None
tta = st.sidebar.toggle(
    "Test-time augmentation",
    key="segment-tta",
    help="Average the predictions of the four flips of each image (4x the compute).",
)
view = {
    "opacity": st.sidebar.slider(
        "Overlay opacity",
        0.0,
        1.0,
        value=0.35,
        step=0.05,
        key="segment-opacity",
        help="How strongly the prediction tints the image; its outline always shows.",
    ),
    "probability": st.sidebar.toggle(
        "Show probability (uncertainty)",
        key="segment-probability",
        help="The model's per-pixel probability: yellow is sure foreground, dark blue sure "
        "background, teal in between is where the model is unsure.",
    ),
}

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
st.caption(
    f"Up to {st.get_option('server.maxUploadSize')} MB and {APP_MAX_PIXELS / 1e6:.0f} megapixels "
    "per file here. Larger files, whole slides and mosaics go block by block from the command "
    "line, at any size: `python -m segcore.predict --model models/nuclei_instance_unet_bn.onnx "
    "FILE.ome.tif --out results/` (see the README's Whole slides section)."
)
sets = bundled_samples(str(samples_dir()))
family = chosen_entry.family if chosen_entry is not None else None
offered = sets.get(family or "") or [s for samples in sets.values() for s in samples]
samples_by_name = {s.image.name: s for s in offered}
sample_name = st.selectbox(
    "No images at hand? Try a bundled sample",
    list(samples_by_name),
    index=None,
    placeholder="Choose a sample image (with its ground truth)",
    key="sample",
)

uploads = [Upload(f.name, f.getvalue()) for f in image_files or []]
if len(uploads) > MAX_BATCH:
    st.warning(
        f"{len(uploads)} images uploaded: the first {MAX_BATCH} are segmented. Remove some "
        "to see the others, or use `python -m segcore.predict` for large batches."
    )
    uploads = uploads[:MAX_BATCH]
truths = {f.name: Upload(f.name, f.getvalue()) for f in truth_files or []}
matched = match_truths([u.name for u in uploads], list(truths))
choices = {u.name: plane_choice(u) for u in uploads}
batch: list[tuple[Upload, Upload | np.ndarray | None, str | None]] = [
    (u, truths.get(matched.get(u.name, "")), matched.get(u.name)) for u in uploads
]
if truths:
    pairs = pd.DataFrame(
        [{"image": u.name, "ground truth": matched.get(u.name, "none")} for u in uploads]
        + [{"image": "no image", "ground truth": t} for t in truths if t not in matched.values()]
    )
    with st.expander(f"Ground truth matched to {plural(len(matched), 'image')}", expanded=False):
        st.dataframe(pairs, hide_index=True)
unused = sorted(set(truths) - set(matched.values()))
if unused:
    st.warning(
        f"{plural(len(unused), 'mask')} matched no uploaded image by name and "
        f"{'was' if len(unused) == 1 else 'were'} not used (see the table above)."
    )
if sample_name:
    upload, truth = sample_upload(samples_by_name[sample_name])
    batch.append((upload, truth, f"{sample_name} (bundled truth)"))

if not batch:
    st.info("Upload one or more images above, or pick a bundled sample.")
    st.stop()

models_key = tuple((e.name, e.version) for e in entries)
shown: list[tuple[Segmented, ModelEntry, str | None]] = []
with st.spinner(f"Segmenting {plural(len(batch), 'image')}…"):
    for upload, truth, truth_name in batch:
        try:
            check_upload(upload)
        except ImageError as exc:
            st.error(plain(exc), icon=":material/error:")
            continue
        try:
            choice = choices.get(upload.name)
            fit = image_fit(upload, choice, models_key, entries)
            entry = chosen_entry or by_name.get(fit.best() or "") or entries[0]
            if ui.engine_for(entry) is None:
                continue
            result = segment(
                str(entry.path), entry.version, upload, truth, truth_name, threshold, tta, choice
            )
        except ImageError as exc:
            log.warning("segment failed: %s", exc)
            st.error(
                f"{plain(upload.name)}: the image could not be decoded; the file may be "
                "truncated or damaged.",
                icon=":material/error:",
            )
            continue
        shown.append((result, entry, mismatch_message(fit, entry, entries)))

if shown:
    results = [r for r, _, _ in shown]
    scored = [r.dice for r in results if r.dice is not None]
    models_used = sorted({r.model for r in results})
    summary = f"{plural(len(results), 'image')} segmented with **{', '.join(models_used)}**"
    if scored:
        summary += f" · mean Dice **{np.mean(scored):.3f}** over {len(scored)} with truth"
    warned = sum(1 for _, _, w in shown if w)
    if warned:
        summary += f" · {plural(warned, 'image')} unlike the model's training data"
    info, download = st.columns([3, 1], vertical_alignment="center")
    info.markdown(summary)
    download.download_button(
        "Download results (CSV)",
        batch_csv(results, threshold, tta),
        file_name="segcore_results.csv",
        mime="text/csv",
        key="csv",
        on_click="ignore",
        icon=":material/table:",
    )
for i, (result, entry, warning) in enumerate(shown):
    show_result(result, entry, warning, view, i)
