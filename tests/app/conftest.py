"""Fixtures for the app tests: folders the app reads (through its env vars) and a page runner.

- `app_env`: points ``SEGCORE_MODELS_DIR`` / ``SEGCORE_SAMPLES_DIR`` / ``SEGCORE_BENCH_DIR`` at
  the given folders (empty temporary ones by default).
- `history_models_dir`: the hand-made ``bright`` models with training logs beside them:
  ``bright`` has every column (best val Dice at epoch `BEST_EPOCH`), ``bright_gray`` only losses.
- `open_page`: runs ``streamlit_app.py`` in AppTest and switches to a page.
- `bright_page`: `open_page` over the hand-made models and the bundled samples.

Two Streamlit chores are trimmed for every AppTest run of this folder (`_quick_app_runs`):
the scan of every installed package for components is done once per session instead of once
per AppTest, and a run's end no longer calls ``keras.backend.clear_session()``. The app never
imports Keras (``test_app_imports.py``); a test worker does (other tests train models), and
clearing its session after every page run took about half a second each and would drop what
other tests in the worker built.
"""

from __future__ import annotations

import csv
import functools
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pagetools import APP, BEST_EPOCH, EPOCHS, SAMPLES, TIMEOUT
from streamlit.testing.v1 import AppTest


@pytest.fixture(scope="session", autouse=True)
def _quick_app_runs() -> Iterator[None]:
    """Streamlit internals (not its public API: `scan_component_manifests` and
    `_clean_problem_modules`, Streamlit 1.67): where a release renames them, nothing is patched
    and the app tests only run slower."""
    import importlib

    targets = {}
    for module, name in (
        ("streamlit.components.v2.manifest_scanner", "scan_component_manifests"),
        ("streamlit.runtime.scriptrunner.script_runner", "_clean_problem_modules"),
    ):
        try:
            found = importlib.import_module(module)
        except ImportError:
            continue
        if callable(getattr(found, name, None)):
            targets[name] = found

    def clean_without_keras() -> None:  # the rest of Streamlit's chore: close pyplot's figures
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            pyplot.close("all")

    with pytest.MonkeyPatch.context() as mp:
        if "scan_component_manifests" in targets:
            scanner = targets["scan_component_manifests"]
            scan = functools.cache(scanner.scan_component_manifests)
            mp.setattr(scanner, "scan_component_manifests", lambda *a: list(scan(*a)))
        if "_clean_problem_modules" in targets:
            mp.setattr(
                targets["_clean_problem_modules"], "_clean_problem_modules", clean_without_keras
            )
        yield


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    """``app_env(models=..., samples=..., bench=...)`` sets the app's folders for this test."""

    def point(models: Path | None = None, samples: Path | None = None, bench: Path | None = None):
        for variable, folder, name in (
            ("SEGCORE_MODELS_DIR", models, "no_models"),
            ("SEGCORE_SAMPLES_DIR", samples, "no_samples"),
            ("SEGCORE_BENCH_DIR", bench, "no_bench"),
        ):
            if folder is None:
                folder = tmp_path / name
                folder.mkdir(exist_ok=True)
            monkeypatch.setenv(variable, str(folder))

    return point


def write_history(path: Path, full: bool) -> None:
    """A synthetic history.csv: losses falling, val Dice peaking at `BEST_EPOCH` when ``full``."""
    columns = ["epoch", "loss", "val_loss"]
    if full:
        columns += [
            "dice",
            "iou",
            "accuracy",
            "val_dice",
            "val_iou",
            "val_accuracy",
            "lr",
            "seconds",
        ]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for epoch in range(1, EPOCHS + 1):
            val_dice = 0.9 - 0.02 * abs(epoch - BEST_EPOCH)
            writer.writerow(
                {
                    "epoch": epoch,
                    "loss": 1.0 / epoch,
                    "val_loss": 1.1 / epoch + 0.01 * epoch,
                    "dice": 0.5 + 0.04 * epoch,
                    "iou": 0.4 + 0.04 * epoch,
                    "accuracy": 0.8 + 0.01 * epoch,
                    "val_dice": val_dice,
                    "val_iou": val_dice - 0.1,
                    "val_accuracy": 0.9,
                    "lr": 1e-3,
                    "seconds": 6.0,
                }
            )


@pytest.fixture(scope="session")
def history_models_dir(bright_models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of `bright_models_dir` with ``bright.history.csv`` (full) and
    ``bright_gray.history.csv`` (losses only)."""
    folder = tmp_path_factory.mktemp("history") / "models"
    shutil.copytree(bright_models_dir, folder)
    write_history(folder / "bright.history.csv", full=True)
    write_history(folder / "bright_gray.history.csv", full=False)
    return folder


@pytest.fixture
def open_page() -> Callable[[str], AppTest]:
    """``open_page("gallery")``: the app run once, then switched to ``pages/gallery.py``."""

    def run(page: str) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.run()
        if page != "segment":
            at.switch_page(f"pages/{page}.py").run()
        return at

    return run


@pytest.fixture
def bright_page(app_env, bright_models_dir: Path, open_page) -> Callable[[str], AppTest]:
    """``bright_page("gallery")``: `open_page` with the app reading the hand-made models
    (`bright_models_dir`) and the bundled samples."""

    def run(page: str) -> AppTest:
        app_env(models=bright_models_dir, samples=SAMPLES)
        return open_page(page)

    return run
