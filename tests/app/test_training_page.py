"""The Training page in AppTest and its curves: history files, best epoch, overlays."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pagetools import BEST_EPOCH, EPOCHS, problems, texts

from segcore.app.curves import CURVES, best_epoch, curve_figure, history_frame, summary_rows


def test_training_page_overlays_models_and_marks_the_best_epoch(
    app_env, history_models_dir: Path, open_page
):
    app_env(models=history_models_dir)
    at = open_page("training")
    assert not problems(at)
    assert at.multiselect(key="training-models").value == ["bright", "bright_gray"]
    summary = at.dataframe[0].value.set_index("model")
    assert summary.loc["bright", "best epoch"] == BEST_EPOCH
    assert summary.loc["bright", "epochs"] == EPOCHS
    at.multiselect(key="training-models").set_value(["bright_gray"]).run()
    assert not problems(at)
    assert "Not logged for these models: Dice, Pixel accuracy, IoU" in texts(at)
    at.toggle(key="training-log-loss").set_value(True).run()
    assert not problems(at)


def test_training_page_without_histories(app_env, bright_models_dir: Path, open_page):
    app_env(models=bright_models_dir)
    at = open_page("training")
    assert not problems(at)
    assert "training log" in texts(at)


def test_training_page_reports_a_broken_history(
    app_env, tmp_path: Path, history_models_dir, open_page
):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("bright.onnx", "bright.json"):
        (models / name).write_bytes((history_models_dir / name).read_bytes())
    (models / "bright.history.csv").write_text("not,a\nhistory")
    app_env(models=models)
    at = open_page("training")
    assert not at.exception
    assert any("unreadable history" in w.value for w in at.warning)


@pytest.mark.slow
def test_training_page_with_a_real_export(app_env, tiny_models_dir: Path, open_page):
    app_env(models=tiny_models_dir)
    at = open_page("training")
    assert not problems(at)
    assert at.dataframe[0].value["model"].tolist() == ["tiny_unet"]


def test_best_epoch_prefers_val_dice_then_val_loss():
    frame = pd.DataFrame({"epoch": [1, 2, 3], "val_dice": [0.5, 0.8, 0.7], "val_loss": [3, 2, 1]})
    assert best_epoch(frame) == 2
    assert best_epoch(frame.drop(columns="val_dice")) == 3
    assert best_epoch(frame[["epoch"]]) is None


def test_curve_figure_traces(history_models_dir: Path):
    histories = {
        "bright": history_frame(history_models_dir / "bright.history.csv"),
        "bright_gray": history_frame(history_models_dir / "bright_gray.history.csv"),
    }
    loss = curve_figure(histories, "loss")
    names = [t.name for t in loss.data]
    assert {"bright train", "bright val", "bright_gray train", "bright_gray val"} <= set(names)
    star = next(t for t in loss.data if t.name == f"bright best epoch {BEST_EPOCH}")
    assert list(star.x) == [BEST_EPOCH]
    dice = curve_figure(histories, "dice")
    assert {t.legendgroup for t in dice.data} == {"bright"}
    assert curve_figure({"bright_gray": histories["bright_gray"]}, "dice") is None
    assert curve_figure(histories, "loss", log_y=True).layout.yaxis.type == "log"
    assert set(CURVES) == {"loss", "dice", "accuracy", "iou"}


def test_summary_rows(history_models_dir: Path):
    rows = summary_rows({"b": history_frame(history_models_dir / "bright.history.csv")})
    assert rows[0]["best epoch"] == BEST_EPOCH
    assert rows[0]["best val Dice"] == pytest.approx(0.9)
    assert rows[0]["train minutes"] == pytest.approx(EPOCHS * 6 / 60)


def test_read_history_rejects_bad_files(tmp_path: Path):
    bad = tmp_path / "h.csv"
    bad.write_text("loss\n0.1\n")
    with pytest.raises(ValueError, match="no epochs"):
        history_frame(bad)
    with pytest.raises(ValueError, match="unreadable"):
        history_frame(tmp_path / "missing.csv")


def test_read_history_keeps_the_last_row_of_a_repeated_epoch(tmp_path: Path):
    path = tmp_path / "h.csv"
    path.write_text("epoch,loss\n1,0.9\n2,0.8\n2,0.7\n3,0.6\n")
    assert history_frame(path)["loss"].tolist() == [0.9, 0.7, 0.6]
