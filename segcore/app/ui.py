"""Streamlit pieces the pages share: the model list, cached engines, the model picker."""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from segcore.app.catalog import EXPORT_HINT, ModelEntry, default_model, list_models
from segcore.app.settings import models_dir
from segcore.infer import Engine, ModelError

ENTRY_SCRIPT = "streamlit_app.py"
DEEP_LINK_KEY = "segcore-deep-link"
ENTRY_SEEN_KEY = "segcore-entry-seen"


def route_through_entry(page: str) -> None:
    """Run ``page`` (``pages/<name>.py``) through the entry script when Streamlit opened it alone.

    Until the entry script has called ``st.navigation`` once in this process, Streamlit treats
    ``pages/`` as a legacy multipage folder: a deep link that is a fresh server's first request
    runs the page file by itself, without the app's navigation and page settings. Such a run
    (in a session the entry script has not seen yet) hands over to the entry script, which then
    opens ``page`` (`follow_deep_link`).
    """
    if PagesManager.uses_pages_directory and not st.session_state.get(ENTRY_SEEN_KEY):
        st.session_state[DEEP_LINK_KEY] = page
        st.switch_page(ENTRY_SCRIPT)


def follow_deep_link() -> None:
    """In the entry script, after ``st.navigation``: note that this session went through the
    entry script, and open the page a legacy-mode run asked for."""
    st.session_state[ENTRY_SEEN_KEY] = True
    target = st.session_state.pop(DEEP_LINK_KEY, None)
    if target:
        st.switch_page(target)


@st.cache_resource(show_spinner="Loading the model…", max_entries=8)
def load_engine(path: str, version: int) -> Engine:
    """One Engine per model file and version, shared by every session of this process."""
    return Engine(path)


def engine_for(entry: ModelEntry) -> Engine | None:
    """The cached engine of ``entry``, or None after showing why it cannot be loaded."""
    try:
        return load_engine(str(entry.path), entry.version)
    except (ModelError, OSError) as exc:
        st.error(f"Cannot load model {entry.name}: {exc}")
        return None


def shipped_models() -> list[ModelEntry]:
    """The models in the models folder; stops the page with instructions when there are none."""
    folder = models_dir()
    entries, problems = list_models(folder)
    for problem in problems:
        st.warning(f"Skipped a model: {problem}")
    if not entries:
        st.info(f"No models found in `{folder}`.\n\n{EXPORT_HINT}")
        st.stop()
    return entries


def pick_model(entries: list[ModelEntry], key: str, family: str | None = None) -> ModelEntry:
    """A sidebar model picker (default: the best test Dice, within the dataset ``family`` if
    given)."""
    by_name = {e.name: e for e in entries}
    name = st.sidebar.selectbox(
        "Model",
        list(by_name),
        index=default_model(entries, family),
        format_func=lambda n: by_name[n].label(),
        key=key,
    )
    return by_name[name]


def card_summary(entry: ModelEntry) -> None:
    """The model's dataset, architecture and test Dice, in the sidebar under the picker."""
    dice = f"**{entry.test_dice:.3f}**" if entry.test_dice is not None else "n/a"
    arch = entry.card.get("arch", "?")
    st.sidebar.caption(f"Trained on **{entry.dataset}** · {arch}  \nTest Dice {dice}")
