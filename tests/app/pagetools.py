"""Paths and checks the app tests share (imported by the tests and by conftest.py)."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"
SAMPLES = REPO / "samples"
ISIC_IMAGE = SAMPLES / "isic" / "images" / "ISIC_0000082.jpg"
ISIC_TRUTH = SAMPLES / "isic" / "masks" / "ISIC_0000082_segmentation.png"
TIMEOUT = 30
EPOCHS = 10
BEST_EPOCH = 7  # where the synthetic history.csv peaks in val Dice


PAGES = ("segment", "gallery", "training", "benchmarks", "variants", "models")
_ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")


def unescape(markdown: str) -> str:
    """Markdown source as the reader sees it: backslash escapes (`segcore.app.text.plain`)
    removed."""
    return _ESCAPED.sub(r"\1", markdown)


def problems(at: AppTest) -> list[str]:
    """Every exception and error message the page shows (empty when it rendered cleanly)."""
    return [e.value for e in at.exception] + [unescape(e.value) for e in at.error]


def texts(at: AppTest) -> str:
    """All markdown, caption, info, warning and error text on the page as the reader sees it,
    one per line."""
    parts = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error]
    return "\n".join(unescape(str(p.value)) for p in parts)


def warnings(at: AppTest) -> list[str]:
    """The warnings the page shows, as the reader sees them."""
    return [unescape(w.value) for w in at.warning]


def captions(at: AppTest) -> list[str]:
    """The captions of every image on the page, in page order."""
    return [c for im in at.image for c in im.captions]


def metrics(at: AppTest) -> dict[str, str]:
    """Metric label -> shown value."""
    return {m.label: m.value for m in at.metric}
