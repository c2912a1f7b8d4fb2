"""Keras callbacks of a training run: history log, resumable checkpoint, time budget.

Files in ``RUN_DIR/checkpoint/``: ``last.weights.h5``, ``optimizer.npz``, ``state.json``; each is
written to a temporary name and renamed, so an interruption at any moment leaves the previous
complete epoch on disk (at most one epoch is lost).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from pathlib import Path

import keras
import numpy as np

from segcore.history import COLUMNS

log = logging.getLogger(__name__)


def _checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoint"


def read_state(run_dir: Path) -> dict | None:
    """The saved state ({'epoch': completed epochs, 'best': best val_dice, ...}) or None."""
    path = _checkpoint_dir(run_dir) / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def restore(model: keras.Model, run_dir: Path) -> dict:
    """Load the last weights and optimizer variables into a compiled model; returns the state."""
    ckpt = _checkpoint_dir(run_dir)
    state = read_state(run_dir)
    if state is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint/state.json to resume from")
    opt = model.optimizer
    opt.build(model.trainable_variables)
    model.load_weights(ckpt / "last.weights.h5")
    saved = np.load(ckpt / "optimizer.npz")
    values = [saved[f"v{i}"] for i in range(len(saved.files))]
    if len(values) != len(opt.variables):
        raise ValueError(f"{run_dir}: optimizer checkpoint does not match the model")
    for var, value in zip(opt.variables, values, strict=True):
        var.assign(value)
    return state


class ResumeCheckpoint(keras.callbacks.Callback):
    """Save weights, optimizer variables and the epoch counter after every epoch."""

    def __init__(self, run_dir: Path, best_callback: keras.callbacks.ModelCheckpoint):
        super().__init__()
        self.dir = _checkpoint_dir(run_dir)
        self.best_callback = best_callback

    def on_epoch_end(self, epoch, logs=None):
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp_w = self.dir / "last.tmp.weights.h5"
        self.model.save_weights(tmp_w)
        values = {
            f"v{i}": keras.ops.convert_to_numpy(v)
            for i, v in enumerate(self.model.optimizer.variables)
        }
        tmp_o = self.dir / "optimizer.tmp.npz"
        np.savez(tmp_o, **values)
        best = self.best_callback.best
        state = {"epoch": epoch + 1, "best": None if best is None else float(best)}
        tmp_s = self.dir / "state.tmp.json"
        tmp_s.write_text(json.dumps(state))
        os.replace(tmp_w, self.dir / "last.weights.h5")
        os.replace(tmp_o, self.dir / "optimizer.npz")
        os.replace(tmp_s, self.dir / "state.json")


class TimeLimit(keras.callbacks.Callback):
    """Stop training when another epoch as long as the last one would pass the time budget.

    Training then ends normally (best model kept, evaluation runs) and can be extended later
    with --resume.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.start = self.last = 0.0

    def on_train_begin(self, logs=None):
        self.start = self.last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        spent, epoch_seconds, self.last = now - self.start, now - self.last, now
        if spent + epoch_seconds > self.seconds:
            log.info("time limit: stopping after epoch %d (%.0f s)", epoch + 1, spent)
            self.model.stop_training = True


class HistoryLogger(keras.callbacks.Callback):
    """Append one row per finished epoch: losses, metrics, val_ twins, learning rate, seconds."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._drop_rows_from(epoch + 1)
        self._start = time.perf_counter()

    def _drop_rows_from(self, epoch: int) -> None:
        """Forget rows of epochs >= ``epoch``: a run interrupted after logging an epoch but
        before its checkpoint repeats that epoch on resume."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        kept = [r for r in rows if int(r["epoch"]) < epoch]
        if len(kept) < len(rows):
            with open(self.path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
                writer.writeheader()
                writer.writerows(kept)

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        lr = logs.get("learning_rate")
        if lr is None:
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, "lr": float(lr), "seconds": time.perf_counter() - self._start}
        row.update({k: float(logs[k]) for k in COLUMNS if k in logs})
        new = not self.path.exists()
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
