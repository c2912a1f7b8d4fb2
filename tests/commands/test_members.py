"""``python -m segcore.train ... --seeds``: ensemble members in sibling run folders (segcore.commands.members)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from run_env import child_env

from segcore.commands.members import main, parse_seeds, plan
from segcore.data import DataError

REPO = Path(__file__).resolve().parents[2]


def test_plan_gives_each_seed_its_folder_and_init_seed():
    argv = ["--data", "D", "--seed", "7", "--seeds", "1,5", "--out", "runs/e", "--epochs", "2"]
    members, parallel = plan(argv)
    assert parallel == 1
    assert [(s, str(o)) for s, o, _ in members] == [(1, "runs/e-seed1"), (5, "runs/e-seed5")]
    # --seed (the split, shared) passes through: it is not taken for an abbreviated --seeds
    assert members[1][2] == [
        *("--data", "D", "--seed", "7", "--epochs", "2"),
        *("--out", "runs/e-seed5", "--init-seed", "5"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seeds", "1,x", "--out", "r"], "--seeds 1,x: give integers"),
        (["--seeds", "1,1", "--out", "r"], "two different seeds"),
        (["--seeds", "1,2"], "--out: required"),
        (["--seeds", "1,2", "--out", "r", "--init-seed", "3"], "--init-seed: not with --seeds"),
        (["--seeds", "1,2", "--out", "r", "--parallel", "0"], "--parallel 0"),
    ],
)
def test_bad_member_flags_fail_in_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_parse_seeds():
    assert parse_seeds("3,1,2") == [3, 1, 2]
    with pytest.raises(DataError):
        parse_seeds("4")


@pytest.mark.slow
def test_seeds_train_members_sharing_one_split(tiny_dataset_dir: Path, tmp_path: Path):
    out = tmp_path / "ens"
    flags = [
        "--data", str(tiny_dataset_dir), "--arch", "unet", "--base-filters", "4", "--depth", "2",
        "--img-size", "32", "--epochs", "1", "--batch-size", "4", "--split", "0.6,0.2,0.2",
        "--seed", "3", "--workers", "1", "--out", str(out), "--seeds", "1,2", "--parallel", "2",
    ]  # fmt: skip
    env = child_env("jax")
    proc = subprocess.run(
        [sys.executable, "-m", "segcore.train", *flags],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 of 2 members trained" in proc.stdout
    runs = [tmp_path / "ens-seed1", tmp_path / "ens-seed2"]
    configs = [json.loads((r / "config.json").read_text()) for r in runs]
    assert [c["init_seed"] for c in configs] == [1, 2] and {c["seed"] for c in configs} == {3}
    splits = [json.loads((r / "split.json").read_text()) for r in runs]
    assert splits[0]["test"] == splits[1]["test"] and splits[0]["val"] == splits[1]["val"]
    assert all((r / "best.keras").is_file() for r in runs)
