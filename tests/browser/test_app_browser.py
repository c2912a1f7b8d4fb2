"""The real app in a real browser: ``streamlit run`` on the shipped models, driven by Chromium.

Uploads a bundled ISIC photo and its mask through the page's file inputs, checks what a person
sees (the picture, the mask, the Dice), and saves screenshots of the Segment and Training pages
to ``test-artifacts/``. Skips when Debian's chromium or the shipped models are missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
SAMPLE = REPO / "samples" / "isic" / "images" / "ISIC_0000082.jpg"
TRUTH = REPO / "samples" / "isic" / "masks" / "ISIC_0000082_segmentation.png"
ARTIFACTS = REPO / "test-artifacts"
VIEWPORT = {"width": 1280, "height": 800}
TALL_VIEWPORT = {"width": 1280, "height": 1000}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll the server's health endpoint until it answers ok (fail if the server exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} not healthy after {timeout:.0f} s")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run streamlit_app.py`` on the real models/, stopped after the module."""
    if not any(MODELS.glob("*.onnx")):
        pytest.skip(f"no shipped models in {MODELS} (python -m export RUN_DIR makes one)")
    port = free_port()
    env = {
        **os.environ,
        "SEGCORE_MODELS_DIR": str(MODELS),
        "SEGCORE_SAMPLES_DIR": str(REPO / "samples"),
    }
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", server)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless chromium through playwright (never playwright's own download)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_deep_link_to_training_draws_curves(app_url: str, browser) -> None:
    """Runs first, so its deep link is the fresh server's first request (see
    `segcore.app.ui.route_through_entry`): the app's own navigation must still show."""
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{app_url}/training")
    page.get_by_role("heading", name="Training curves").wait_for(timeout=60_000)
    nav = page.locator('[data-testid="stSidebarNav"]')
    for title in ("Segment", "Gallery", "Training", "Benchmarks", "Models"):
        assert nav.get_by_text(title, exact=True).count() == 1
    assert page.url.endswith("/training")
    if page.get_by_text("None of the models has a training log").count():
        page.close()
        pytest.skip("the shipped models have no history.csv")
    page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
    assert page.locator(".js-plotly-plot").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    page.set_viewport_size(TALL_VIEWPORT)
    page.wait_for_timeout(1500)  # let plotly finish drawing
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "training.png"))
    page.close()


def test_upload_image_and_truth_shows_prediction_and_dice(app_url: str, browser) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(app_url)
    page.get_by_role("heading", name="Segment").wait_for(timeout=60_000)
    inputs = page.locator("input[type=file]")
    inputs.first.wait_for(state="attached", timeout=30_000)
    assert inputs.count() == 2
    inputs.nth(0).set_input_files(str(SAMPLE))
    page.get_by_text(SAMPLE.name).first.wait_for(timeout=60_000)
    inputs.nth(1).set_input_files(str(TRUTH))

    page.get_by_text("Ground truth", exact=True).wait_for(timeout=60_000)
    dice_metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.get_by_text("Dice", exact=True)
    )
    dice_metric.wait_for()
    images = page.locator('[data-testid="stImage"] img')
    assert images.count() == 3  # original | truth | prediction
    for i in range(3):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    dice = float(dice_metric.inner_text().split()[-1])
    assert 0.0 <= dice <= 1.0
    assert page.get_by_text("Download mask (PNG)").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(TALL_VIEWPORT)  # the uploads and the result in one picture
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "segment.png"))
    page.close()
