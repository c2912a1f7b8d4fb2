"""The app's pages and navigation, run by ``streamlit_app.py`` and, when needed, by a page file.

Streamlit treats a ``pages/`` folder beside the entry script as a legacy multipage folder until
the first ``st.navigation`` call of the process: a deep link (``/training``) that is a fresh
server's first request runs ``pages/training.py`` by itself. Every page file therefore starts
with `enter`, which, when the page was not run through `run_app`, runs the app (its
navigation resolves the same URL to the same page) and stops the legacy run. The legacy
navigation is hidden by ``client.showSidebarNavigation = false`` (``.streamlit/config.toml``), so
the app draws its own sidebar links with ``st.page_link``; nothing flashes. Public API only.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import streamlit as st

from segcore.paths import REPO_ROOT

#: The browser tab's icon: an emoji, drawn by the browser (a ``:material/...`` icon would be
#: fetched from an internet font host).
PAGE_ICON = "🔬"


@dataclass(frozen=True)
class PageSpec:
    """One page: its file in ``pages/``, its title, its URL path and its sidebar icon."""

    file: str
    title: str
    icon: str

    @property
    def url_path(self) -> str:
        """The page's URL path (``/segment``), the file's stem."""
        return self.file.removesuffix(".py")


PAGES = (
    PageSpec("segment.py", "Segment", ":material/draw:"),
    PageSpec("gallery.py", "Gallery", ":material/grid_view:"),
    PageSpec("training.py", "Training", ":material/show_chart:"),
    PageSpec("benchmarks.py", "Benchmarks", ":material/speed:"),
    PageSpec("variants.py", "Variants", ":material/compare:"),
    PageSpec("models.py", "Models", ":material/description:"),
)
PAGES_DIR = REPO_ROOT / "pages"

_run = threading.local()


def _home() -> None:
    """The root URL ``/``: opens the first page (Segment) at its own URL."""
    st.switch_page(str(PAGES_DIR / PAGES[0].file))


def app_pages() -> list:
    """The st.Page objects: a hidden default page for ``/`` and one page per `PAGES` entry,
    each at its own URL path."""
    home = st.Page(_home, title=PAGES[0].title, url_path="home", default=True, visibility="hidden")
    return [home] + [
        st.Page(PAGES_DIR / p.file, title=p.title, icon=p.icon, url_path=p.url_path) for p in PAGES
    ]


def run_app() -> None:
    """Set up the page, the navigation and the sidebar links, then run the page the URL names."""
    st.set_page_config(page_title="segcore", page_icon=PAGE_ICON, layout="wide")
    # tifffile logs each damaged tag of an upload; the page's own message names the file
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    pages = app_pages()
    page = st.navigation(pages, position="hidden")
    with st.sidebar:
        for p in pages[1:]:
            st.page_link(p, label=p.title, icon=p.icon)
        st.caption(
            "U-Net segmentation of skin lesions (ISIC) and cell nuclei (DSB), run with "
            "onnxruntime on this machine."
        )
    _run.inside = True
    try:
        page.run()
    except Exception:  # a page bug must not show a traceback to the user
        logging.getLogger("segcore.app").exception("page %s failed", page.title)
        st.error("This page hit an unexpected problem; the server log has the details.")
    finally:
        _run.inside = False


def enter() -> None:
    """First call of every page file: go on when run through `run_app`, else run the app
    (legacy ``pages/`` run on a fresh server) and end this run."""
    if getattr(_run, "inside", False):
        return
    run_app()
    st.stop()
