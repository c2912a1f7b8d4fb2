"""A damaged or half-written run folder gives one line naming the file, or is repaired with a
word, before any epoch is trained (no Keras training here: the readers alone)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from segcore.errors import DataError
from segcore.history import read_history
from segcore.run_config import RunConfig, TrainConfig

ROWS = "epoch,loss,val_dice,lr,seconds\n1,0.5,0.7,0.001,2.0\n2,0.4,0.8,0.001,2.1\n"


def test_history_from_a_spreadsheet_is_read(tmp_path: Path):
    excel = tmp_path / "history.csv"
    text = ROWS.replace(",", ";").replace("0.", "0,").replace("2.", "2,")
    excel.write_bytes("\ufeff".encode() + text.encode())  # BOM, ';' and decimal commas
    rows = read_history(excel)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["val_dice"] == pytest.approx(0.8) and rows[1]["seconds"] == pytest.approx(2.1)


def test_a_torn_last_row_is_left_out(tmp_path: Path):
    path = tmp_path / "history.csv"
    path.write_text(ROWS + "3,0.3,0.")
    assert [r["epoch"] for r in read_history(path)] == [1, 2]
    path.write_text(ROWS + "3,0.3,0.8e")
    assert [r["epoch"] for r in read_history(path)] == [1, 2]


def test_a_file_that_is_not_a_history_logs_no_epoch(tmp_path: Path):
    path = tmp_path / "history.csv"
    path.write_text("step,value\n1,2\n")
    assert read_history(path) == []
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="unreadable history") as info:
        read_history(path)
    assert str(info.value).startswith(str(path))


def write_state(run: Path, state: dict) -> Path:
    (run / "checkpoint").mkdir(parents=True, exist_ok=True)
    path = run / "checkpoint" / "state.json"
    path.write_text(json.dumps(state))
    return path


@pytest.mark.parametrize(
    "state",
    [
        {"epoch": 3, "best": float("nan")},
        {"epoch": -1, "best": 0.5},
        {"epoch": 10**15, "best": 0.5},
        {"best": 0.5},
        [1],
    ],
)
def test_a_damaged_state_names_its_file(tmp_path: Path, state):
    pytest.importorskip("keras")
    from segcore.training.callbacks import read_state

    path = write_state(tmp_path, state)
    with pytest.raises(DataError) as info:
        read_state(tmp_path)
    assert str(info.value).startswith(f"{path}: not a training state")


def test_leftovers_of_a_killed_run_are_removed_with_a_word(tmp_path: Path, caplog):
    pytest.importorskip("keras")
    from segcore.training.callbacks import tidy_checkpoint, weights_name

    write_state(tmp_path, {"epoch": 2, "best": 0.5, "weights": weights_name(2)})
    for name in (weights_name(2), weights_name(3), ".tmp-123-last-3.weights.h5"):
        (tmp_path / "checkpoint" / name).write_bytes(b"w")
    (tmp_path / ".tmp-99-history.csv").write_text("x")
    with caplog.at_level(logging.INFO):
        tidy_checkpoint(tmp_path, {"epoch": 2})
    left = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert left == [weights_name(2), "state.json"] and not list(tmp_path.glob(".tmp-*"))
    assert "stopped while saving epoch 3" in caplog.text and "trained again" in caplog.text


def config(tmp_path: Path, **change) -> Path:
    saved = {
        **TrainConfig().__dict__,
        "dataset": "plain",
        "arch_kwargs": {"channels": 3, "depth": 4},
        **change,
    }
    (tmp_path / "config.json").write_text(json.dumps(saved))
    return tmp_path


@pytest.mark.parametrize(
    "change, flag",
    [
        ({"schedule": "warp"}, "--schedule"),
        ({"batch_size": 1_000_000}, "--batch-size"),
        ({"lr": float("nan")}, "--lr"),
        ({"loss": "hinge"}, "--loss"),
        ({"threshold": 7}, "threshold"),
        ({"img_size": 65536}, "--img-size 65536: must be at most 4096"),
        ({"base_filters": 100000}, "--base-filters 100000: must be 1 to 512"),
    ],
)
def test_a_damaged_run_config_names_the_file_and_the_setting(tmp_path: Path, change, flag):
    run = config(tmp_path, **change)
    with pytest.raises(DataError) as info:
        RunConfig.read(run)
    message = str(info.value)
    assert message.startswith(f"{run / 'config.json'}: not a usable run config") and flag in message


def test_a_sound_run_config_round_trips(tmp_path: Path):
    config_ = RunConfig.read(config(tmp_path, epochs=7))
    assert config_.settings.epochs == 7 and config_.depth == 4 and config_.dataset == "plain"
    card = config_.card()
    assert card.input_size == config_.settings.img_size and card.postprocess.fill_holes is False
