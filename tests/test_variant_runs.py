"""segcore.scoring.variant_runs and ``python -m bench.architectures --check``: a consistent folder passes,
each kind of disagreement is named; the plan and the resumable training commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from variant_folders import write_variant

from bench.architectures import CPU_BUDGET, TOY_BUDGET, main, plan, train_command
from segcore.errors import DataError
from segcore.scoring.variant_runs import (
    CARD_FILE,
    HISTORY_FILE,
    PER_IMAGE_FILE,
    check_variant,
    find_variants,
    per_image_text,
    read_per_image,
)

REPO = Path(__file__).resolve().parents[1]
DICE = [0.9, 0.8, 0.85, 0.7, 0.95, 0.9]


def _card(folder: Path) -> dict:
    return json.loads((folder / CARD_FILE).read_text())


def _write_card(folder: Path, card: dict) -> None:
    (folder / CARD_FILE).write_text(json.dumps(card))


def test_a_consistent_folder_passes_and_is_found(tmp_path: Path):
    folder = write_variant(tmp_path, "isic", "unet", DICE)
    assert check_variant(folder) == []
    runs, problems = find_variants(tmp_path)
    assert [(r.dataset, r.arch) for r in runs] == [("isic", "unet")] and problems == []
    assert main(["--check", "--out", str(tmp_path)]) == 0


def test_per_image_mean_unlike_the_card_is_named(tmp_path: Path):
    folder = write_variant(tmp_path, "isic", "unet", DICE)
    card = _card(folder)
    card["test_metrics"]["dice"] += 0.01
    _write_card(folder, card)
    assert any("mean dice" in p and PER_IMAGE_FILE in p for p in check_variant(folder))


def test_too_few_epochs_and_a_log_shorter_than_the_card_are_named(tmp_path: Path):
    folder = write_variant(tmp_path, "dsb", "unetpp", DICE, epochs=3)
    assert any("3 epochs logged, fewer than 10" in p for p in check_variant(folder))
    assert check_variant(folder, min_epochs=3) == []
    card = _card(folder)
    card["epochs"] = 12
    _write_card(folder, card)
    assert any("last epoch 3, the card says 12" in p for p in check_variant(folder, 3))


def test_a_card_unlike_its_model_or_folder_is_named(tmp_path: Path):
    folder = write_variant(tmp_path, "isic", "unet_bn", DICE)
    card = _card(folder)
    _write_card(folder, card | {"precision": "int8", "arch": "unet", "onnx_bytes": 5})
    problems = "\n".join(check_variant(folder))
    assert "float graph, the card says 'int8'" in problems
    assert "arch 'unet', the folder 'unet_bn'" in problems
    assert "the card says 5" in problems
    _write_card(folder, card | {"input_size": 30})  # not a size the model's card allows
    assert any("input_size" in p for p in check_variant(folder))


def test_a_missing_or_broken_file_is_named_and_check_exits_non_zero(tmp_path: Path, capsys):
    good = write_variant(tmp_path, "isic", "unet", DICE)
    broken = write_variant(tmp_path, "dsb", "unet", DICE)
    (broken / HISTORY_FILE).unlink()
    (good / "model.onnx").write_bytes(b"not a model")
    assert main(["--check", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}: missing {HISTORY_FILE}" in out
    assert "model.onnx" in out and "does not run" in out
    assert "2 runs checked, 3 disagreements" in out  # the size, too


def test_per_image_file_round_trip_and_refusals(tmp_path: Path):
    path = tmp_path / PER_IMAGE_FILE
    path.write_text(
        per_image_text(["a,b", "c"], [{"dice": 0.5, "iou": 1 / 3}, {"dice": 1.0, "iou": 1.0}])
    )
    read = read_per_image(path)
    assert read.images == ["a,b", "c"] and read.scores["dice"].tolist() == [0.5, 1.0]
    path.write_text("image,dice,iou\na,0.5,0.3\na,0.4,0.2\n")
    with pytest.raises(ValueError, match="listed twice"):
        read_per_image(path)
    path.write_text("image,dice\na,0.5\n")
    with pytest.raises(ValueError, match="no iou column"):
        read_per_image(path)
    path.write_text("image,dice,iou\na,x,0.2\n")
    with pytest.raises(ValueError, match="not a number"):
        read_per_image(path)


def test_plan_covers_ten_runs_and_only_narrows_it():
    assert len(plan(None)) == 10
    assert plan(["dsb/unetpp"]) == [("dsb", "unetpp")]
    assert plan(["*/unet", "isic/*"])[:5] == [("isic", a) for a in
        ("unet", "unet_bn", "improved_unet", "unetpp", "attention_unet")]  # fmt: skip
    assert ("dsb", "unet") in plan(["*/unet"]) and len(plan(["*/unet"])) == 2
    with pytest.raises(DataError, match="--only 'lesions/unet'"):
        plan(["lesions/unet"])


def test_train_command_starts_resumes_or_skips(tmp_path: Path):
    run = tmp_path / "isic" / "unet"
    new = train_command(tmp_path / "data", "unet", CPU_BUDGET, run)
    assert new[new.index("--img-size") + 1] == "64" and new[new.index("--epochs") + 1] == "10"
    assert new[new.index("--out") + 1] == str(run) and "--resume" not in new
    (run / "checkpoint").mkdir(parents=True)
    (run / "checkpoint" / "state.json").write_text("{}")
    assert train_command(tmp_path / "data", "unet", CPU_BUDGET, run)[-2:] == ["--resume", str(run)]
    (run / "test_metrics.json").write_text("{}")
    assert train_command(tmp_path / "data", "unet", CPU_BUDGET, run) is None


def test_toy_budget_is_marked_and_refused_for_the_kept_folder(capsys):
    assert TOY_BUDGET.toy and TOY_BUDGET.describe().startswith("TOY RUN")
    assert main(["--budget", "toy", "--out", "models/variants"]) == 2
    assert "--budget toy" in capsys.readouterr().err


@pytest.mark.slow
def test_a_toy_run_end_to_end_writes_a_folder_that_checks(tmp_path: Path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    (root / "dsb2018").symlink_to(REPO / "samples" / "dsb", target_is_directory=True)
    out, work = tmp_path / "variants", tmp_path / "work"
    argv = ["--budget", "toy", "--only", "dsb/unet", "--data-root", str(root)]
    assert main([*argv, "--out", str(out), "--work", str(work)]) == 0
    card = _card(out / "dsb" / "unet")
    assert card["variant"]["toy"] is True and card["precision"] in ("int8", "fp16")
    assert card["variant"]["budget"]["img_size"] == 64
    assert main(["--check", "--out", str(out), "--min-epochs", "3"]) == 0
    assert main(["--check", "--out", str(out)]) == 1  # 3 epochs: not a comparison run
    assert "3 epochs logged, fewer than 10" in capsys.readouterr().out
    # a second call finds everything done: nothing is trained or exported again
    before = (out / "dsb" / "unet" / CARD_FILE).stat().st_mtime_ns
    assert main([*argv, "--out", str(out), "--work", str(work)]) == 0
    assert (out / "dsb" / "unet" / CARD_FILE).stat().st_mtime_ns == before
