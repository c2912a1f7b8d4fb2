"""The light/heavy boundary: only `segcore.training` and `segcore.models`' builders load Keras,
TensorFlow or JAX, and no command's ``--help`` does."""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import segcore
from bench.cli_startup import COMMANDS
from segcore.paths import REPO_ROOT

HEAVY = ("keras", "tensorflow", "jax")
#: Packages whose modules may import Keras at top level (their __init__ stays light); the few of
#: their modules a command imports before parsing are covered by `test_help_loads_no_heavy_framework`.
HEAVY_PACKAGES = ("segcore.training.", "segcore.models.")


def light_modules() -> list[str]:
    """Every segcore module outside the heavy packages (optional plugins left out)."""
    names = [m.name for m in pkgutil.walk_packages(segcore.__path__, "segcore.")]
    return sorted(
        n for n in names if not n.startswith(HEAVY_PACKAGES) and not n.startswith("segcore.napari")
    )


def _run(script: str, **extra: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_light_modules_load_no_heavy_framework():
    """Each light module in turn, in one fresh process: the first to pull a framework is named."""
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {light_modules()!r}:
            importlib.import_module(name)
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
            if heavy:
                print("HEAVY", name, heavy[:3])
                break
        else:
            print("LIGHT")
        """
    )
    assert _run(script).strip() == "LIGHT"


def test_the_boundary_test_sees_a_heavy_module():
    """The check above can fail: importing a training module does load Keras (under JAX where it
    is installed: Keras loads in half the time it takes with TensorFlow)."""
    backend = {"KERAS_BACKEND": "jax"} if importlib.util.find_spec("jax") else {}
    out = _run("import sys, segcore.training.metrics; print('keras' in sys.modules)", **backend)
    assert out.strip() == "True"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_loads_no_heavy_framework(command: str):
    script = textwrap.dedent(
        f"""
        import runpy, sys
        sys.argv = [{command!r}, "--help"]
        try:
            runpy.run_module({command!r}, run_name="__main__")
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        print("HEAVY", sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
        """
    )
    out = _run(script)
    assert "usage:" in out and "HEAVY []" in out
