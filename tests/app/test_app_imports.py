"""The app never imports TensorFlow or Keras: every page run in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from pagetools import APP, PAGES, REPO, SAMPLES, TIMEOUT

SCRIPT = textwrap.dedent(
    f"""
    import sys
    from streamlit.testing.v1 import AppTest

    for page in {PAGES!r}:
        at = AppTest.from_file({str(APP)!r}, default_timeout={TIMEOUT})
        at.run()
        if page != "segment":
            at.switch_page(f"pages/{{page}}.py").run()
        assert not at.exception and not at.error, (page, at.exception, at.error)
    at = AppTest.from_file({str(APP)!r}, default_timeout={TIMEOUT})
    at.run()
    at.selectbox(key="sample").set_value(at.selectbox(key="sample").options[0]).run()
    assert any(m.label == "Dice" for m in at.metric)
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
    print("HEAVY", heavy)
    """
)


def test_app_runs_every_page_without_tensorflow(history_models_dir: Path, tmp_path: Path):
    env = {
        **os.environ,
        "SEGCORE_MODELS_DIR": str(history_models_dir),
        "SEGCORE_SAMPLES_DIR": str(SAMPLES),
        "SEGCORE_BENCH_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "HEAVY []" in done.stdout
