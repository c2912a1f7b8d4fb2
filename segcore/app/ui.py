"""Streamlit pieces the pages share: the model list, cached engines, the model picker, the
server-wide cap on concurrent segmentations, and the dataset the pages agree on."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import streamlit as st

from segcore.app.model_choice import EXPORT_HINT, ModelEntry, default_model, list_models
from segcore.app.text import plain
from segcore.data.imagestats import usable
from segcore.errors import ModelError
from segcore.inference.engine import Engine
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.paths import models_dir

#: Segmentations running at once in this server, over all sessions (the others wait their turn):
#: each can hold a few hundred MB while it runs, and two use both cores of a small machine.
MAX_CONCURRENT = 2
#: Session key of the dataset family last chosen on the Segment page (the Gallery opens on it).
DATASET_KEY = "segcore-dataset"
#: The dataset family both pages open on before the user picks one.
DEFAULT_FAMILY = "isic"
AUTOMATIC = "Automatic (per image)"


@st.cache_resource
def _slots() -> threading.BoundedSemaphore:
    """The server-wide semaphore behind `segmentation_slot` (one per process)."""
    return threading.BoundedSemaphore(MAX_CONCURRENT)


@st.cache_resource
def _libc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on other C libraries."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


@contextmanager
def segmentation_slot() -> Iterator[None]:
    """Hold one of the server's `MAX_CONCURRENT` segmentation slots (waits for a free one); on
    leaving, hand the freed full-size buffers back to the system (glibc otherwise keeps them
    in its arenas, and a long-running server would stay at its peak)."""
    with _slots():
        try:
            yield
        finally:
            gc.collect()
            trim = _libc_trim()
            if trim is not None:
                trim(0)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def load_engine(path: str, version: int) -> Engine:
    """One Engine per model file and version, shared by every session of this process."""
    quiet_onnxruntime_logs()  # the CUDA provider's fallback notice on CPU-only machines
    return Engine(path)


def engine_for(entry: ModelEntry) -> Engine | None:
    """The cached engine of ``entry``, or None after showing why it cannot be loaded."""
    try:
        return load_engine(str(entry.path), entry.version)
    except (ModelError, OSError) as exc:
        st.error(f"Cannot load model {plain(entry.name)}: {plain(exc)}")
        return None


def shipped_models() -> list[ModelEntry]:
    """The models in the models folder; stops the page with instructions when there are none."""
    folder = models_dir()
    entries, problems = list_models(folder)
    for problem in problems:
        st.warning(f"Skipped a model: {plain(problem)}")
    if not entries:
        st.info(f"No models found in `{folder}`.\n\n{EXPORT_HINT}")
        st.stop()
    return entries


def pick_model(
    entries: list[ModelEntry], key: str, family: str | None = None, automatic: bool = False
) -> ModelEntry | None:
    """A sidebar model picker showing each model's short name (default: the best test Dice,
    within the dataset ``family`` if given); with ``automatic`` it offers `AUTOMATIC` first, as
    the default on a first visit when some card can measure the fit, and returns None for it. The chosen model's dataset and scores show under it."""
    by_name = {e.name: e for e in entries}
    options = ([AUTOMATIC] if automatic else []) + list(by_name)
    shift = 1 if automatic else 0
    name = st.sidebar.selectbox(
        "Model",
        options,
        index=0 if automatic and _can_fit(entries) else default_model(entries, family) + shift,
        key=key,
        help="Each model was trained on one kind of image. Automatic picks, per image, the "
        "model whose training images it resembles most.",
    )
    entry = by_name.get(name)
    if entry is not None:
        card_summary(entry)
    else:
        st.sidebar.caption("Per image, the model whose training images it resembles most.")
    return entry


def _can_fit(entries: list[ModelEntry]) -> bool:
    """True when some model's card describes its training images (Automatic can choose)."""
    return any(usable(e.card.get("image_stats")) for e in entries)


def card_summary(entry: ModelEntry) -> None:
    """The model's dataset, architecture and test scores, in the sidebar under the picker."""
    dice = f"**{entry.test_dice:.3f}**" if entry.test_dice is not None else "n/a"
    arch = plain(entry.card.get("arch", "?"))
    text = f"Trained on **{plain(entry.dataset)}** · {arch}  \nTest Dice {dice}"
    metrics = entry.card.get("test_metrics") or {}
    if entry.card.instances is not None and isinstance(metrics.get("dsb_score"), int | float):
        text += f" · DSB score **{metrics['dsb_score']:.3f}**"
    st.sidebar.caption(text)
