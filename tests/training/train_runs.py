"""What the training tests share: the tiny run's flags, child-process environments and readers
of a run folder's checkpoint, history and weights.

Training runs use the shared 12-image ``tiny_dataset_dir`` (32x32), a U-Net with base_filters 4
and depth 2, batch 4 (2 steps per epoch) and split 0.6,0.2,0.2 (8 train, 2 val, 2 test).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from run_env import child_env

from segcore.history import read_history

STEPS_PER_EPOCH = 2  # 8 training images, batch 4


def train_args(data: Path, out: Path, epochs: int = 2, *extra: str) -> list[str]:
    return [
        "--data", str(data), "--arch", "unet", "--base-filters", "4", "--depth", "2",
        "--img-size", "32", "--epochs", str(epochs), "--batch-size", "4",
        "--split", "0.6,0.2,0.2", "--seed", "3", "--workers", "2", "--out", str(out), *extra,
    ]  # fmt: skip


def subprocess_env(**extra: str) -> dict[str, str]:
    return child_env(extra.pop("KERAS_BACKEND", None), **extra)


def run_script(
    script: str, args: list[str], cwd: Path, env: dict[str, str], timeout: int
) -> subprocess.CompletedProcess:
    """``python -c script *args`` in ``cwd``, checked to exit 0 (else its stderr's tail)."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def last_weights(run_dir: Path) -> Path:
    """The resume weights file the run's state names (``last-<epoch>.weights.h5``)."""
    state = json.loads((run_dir / "checkpoint" / "state.json").read_text())
    return run_dir / "checkpoint" / state["weights"]


def optimizer_iterations(run_dir: Path) -> int:
    with h5py.File(last_weights(run_dir)) as f:
        return int(f["optimizer/vars/0"][()])  # Keras puts the iteration counter first


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of a Keras weights file (layers and optimizer) by its path."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path) as f:
        f.visititems(
            lambda name, obj: out.__setitem__(name, obj[()]) if hasattr(obj, "dtype") else None
        )
    return out


def state(run_dir: Path) -> dict:
    return json.loads((run_dir / "checkpoint" / "state.json").read_text())


def epochs_logged(run_dir: Path) -> list[int]:
    return [r["epoch"] for r in read_history(run_dir / "history.csv")]
