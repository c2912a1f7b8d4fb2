"""The app server's memory around a nuclei upload, through a real browser.

    python -m bench.app_memory [--model nuclei_instance_unet_bn] [--out FILE]

Starts ``streamlit run streamlit_app.py`` as the README does, opens the Segment page in Debian's
headless Chromium (playwright, never its own browser download), picks the nuclei model and, per
case, uploads one image of real nuclei (the bundled fluorescence samples cut into a mosaic,
`bench.bigimage.real_tiles`) and waits for its result. The server's resident memory is sampled
every 0.1 s from ``/proc`` (its children too), and read:

- ``idle``: before the upload, with the page open and the model loaded;
- ``peak``: the largest sample while the image is segmented (minus ``idle``: the cost of one
  image in flight);
- ``after``: 10 s after the result shows, and ``closed``: 10 s after the page is closed.

The aim (issue 20): the image in flight under 1.5 GB, ``after`` and ``closed`` within 300 MB of
``idle``. Writes ``bench/results/app_memory-<host>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.bigimage import TILE, real_tiles
from bench.records import add_out_flag, write_records

ROOT = Path(__file__).resolve().parents[1]
CASES = (("2048", 2048, True), ("5000", 5000, False), ("5000", 5000, True))
WAIT_MS = 600_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def nuclei_png(path: Path, side: int) -> Path:
    """A ``side`` x ``side`` 8-bit grey PNG of real nuclei (12-bit tiles / 16)."""
    per_side = -(-side // TILE)
    rows = []
    tiles = real_tiles(side)
    for _ in range(per_side):
        row = [next(tiles) for _ in range(per_side)]
        rows.append(np.concatenate(row, axis=1))
    plane = (np.concatenate(rows)[:side, :side] // 16).astype(np.uint8)
    Image.fromarray(plane).save(path)
    return path


def rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (ONNX Runtime runs in the server process)."""
    total = 0
    for proc in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Sampler:
    """The largest `rss` of ``pid`` since the last `reset`, sampled in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss(self.pid))

    def reset(self) -> None:
        self.peak = rss(self.pid)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log: Path) -> tuple[subprocess.Popen, str]:
    """The app as the README starts it, on a free loopback port; waits until it is healthy."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGCORE_")}
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py"]
            + ["--server.headless", "true", "--server.address", "127.0.0.1"]
            + ["--server.port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(180):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return server, url
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"streamlit exited: {log.read_text()[-2000:]}") from None
            time.sleep(0.5)
    raise SystemExit("streamlit not healthy after 90 s")


def one_case(browser, url: str, sampler: Sampler, model: str, image: Path, tta: bool) -> dict:
    """Upload ``image`` on a fresh page; the memory figures in bytes."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/segment")
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("Per image, the model").wait_for(timeout=WAIT_MS)
    sidebar.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=model, exact=True).click()
    page.wait_for_timeout(3000)
    if tta:
        sidebar.get_by_text("Test-time augmentation").click()
        page.wait_for_timeout(2000)
    time.sleep(2)
    idle = rss(sampler.pid)
    sampler.reset()
    start = time.perf_counter()
    page.locator('[data-testid="stFileUploader"] input[type=file]').first.set_input_files(
        str(image)
    )
    page.get_by_text("Download mask (PNG)").first.wait_for(timeout=WAIT_MS)
    seconds = time.perf_counter() - start
    peak = sampler.peak
    time.sleep(10)
    after = rss(sampler.pid)
    page.close()
    time.sleep(10)
    closed = rss(sampler.pid)
    return {"idle": idle, "peak": peak, "after": after, "closed": closed, "seconds": seconds}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m bench.app_memory", description=__doc__.split("\n")[0]
    )
    p.add_argument("--model", default="nuclei_instance_unet_bn")
    add_out_flag(p, "app_memory")
    args = p.parse_args(argv)
    executable = shutil.which("chromium")
    if executable is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    rows = []
    gb = 2**30
    with tempfile.TemporaryDirectory() as tmp:
        server, url = start_server(Path(tmp) / "server.log")
        sampler = Sampler(server.pid)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
                for name, side, tta in CASES:
                    image = nuclei_png(Path(tmp) / f"nuclei_{name}.png", side)
                    m = one_case(browser, url, sampler, args.model, image, tta)
                    row = {
                        "model": args.model,
                        "side": side,
                        "tta": tta,
                        "seconds": round(m["seconds"], 1),
                        "idle_gb": round(m["idle"] / gb, 2),
                        "peak_gb": round(m["peak"] / gb, 2),
                        "in_flight_gb": round((m["peak"] - m["idle"]) / gb, 2),
                        "after_gb": round(m["after"] / gb, 2),
                        "closed_gb": round(m["closed"] / gb, 2),
                        "held_mb": round((m["closed"] - m["idle"]) / 2**20),
                    }
                    rows.append(row)
                    print(row, flush=True)
                browser.close()
        finally:
            sampler.close()
            server.terminate()
            server.wait(timeout=30)
    write_records(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
