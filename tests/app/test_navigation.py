"""segcore.app.navigation: every page at its own URL path, ``/`` opening Segment, the app's own
sidebar links, and a page file run by itself (Streamlit's legacy ``pages/`` mode) running the app."""

from __future__ import annotations

from pagetools import APP, PAGES, REPO, SAMPLES, TIMEOUT, problems
from streamlit.testing.v1 import AppTest

from segcore.app.navigation import PAGE_ICON
from segcore.app.navigation import PAGES as SPECS

TITLES = {
    "segment": "Segment",
    "gallery": "Gallery",
    "training": "Training curves",
    "benchmarks": "Benchmarks",
    "variants": "U-Net variants",
    "models": "Models",
}


def test_every_page_file_is_listed_once_with_its_own_url_path():
    files = sorted(p.name for p in (REPO / "pages").glob("*.py"))
    assert sorted(s.file for s in SPECS) == files
    assert [s.url_path for s in SPECS] == list(PAGES)
    assert not PAGE_ICON.startswith(":")  # an emoji, not an icon fetched from a font host


def test_root_opens_segment_and_every_page_switches(app_env, bright_models_dir):
    app_env(models=bright_models_dir, samples=SAMPLES)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert [t.value for t in at.title] == ["Segment"]
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not problems(at), page
        assert [t.value for t in at.title] == [TITLES[page]]
    links = [link.proto.label for link in at.get("page_link")]
    assert links == [s.title for s in SPECS]


def test_a_page_file_run_by_itself_runs_the_app_once(app_env, bright_models_dir):
    app_env(models=bright_models_dir, samples=SAMPLES)
    at = AppTest.from_file(str(REPO / "pages" / "training.py"), default_timeout=TIMEOUT)
    at.run()
    assert not problems(at)
    assert len(at.title) == 1  # the app's page, not the file's own run on top of it
    assert [link.proto.label for link in at.get("page_link")] == [s.title for s in SPECS]
