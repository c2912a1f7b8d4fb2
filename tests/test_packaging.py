"""pyproject.toml and the requirements files declare the same dependencies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from segcore.paths import REPO_ROOT

#: What the wheel is built from: the package metadata and every folder of Python code
SOURCES = ("pyproject.toml", "README.md", "segcore", "export", "bench", "pages", "tests")


def requirement_lines(name: str) -> set[str]:
    """The requirements a requirements file names (comments and ``-r`` includes left out)."""
    lines = (REPO_ROOT / name).read_text().splitlines()
    specs = (line.split(" #")[0].strip() for line in lines)
    return {str(Requirement(s)) for s in specs if s and not s.startswith(("#", "-"))}


def test_requirements_files_match_pyproject():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def normal(specs: list[str]) -> set[str]:
        return {str(Requirement(s)) for s in specs}

    assert requirement_lines("requirements.txt") == normal(
        project["dependencies"] + extras["train"] + extras["app"]
    )
    assert requirement_lines("requirements-dev.txt") == normal(extras["test"])


@pytest.mark.slow
def test_wheel_holds_the_app_and_no_bench(tmp_path: Path):
    pytest.importorskip("setuptools", minversion="64")
    (tmp_path / "src").mkdir()
    for name in SOURCES:
        if (REPO_ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO_ROOT / name, tmp_path / "src" / name, ignore=ignore)
        else:
            shutil.copy(REPO_ROOT / name, tmp_path / "src" / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path / "dist"), str(tmp_path / "src")],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("segcore-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"segcore", "export"}
    for module in (
        "segcore/app/__init__.py",
        "segcore/data/layouts.py",
        "segcore/models/unet.py",
        "segcore/napari/napari.yaml",  # the plugin's manifest, found by napari's entry point
    ):
        assert module in names
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA")))
    assert b"Requires-Dist: pillow" in metadata and b"Provides-Extra: app" in metadata
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))
    )
    assert b"[napari.manifest]" in entry_points and b"segcore.napari:napari.yaml" in entry_points
