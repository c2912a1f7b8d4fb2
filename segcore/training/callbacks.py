"""Keras callbacks of a training run: history log, best weights, resumable checkpoint, time budget.

Files in ``RUN_DIR/checkpoint/``:
- ``last-<epoch>.weights.h5``: the last finished epoch's weights with the optimizer state (one
  Keras save; older checkpoints named it ``last.weights.h5``);
- ``best.weights.npz``: the best epoch's weights alone (no optimizer state), one array per weight
  in ``model.get_weights()`` order;
- ``state.json``: completed epochs, the weights file that holds them, the monitored metric's name
  and its best value.

The weights are written before the state that names them, and the previous weights file is
removed only after; a run killed between the two resumes from the previous epoch and says that
the interrupted epoch is trained again. Temporary files a killed run left (``.tmp-*``) are
removed when it resumes.

Every file (history.csv included) is written to a temporary name and renamed, so an interruption
at any moment leaves the previous complete epoch on disk (at most one epoch is lost).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from segcore.atomic import replacing, write_text
from segcore.errors import DataError, reason
from segcore.history import COLUMNS, read_history
from segcore.run_config import MAX_EPOCHS

log = logging.getLogger(__name__)
#: The checkpoint rule per training target: (metric, "max" or "min"). Semantic runs keep the epoch
#: with the highest validation Dice. Instance runs keep the lowest validation loss: it covers the
#: boundary channel that separates touching nuclei, which the Dice of the foreground ignores (on
#: the DSB validation split the epoch with the best foreground Dice decoded to a DSB score 0.017
#: below the last epoch's, whose loss was lower).
#: The resume weights' file name before it carried the epoch.
LEGACY_WEIGHTS = "last.weights.h5"
MONITORS = {"mask": ("val_dice", "max"), "instance": ("val_loss", "min")}


def monitor_for(target: str) -> tuple[str, str]:
    """(metric name, "max"/"min") that chooses the best epoch of a run with this target."""
    return MONITORS[target]


def improved(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` beats ``best`` (None: nothing yet) in the direction ``mode``."""
    return best is None or (value > best if mode == "max" else value < best)


def checkpoint_dir(run_dir: Path) -> Path:
    """The folder holding a run's resume state and best weights."""
    return Path(run_dir) / "checkpoint"


def read_state(run_dir: Path) -> dict | None:
    """The saved state ({'epoch': completed epochs, 'best': best monitored value, 'monitor':
    its metric, 'weights': the file holding that epoch}) or None if absent. States written
    before the monitor was recorded were val_dice.

    Raises DataError naming the file when it is not a state this code wrote.
    """
    path = checkpoint_dir(run_dir) / "state.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        epoch, best = int(state["epoch"]), state["best"]
        best = None if best is None else float(best)
        monitor = str(state.get("monitor", "val_dice"))
        weights = str(state.get("weights", LEGACY_WEIGHTS))
        if (
            not 0 <= epoch <= MAX_EPOCHS
            or (best is not None and not math.isfinite(best))
            or "/" in weights
        ):
            raise ValueError(f"epoch {epoch}, best {best}, weights {weights!r}")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a training state ({reason(exc)})") from None
    return {"epoch": epoch, "best": best, "monitor": monitor, "weights": weights}


def weights_name(epoch: int) -> str:
    """The file name of the resume weights after ``epoch`` completed epochs."""
    return f"last-{epoch}.weights.h5"


def tidy_checkpoint(run_dir: Path, state: dict) -> None:
    """Before resuming: remove the temporary files a killed run left, and say when a run was
    stopped after saving weights but before its state (that epoch is then trained again)."""
    folder = checkpoint_dir(run_dir)
    for leftover in [*Path(run_dir).glob(".tmp-*"), *folder.glob(".tmp-*")]:
        leftover.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted run", leftover)
    newer = weights_name(state["epoch"] + 1)
    if (folder / newer).is_file():
        log.warning(
            "the last run stopped while saving epoch %d (%s has no state); that epoch is "
            "trained again from epoch %d",
            state["epoch"] + 1,
            newer,
            state["epoch"],
        )
        (folder / newer).unlink()


def check_checkpoint(run_dir: Path, state: dict) -> None:
    """Before any data is read for a resume: DataError naming the resume weights or the best
    weights when either is not a file this code wrote (a kill during a copy, a wrong file)."""
    import h5py

    folder = checkpoint_dir(run_dir)
    path = folder / state["weights"]
    try:
        with h5py.File(path, "r"):
            pass
    except Exception as exc:  # h5py raises OSError, KeyError... for a bad file
        raise DataError(f"{path}: unreadable checkpoint ({reason(exc)})") from None
    if state["best"] is not None:
        best = folder / "best.weights.npz"
        try:
            with np.load(best) as saved:
                saved.files  # noqa: B018 (reads the archive's directory)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise DataError(f"{best}: unreadable best weights ({reason(exc)})") from None


def restore(model: keras.Model, run_dir: Path) -> dict:
    """Load the last weights and optimizer state into a compiled model; returns the state.

    Raises DataError naming the file when the checkpoint is missing, truncated or of another model.
    """
    state = read_state(run_dir)
    if state is None:
        raise DataError(f"{run_dir}: no checkpoint/state.json to resume from")
    tidy_checkpoint(run_dir, state)
    path = checkpoint_dir(run_dir) / state["weights"]
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except Exception as exc:  # h5py and Keras raise many types for a bad file
        raise DataError(f"{path}: unreadable checkpoint ({reason(exc)})") from None
    return state


def read_best_weights(run_dir: Path, model: keras.Model) -> list[np.ndarray]:
    """The run's best-epoch weights for ``model`` (DataError naming a bad or mismatched file)."""
    path = checkpoint_dir(run_dir) / "best.weights.npz"
    try:
        with np.load(path) as saved:
            weights = [saved[f"w{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: unreadable best weights ({reason(exc)})") from None
    if not fits(model, weights):
        raise DataError(f"{path}: best weights of another model ({len(weights)} arrays)")
    return weights


def fits(model: keras.Model, weights: list[np.ndarray]) -> bool:
    """Whether ``weights`` has one array of the right shape for each of ``model``'s weights."""
    return [tuple(w.shape) for w in weights] == [tuple(w.shape) for w in model.weights]


class BestWeights(keras.callbacks.Callback):
    """Keep the weights (without optimizer state) of the epoch with the best ``monitor`` value
    (highest for ``mode="max"``, lowest for ``"min"``).

    ``best`` starts at ``initial_value`` (a resumed run's best so far); ties keep the earlier epoch.
    """

    def __init__(
        self,
        path: Path,
        initial_value: float | None = None,
        monitor: str = "val_dice",
        mode: str = "max",
    ):
        super().__init__()
        self.path = Path(path)
        self.best = initial_value
        self.monitor, self.mode = monitor, mode

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not improved(float(value), self.best, self.mode):
            return
        self.best = float(value)
        buffer = io.BytesIO()
        np.savez(buffer, **{f"w{i}": w for i, w in enumerate(self.model.get_weights())})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(self.path) as tmp:
            tmp.write_bytes(buffer.getvalue())


class ResumeCheckpoint(keras.callbacks.Callback):
    """After every epoch, save weights with the optimizer state (one file) and the epoch counter."""

    def __init__(self, run_dir: Path, best_callback: BestWeights):
        super().__init__()
        self.dir = checkpoint_dir(run_dir)
        self.best_callback = best_callback

    def on_epoch_end(self, epoch, logs=None):
        self.dir.mkdir(parents=True, exist_ok=True)
        name = weights_name(epoch + 1)
        with replacing(self.dir / name) as tmp:
            self.model.save_weights(tmp)
        best = self.best_callback
        state = {"epoch": epoch + 1, "best": best.best, "monitor": best.monitor, "weights": name}
        write_text(self.dir / "state.json", json.dumps(state))
        for old in self.dir.glob("last*.weights.h5"):
            if old.name != name:
                old.unlink(missing_ok=True)


class TimeLimit(keras.callbacks.Callback):
    """Stop training when another epoch as long as the last one would pass the time budget.

    Training then ends normally (best model kept, evaluation runs) and can be extended later
    with --resume. ``agree`` makes every process take process 0's decision.
    """

    def __init__(self, seconds: float, agree: Callable[[bool], bool] = bool):
        super().__init__()
        self.seconds = seconds
        self.agree = agree
        self.start = self.last = 0.0

    def on_train_begin(self, logs=None):
        self.start = self.last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        spent, epoch_seconds, self.last = now - self.start, now - self.last, now
        if self.agree(spent + epoch_seconds > self.seconds):
            log.info("time limit: stopping after epoch %d (%.0f s)", epoch + 1, spent)
            self.model.stop_training = True


class HistoryLogger(keras.callbacks.Callback):
    """One row per finished epoch: losses, metrics, val_ twins, learning rate, seconds.

    The file is rewritten whole (atomically) every epoch; rows of epochs not yet finished in the
    checkpoint (a run interrupted after logging an epoch) are replaced when that epoch is redone.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = Path(path)
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def _rows_before(self, epoch: int) -> list[dict]:
        if not self.path.exists():
            return []
        return [r for r in read_history(self.path) if r["epoch"] < epoch]

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        lr = logs.get("learning_rate")
        if lr is None:
            lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row = {"epoch": epoch + 1, "lr": float(lr), "seconds": time.perf_counter() - self._start}
        row.update({k: float(logs[k]) for k in COLUMNS if k in logs})
        rows = self._rows_before(epoch + 1)
        rows.append({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        write_text(self.path, text.getvalue())
