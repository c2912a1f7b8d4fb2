"""The real app in a real browser: ``streamlit run streamlit_app.py`` (the README's way, with the
repository's ``.streamlit/config.toml``) on the shipped models, driven by Debian's Chromium.

Checks every page by its URL as a fresh server's first request and as a later visit (no "Page
not found", no legacy page list), uploads a microscopy image under the lesion model (a mismatch
warning), a lesion photo with its mask (no warning; image | truth | prediction | overlay and the
Dice), a bright-field and an H&E nuclei image under "Automatic" (the default; both go to a nuclei
model) with a label-image truth (the Dice the engine gives against every object), and a file
named with Markdown image syntax (no request leaves the machine). Every request
to a host other than the app is recorded and must not happen; the server log must hold no
watcher overflow and no traceback. Screenshots go to ``test-artifacts/``. Skips when Chromium or
the shipped models are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"
VARIANTS = ("unet", "unet_bn", "improved_unet", "unetpp", "attention_unet")
PHOTO = REPO / "samples" / "isic" / "images" / "ISIC_0000082.jpg"
TRUTH = REPO / "samples" / "isic" / "masks" / "ISIC_0000082_segmentation.png"
MICROSCOPY = sorted((REPO / "samples" / "dsb").glob("stage1_train/*/images/*.png"))
#: A bright-field crop of DSB image 8f94a80b (CC0, held out of training: validation split) and
#: its label image (one id per nucleus, ids 1..19, all below half of 255).
BRIGHTFIELD = Path(__file__).parent / "data" / "brightfield.png"
BRIGHTFIELD_LABELS = Path(__file__).parent / "data" / "brightfield_labels.png"
#: An H&E-stained bundled DSB sample.
HE_IMAGE = next(
    iter(sorted((REPO / "samples" / "dsb").glob("stage1_train/24a20f2a*/images/*.png"))), None
)
ARTIFACTS = REPO / "test-artifacts"
VIEWPORT = {"width": 1280, "height": 800}
TALL_VIEWPORT = {"width": 1280, "height": 1100}
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
TITLES = {
    "": "Segment",
    "segment": "Segment",
    "gallery": "Gallery",
    "training": "Training curves",
    "benchmarks": "Benchmarks",
    "variants": "U-Net variants",
    "models": "Models",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
MARKDOWN_NAME = "![t](http://host.invalid/x.png) a.jpg"
# flags, from the first DOM change on, whether Streamlit's own page list was ever drawn
WATCH_LEGACY_NAV = """
window.__legacyNav = false;
new MutationObserver(() => {
  if (document.querySelector('[data-testid="stSidebarNav"]')) window.__legacyNav = true;
}).observe(document, {childList: true, subtree: true});
"""
#: No CSS animation or transition (Streamlit's spinners, skeletons and running indicator):
#: software-painted at 60 frames a second, they cost Chromium CPU while a page waits.
STILL = """
document.addEventListener('DOMContentLoaded', () => {
  const style = document.createElement('style');
  style.textContent = '*, *::before, *::after {animation: none !important; transition: none !important}';
  document.head.appendChild(style);
});
"""
WAIT = 90_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 90.0) -> None:
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


class Server:
    """``streamlit run streamlit_app.py`` in the repository, as the README starts it (`ready`
    waits until it is healthy: several can start at once)."""

    def __init__(self, log: Path, wait: bool = True) -> None:
        if not any(MODELS.glob("*.onnx")):
            pytest.skip(f"no shipped models in {MODELS} (python -m export RUN_DIR makes one)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGCORE_")}
        with open(log, "w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "streamlit_app.py"]
                + ["--server.headless", "true", "--server.address", "127.0.0.1"]
                + ["--server.port", str(self.port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if wait:
            self.ready()

    def ready(self) -> Server:
        wait_healthy(f"{self.url}/_stcore/health", self.process)
        return self

    def stop(self) -> str:
        """Stop the server and return its log."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text()


def assert_clean_log(log: str) -> None:
    """No file-watcher flood and no traceback in the server's output."""
    assert "Inotify" not in log and "queue overflow" not in log.lower()
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def browser():
    """One context of Debian's headless chromium, through playwright (never playwright's own
    download), yielded where tests ask for ``browser``: its pages share the HTTP and
    compiled-code caches, as a person's tabs do. The tests use one tab of it (`tab`)."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser.new_context(viewport=VIEWPORT, reduced_motion="reduce")
        finally:
            browser.close()


@pytest.fixture(scope="module")
def outside_requests() -> list[str]:
    """Every request a page of this module sent to a host other than the app (must stay empty)."""
    return []


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the later visits and the uploads; its log is checked at the end."""
    server = Server(tmp_path_factory.mktemp("streamlit") / "server.log")
    try:
        yield server
    finally:
        assert_clean_log(server.stop())


@pytest.fixture(scope="module")
def tab(browser, outside_requests: list[str]):
    """One tab for the module's tests, each opening its page by URL in it: a new tab starts a
    new renderer process, ~2.5 core-seconds of Chromium each (a page of the app opened again
    in the same tab: 1.4 against 3.9 core-s in a new one, measured here). The tab records the
    requests that leave the machine and watches every page for the legacy page list."""
    page = browser.new_page()
    page.add_init_script(WATCH_LEGACY_NAV)
    page.add_init_script(STILL)

    def record(request) -> None:
        host = urlparse(request.url).hostname
        if request.url.startswith(("http", "ws")) and host not in LOCAL_HOSTS:
            outside_requests.append(request.url)

    page.on("request", record)
    try:
        yield page
    finally:
        page.close()


def sized(tab, viewport: dict = VIEWPORT):
    """The module's tab at ``viewport``."""
    tab.set_viewport_size(viewport)
    return tab


def leave(page) -> None:
    """Leave the app (its session ends), as a test's last step."""
    page.goto("about:blank")


def open_by_url(page, url: str, path: str) -> None:
    """Open ``url/path`` and check the right page shows at its own URL, without the legacy page
    list or a "Page not found" dialog."""
    page.goto(f"{url}/{path}")
    page.locator("h1").first.wait_for(timeout=WAIT)
    # "Page not found" and a redirect come with the run that drew the title; give them a moment
    page.wait_for_timeout(400)
    assert page.locator("h1").first.inner_text() == TITLES[path]
    expected = path or "segment"  # the root opens Segment at its own URL
    assert urlparse(page.url).path == f"/{expected}"
    assert page.get_by_text("Page not found").count() == 0
    assert page.evaluate("window.__legacyNav") is False
    links = page.locator('[data-testid="stSidebar"] [data-testid="stPageLink"]')
    links.nth(len(TITLES) - 2).wait_for(timeout=WAIT)
    assert links.count() == len(TITLES) - 1  # every page but the root
    assert page.locator('[data-testid="stException"]').count() == 0


@pytest.fixture(scope="module")
def fresh_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """One server per page, all started at once (their start-ups overlap), none asked for a
    page yet: each test below sends its server's first request."""
    folder = tmp_path_factory.mktemp("fresh")
    servers: dict[str, Server] = {}
    try:
        for n, path in enumerate(TITLES):
            servers[path] = Server(folder / f"server{n}.log", wait=False)
        yield servers
    finally:
        for server in servers.values():  # all shut down at once, then each is reaped
            if server.process.poll() is None:
                server.process.terminate()
        for server in servers.values():
            assert_clean_log(server.stop())


@pytest.mark.parametrize("path", list(TITLES))
def test_each_page_opens_by_url_as_a_fresh_servers_first_request(
    path: str, fresh_servers: dict[str, Server], tab, outside_requests: list[str]
) -> None:
    server = fresh_servers[path].ready()
    try:
        page = sized(tab)
        open_by_url(page, server.url, path)
        leave(page)  # before its server stops: no reconnecting page
    finally:
        server.process.terminate()  # reaped with the others at the module's end
    assert_clean_log(server.log.read_text())
    assert outside_requests == []


#: Pages whose picture goes to ``test-artifacts/`` (the whole page for the tall benchmarks).
SCREENSHOTS = {"training": False, "benchmarks": True, "gallery": False}


def test_every_page_opens_by_url_as_a_later_visit(
    app: Server, tab, outside_requests: list[str]
) -> None:
    """Each page by its URL on a server that has served others; the chart and picture pages
    draw their plot or image (a screenshot of each)."""
    page = sized(tab, TALL_VIEWPORT)
    shot = set()
    for path in [*TITLES, "segment", "gallery"]:
        open_by_url(page, app.url, path)
        if path in SCREENSHOTS and path not in shot:
            page.locator(".js-plotly-plot, [data-testid='stImage'] img").first.wait_for(
                timeout=WAIT
            )
            page.wait_for_timeout(2500)  # let plotly finish drawing
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{path}.png"), full_page=SCREENSHOTS[path])
            shot.add(path)
    leave(page)
    assert shot == set(SCREENSHOTS)
    assert outside_requests == []


def upload_and_wait(page, files, results: int) -> None:
    """Put ``files`` in the images uploader and wait until ``results`` results show."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    inputs = page.locator('[data-testid="stFileUploader"] input[type=file]')
    inputs.first.wait_for(state="attached", timeout=WAIT)
    # a file set while the uploader is still wiring up its handlers is dropped by the browser
    # page (seen once in a full-suite run): give it the files again if no result comes
    for attempt in range(3):
        inputs.nth(0).set_input_files(files)
        try:
            page.get_by_text("Download mask (PNG)").nth(results - 1).wait_for(timeout=WAIT // 3)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    page.wait_for_timeout(1000)


def warnings_shown(page) -> list[str]:
    """The text of every warning on the page."""
    return page.locator('[data-testid="stAlertContentWarning"]').all_inner_texts()


def test_microscopy_under_the_lesion_model_warns_naming_a_nuclei_model(
    app: Server, tab, outside_requests: list[str]
) -> None:
    if not MICROSCOPY:
        pytest.skip("no bundled DSB samples")
    page = sized(tab)
    page.goto(f"{app.url}/segment")
    page.get_by_role("heading", name="Segment").wait_for(timeout=WAIT)
    sidebar = page.locator('[data-testid="stSidebar"]')
    choose_model(page, "isic_improved_unet")
    sidebar.get_by_text("Trained on isic").wait_for(timeout=WAIT)
    upload_and_wait(page, [str(MICROSCOPY[0])], 1)
    shown = warnings_shown(page)
    assert len(shown) == 1 and "does not look like the skin-lesion photos" in shown[0]
    # the model that fits is named: a model trained on the nuclei images
    nuclei_models = [
        card.stem
        for card in MODELS.glob("*.json")
        if str(json.loads(card.read_text()).get("dataset")).startswith("dsb")
    ]
    named = [name for name in nuclei_models if f" {name}:" in shown[0]]
    assert len(named) == 1, (nuclei_models, shown[0])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mismatch.png"))
    leave(page)  # a lesion photo warns of nothing: the test below
    assert outside_requests == []


def choose_model(page, name: str) -> None:
    """Pick ``name`` in the sidebar's model picker (the default is Automatic)."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Per image, the model").wait_for(timeout=WAIT)
    sidebar.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=name, exact=True).click()


def test_automatic_sends_bright_field_and_he_nuclei_to_a_nuclei_model_and_scores_labels(
    app: Server, tab, outside_requests: list[str]
) -> None:
    if HE_IMAGE is None:
        pytest.skip("no bundled H&E sample")
    from segcore.inference.engine import Engine
    from segcore.scoring.scores import dice
    from segcore.scoring.truth import read_truth

    page = sized(tab, TALL_VIEWPORT)
    page.goto(f"{app.url}/segment")
    page.get_by_role("heading", name="Segment").wait_for(timeout=WAIT)
    page.locator('[data-testid="stSidebar"]').get_by_text("Per image, the model").wait_for(
        timeout=WAIT
    )  # Automatic is the default on a first visit
    upload_and_wait(page, [str(BRIGHTFIELD), str(HE_IMAGE)], 2)
    inputs = page.locator('[data-testid="stFileUploader"] input[type=file]')
    inputs.nth(1).set_input_files(str(BRIGHTFIELD_LABELS))
    page.get_by_text(f"Ground truth: {BRIGHTFIELD_LABELS.name}").wait_for(timeout=WAIT)
    page.wait_for_timeout(1500)
    headers = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text=" px · model ")
    texts = headers.all_inner_texts()
    assert len(texts) == 2, texts
    nuclei_models = {
        card.stem
        for card in MODELS.glob("*.json")
        if str(json.loads(card.read_text()).get("dataset")).startswith("dsb")
    }
    chosen = [text.rsplit("model ", 1)[1].strip() for text in texts]
    assert all(name in nuclei_models for name in chosen), chosen
    assert warnings_shown(page) == []
    bright = next(c for t, c in zip(texts, chosen, strict=True) if BRIGHTFIELD.name in t)
    pred = Engine(MODELS / f"{bright}.onnx").predict(str(BRIGHTFIELD))
    expected = dice(read_truth(BRIGHTFIELD_LABELS) > 0, pred.mask)
    dice_metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.get_by_text("Dice", exact=True)
    )
    shown = float(dice_metric.first.inner_text().split()[-1])
    assert shown == pytest.approx(expected, abs=0.0015) and shown > 0.5
    annotated = page.locator('[data-testid="stMetric"]').filter(
        has=page.get_by_text("Annotated", exact=True)
    )
    assert annotated.first.inner_text().split()[-1] == "19"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "automatic.png"), full_page=True)
    leave(page)
    assert outside_requests == []


def test_a_markdown_file_name_is_plain_text_and_fetches_nothing(
    app: Server, tab, outside_requests: list[str]
) -> None:
    page = sized(tab)
    page.goto(f"{app.url}/segment")
    page.get_by_role("heading", name="Segment").wait_for(timeout=WAIT)
    upload_and_wait(
        page, [{"name": MARKDOWN_NAME, "mimeType": "image/jpeg", "buffer": PHOTO.read_bytes()}], 1
    )
    page.wait_for_timeout(1500)
    header = page.locator('[data-testid="stMarkdownContainer"]').filter(has_text="256×256 px")
    assert header.first.inner_text().startswith(MARKDOWN_NAME)  # shown as typed
    assert page.locator('img[src*="host.invalid"]').count() == 0
    leave(page)
    assert outside_requests == []


def test_lesion_photo_with_its_mask_shows_image_truth_prediction_overlay_and_dice(
    app: Server, tab, outside_requests: list[str]
) -> None:
    page = sized(tab, TALL_VIEWPORT)
    page.goto(f"{app.url}/segment")
    page.get_by_role("heading", name="Segment").wait_for(timeout=WAIT)
    upload_and_wait(page, [str(PHOTO)], 1)
    inputs = page.locator('[data-testid="stFileUploader"] input[type=file]')
    inputs.nth(1).set_input_files(str(TRUTH))
    page.get_by_text("Ground truth", exact=True).wait_for(timeout=WAIT)
    dice_metric = page.locator('[data-testid="stMetric"]').filter(
        has=page.get_by_text("Dice", exact=True)
    )
    dice_metric.wait_for(timeout=WAIT)
    page.wait_for_timeout(1500)
    images = page.locator('[data-testid="stImage"] img')
    assert images.count() == 4  # image | truth | prediction | overlay
    for i in range(4):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    dice = float(dice_metric.inner_text().split()[-1])
    assert 0.8 <= dice <= 1.0
    assert warnings_shown(page) == []  # a lesion photo: no mismatch warning
    assert page.get_by_text(f"Ground truth: {TRUTH.name}").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "segment.png"))
    leave(page)
    assert outside_requests == []


def test_variants_page_runs_all_five_variants_on_an_uploaded_photo(
    app: Server, tab, outside_requests: list[str]
) -> None:
    """The committed comparison (`models/variants/`): every variant of both data sets has its
    files, the budget is named, and all five segment an uploaded lesion photo side by side."""
    page = sized(tab, TALL_VIEWPORT)
    open_by_url(page, app.url, "variants")
    page.get_by_text("Budget shared by every run:").first.wait_for(timeout=WAIT)
    assert page.get_by_text("comparison files yet").count() == 0  # all five for the lesions
    page.locator(".js-plotly-plot").first.wait_for(timeout=WAIT)
    scores = page.locator('[data-testid="stDataFrame"]').first
    scores.wait_for(timeout=WAIT)
    page.locator('[data-testid="stRadio"]').get_by_text("Upload an image").click()
    uploader = page.locator('[data-testid="stFileUploader"] input[type=file]').last
    uploader.set_input_files(str(PHOTO))
    for variant in VARIANTS:  # one column per variant under the photo, its name as the caption
        page.get_by_text(variant, exact=True).last.wait_for(timeout=WAIT)
    page.wait_for_timeout(1500)  # let plotly finish drawing
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "variants.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    # the nuclei comparison is complete too
    page.locator('[data-testid="stButtonGroup"]').first.get_by_text("dsb", exact=True).click()
    page.wait_for_timeout(1000)  # the rerun starts; the isic elements stay until it ends
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="hidden", timeout=WAIT)
    page.get_by_text("Budget shared by every run:").first.wait_for(timeout=WAIT)
    assert page.get_by_text("comparison files yet").count() == 0
    leave(page)
    assert outside_requests == []
