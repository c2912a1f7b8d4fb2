"""The instance path end to end on the bundled DSB samples: train (``--target instance``), tune
the watershed decoding on validation, export the card, predict with the engine."""

from __future__ import annotations

import csv
import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from segcore.commands.train import parse_args
from segcore.history import read_history
from segcore.paths import REPO_ROOT as REPO
from segcore.scoring.decode_search import DECODE_GRID

DSB_SAMPLES = REPO / "samples" / "dsb"


def test_target_flag_parses():
    cfg, _ = parse_args(["--data", "d", "--target", "instance"])
    assert cfg.target == "instance"
    assert parse_args(["--data", "d"])[0].target == "mask"


class _Model:
    """What BestWeights reads from a Keras model: its weights."""

    def __init__(self):
        self.weights = [np.zeros(2, np.float32)]

    def get_weights(self):
        return [w.copy() for w in self.weights]


def test_best_weights_follow_the_monitor_direction(tmp_path: Path):
    from segcore.training.callbacks import BestWeights, improved, monitor_for

    assert monitor_for("mask") == ("val_dice", "max")
    assert monitor_for("instance") == ("val_loss", "min")
    assert improved(0.5, None, "min") and improved(0.4, 0.5, "min")
    assert not improved(0.5, 0.5, "min") and not improved(0.6, 0.5, "min")
    assert improved(0.6, 0.5, "max") and not improved(0.5, 0.5, "max")
    path = tmp_path / "best.weights.npz"
    cb = BestWeights(path, None, "val_loss", "min")
    cb.set_model(_Model())
    saved = []
    for epoch, loss in enumerate([0.9, 0.7, 0.8, 0.7, 0.6]):
        cb.model.weights = [np.full(2, epoch, np.float32)]
        cb.on_epoch_end(epoch, {"val_loss": loss, "val_dice": 1.0 - epoch})
        with np.load(path) as f:
            saved.append(int(f["w0"][0]))
    assert saved == [0, 1, 1, 1, 4]  # ties keep the earlier epoch
    assert cb.best == pytest.approx(0.6)


def test_a_state_from_before_the_monitor_was_recorded_reads_as_val_dice(tmp_path: Path):
    from segcore.training.callbacks import read_state

    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / "state.json").write_text('{"epoch": 3, "best": 0.8}')
    assert read_state(tmp_path) == {
        "epoch": 3,
        "best": 0.8,
        "monitor": "val_dice",
        "weights": "last.weights.h5",  # and the weights file of its time
    }


def _run(module: str, *args: str) -> int:
    """``python -m module *args``, called in this process (their output shows when a test fails):
    the four commands would each spend seconds importing TensorFlow as child processes, and the
    command lines themselves are tested in ``tests/commands``."""
    main = importlib.import_module("export.__main__" if module == "export" else module).main
    return main(list(args))


def test_markers_flag_parses_and_needs_an_instance_target():
    from segcore.errors import DataError

    assert parse_args(["--data", "d", "--target", "instance"])[0].markers == "boundary"
    cfg, _ = parse_args(["--data", "d", "--target", "instance", "--markers", "distance"])
    assert cfg.markers == "distance"
    with pytest.raises(DataError, match="--markers distance: only with --target instance"):
        parse_args(["--data", "d", "--markers", "distance"])


@pytest.mark.slow
@pytest.mark.parametrize("markers", ["boundary", "distance"])
def test_instance_training_tuning_export_and_predict(markers: str, tmp_path: Path):
    run = tmp_path / "run"
    train = _run(
        "segcore.commands.train",
        *("--data", str(DSB_SAMPLES), "--target", "instance", "--markers", markers),
        *("--arch", "unet_bn"),
        *("--base-filters", "4", "--depth", "2", "--img-size", "64", "--epochs", "2"),
        *("--batch-size", "4", "--split", "0.6,0.2,0.2", "--workers", "1", "--out", str(run)),
    )
    assert train == 0
    config = json.loads((run / "config.json").read_text())
    assert config["target"] == "instance" and config["mode"] == "tiled"
    assert config["tile"] == {"size": 64, "overlap": 0.25}
    assert config["target_channels"] == [markers, "foreground"]
    assert config["markers"] == markers
    assert config["arch_kwargs"]["out_channels"] == 2
    # instance runs keep the epoch of the lowest validation loss (boundary channel included)
    history = read_history(run / "history.csv")
    assert config["monitor"] == "val_loss"
    assert config["best_epoch"] == min(history, key=lambda r: r["val_loss"])["epoch"]
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["monitor"] == "val_loss"
    assert state["best"] == pytest.approx(min(r["val_loss"] for r in history), rel=1e-5)
    metrics = json.loads((run / "test_metrics.json").read_text())
    for key in ("dice", "dsb_score", "f1_iou50"):
        assert 0.0 <= metrics[key]["mean"] <= 1.0
    assert metrics["count_error"]["mean"] >= 0.0
    with open(run / "test_per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == metrics["n_images"] == 2
    assert {"dsb_score", "f1_iou50", "count_error", "n_true", "n_pred"} <= set(rows[0])
    assert int(rows[0]["n_true"]) > 0
    # DSB images: every row names its image kind, and the summary keeps the means per kind
    assert {r["kind"] for r in rows} <= {"fluorescence", "brightfield", "he"}
    assert metrics["by_kind"]["all"]["n_images"] == 2
    assert sum(v["n_images"] for k, v in metrics["by_kind"].items() if k != "all") == 2

    tune = _run("segcore.commands.instance_eval", str(run), "--tune")
    assert tune == 0
    decode = json.loads((run / "decode.json").read_text())
    assert decode["instances"]["markers"] == markers
    tried = {key for key in DECODE_GRID if len({t[key] for t in decode["trials"]}) > 1}
    other = {"boundary": "distance", "distance": "boundary"}[markers]
    assert tried == set(DECODE_GRID) - {other}  # the run's marker threshold is searched
    best = max(decode["trials"], key=lambda t: t["dsb_score"])
    assert decode["val"]["dsb_score"] == best["dsb_score"]

    models = tmp_path / "models"
    export = _run("export", str(run), "--out", str(models), "--name", "nuclei")
    assert export == 0
    card = json.loads((models / "nuclei.json").read_text())
    assert card["mode"] == "tiled" and card["tile"] == config["tile"]
    assert card["instances"] == decode["instances"]
    assert card["threshold"] == decode["instances"]["foreground"]
    assert {"dsb_score", "f1_iou50", "count_error", "dice"} <= set(card["test_metrics"])

    image = next(DSB_SAMPLES.glob("stage1_train/*/images/*.png"))
    out = tmp_path / "pred"
    predict = _run("segcore.commands.predict", "--model", str(models / "nuclei.onnx"), str(image), "--out", str(out))  # fmt: skip
    assert predict == 0
    for suffix in ("_labels.png", "_objects.csv", "_outlines.geojson", "_overlay.png"):
        assert (out / f"{image.stem}{suffix}").is_file()
