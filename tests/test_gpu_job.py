"""bench.gpu_job: the prepared GPU job, end to end at toy size on the CPU (``--smoke``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from run_env import child_env

from bench.gpu_job import (
    PLAN,
    SMOKE_PLAN,
    VARIANT_PLAN,
    pack_dsb,
    run_commands,
)
from segcore.commands.train import parse_args

REPO = Path(__file__).resolve().parents[1]


def test_every_planned_run_trains_for_a_limited_time(tmp_path: Path):
    commands = run_commands(tmp_path / "data", tmp_path / "runs", 5.5, toy=False)
    assert len(commands) == len(PLAN)
    for command, run in zip(commands, PLAN, strict=True):
        assert command[1:3] == ["-m", "segcore.train"]
        assert command[-2:] == ["--time-limit", "5.5"]
        assert command[command.index("--out") + 1] == str(tmp_path / "runs" / run.name)
    members = commands[0]
    assert members[members.index("--seeds") + 1] == "1,2,3"


def test_every_planned_runs_toy_flags_parse(tmp_path: Path):
    """The smoke trains one planned run; the toy commands of all of them parse as training flags
    (their full-size ones too)."""
    for toy in (True, False):
        for command in run_commands(tmp_path / "data", tmp_path / "runs", 1.0, toy):
            config, resume = parse_args(command[3:])
            assert resume is None and config.time_limit == 1.0


def test_packed_dsb_keeps_each_nucleus_apart(tmp_path: Path):
    from segcore.data import find_samples
    from segcore.data.layouts import load_labels

    src = REPO / "samples" / "dsb"
    assert pack_dsb(src, tmp_path / "dsb") == 12
    _, originals = find_samples(src, "dsb")
    _, packed = find_samples(tmp_path / "dsb")
    assert [s.name for s in packed] == [s.name for s in originals]  # same order: same split
    _, truth = load_labels(originals[0])
    image, labels = load_labels(packed[0])
    np.testing.assert_array_equal(labels, truth)
    assert image.shape[:2] == truth.shape
    with Image.open(packed[0].masks[0]) as mask:
        assert mask.mode.startswith("I")


@pytest.mark.slow
def test_smoke_runs_the_job_end_to_end(tmp_path: Path):
    """Both plans' kinds of run at once: the nuclei instance run (a flat folder) and a variant run,
    which comes back in its ``<dataset>/<arch>`` folder."""
    env = child_env("jax")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.gpu_job", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    log = (tmp_path / "results" / "train.log").read_text()[-3000:]
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-2000:] + log
    assert "2 run folders rebuilt" in proc.stdout
    results = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert len(results) <= 8 and "timing.json" in results and "throughput.json" in results
    timing = json.loads((tmp_path / "results" / "timing.json").read_text())
    assert {r.name for r in SMOKE_PLAN} <= set(timing) and timing["collect"]["parts"] >= 1
    runs = sorted(
        p.parent.relative_to(tmp_path / "runs") for p in (tmp_path / "runs").rglob("best.keras")
    )
    assert runs == sorted(Path(r.name) for r in SMOKE_PLAN)
    assert Path("dsb/unet") in runs

    import keras

    for run in runs:
        folder = tmp_path / "runs" / run
        model = keras.saving.load_model(folder / "best.keras", compile=False)
        assert model.count_params() == json.loads((folder / "config.json").read_text())["params"]
        assert (folder / "test_metrics.json").is_file()
        split = json.loads((folder / "split.json").read_text())
        assert Path(split["root"]).is_dir()


def test_a_run_still_going_at_the_deadline_is_stopped(tmp_path: Path):
    import time

    from bench.gpu_job import _timed

    timing: dict = {}
    with open(tmp_path / "log", "w") as log:
        sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
        code = _timed(timing, "sleep", sleeper, log, time.perf_counter() + 1.0)
    assert code != 0 and timing["sleep_stopped_at_deadline"] is True
    assert timing["sleep"]["seconds"] < 30


def test_the_variant_plan_runs_the_full_recipe_into_dataset_arch_folders(tmp_path: Path):
    commands = run_commands(tmp_path / "data", tmp_path / "runs", 4.5, False, VARIANT_PLAN)
    assert len(commands) == 10
    for command in commands:
        flags = " ".join(command)
        assert "--img-size 256 --epochs 80" in flags and "--mixed-precision" in flags
        assert "--base-filters 16" in flags and "--schedule cosine" in flags
    outs = {Path(c[c.index("--out") + 1]).relative_to(tmp_path / "runs") for c in commands}
    assert Path("isic/unetpp") in outs and Path("dsb/attention_unet") in outs
    data = {Path(c[c.index("--data") + 1]).name for c in commands}
    assert data == {"isic", "dsb"}
