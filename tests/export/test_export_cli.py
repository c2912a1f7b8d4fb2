"""``python -m export``: success, refusals (parity, fp16), bad run folders, fp16 output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from export.__main__ import main
from segcore.paths import REPO_ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "export", *args], cwd=REPO_ROOT, capture_output=True, text=True
    )


def test_missing_run_folder_is_one_line(tmp_path: Path):
    result = run_cli(str(tmp_path / "nope"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "run folder not found" in result.stderr and "Traceback" not in result.stderr


def test_run_folder_without_model(tmp_path: Path):
    result = run_cli(str(tmp_path))
    assert result.returncode == 2
    assert "no best.keras" in result.stderr and "Traceback" not in result.stderr


def test_run_folder_without_config(tmp_path: Path):
    (tmp_path / "best.keras").write_bytes(b"")
    result = run_cli(str(tmp_path))
    assert result.returncode == 2
    assert "config.json: not found" in result.stderr


@pytest.mark.slow
def test_parity_refusal_writes_nothing(tiny_run_dir: Path, tmp_path: Path, monkeypatch, capsys):
    import export.pipeline

    monkeypatch.setattr(export.pipeline, "PARITY_TOLERANCE", -1.0)
    out = tmp_path / "models"
    assert main([str(tiny_run_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ONNX output differs from Keras by") and "\n" not in err
    assert not out.exists()


@pytest.mark.slow
def test_fp16_export(tiny_run_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "models"
    assert (
        main([str(tiny_run_dir), "--out", str(out), "--precision", "fp16", "--max-images", "1"])
        == 0
    )
    assert "plain_unet_fp16.onnx" in capsys.readouterr().out
    card = json.loads((out / "plain_unet_fp16.json").read_text())
    assert card["precision"] == "fp16"
    assert card["parity_tolerance"] == 1e-2
    assert card["parity_max_abs_diff"] <= 1e-2
    assert card["fp32_parity_max_abs_diff"] <= 1e-4
    assert 0 <= card["fp16_test_dice"] <= 1 and 0 <= card["fp32_test_dice"] <= 1
    assert card["fp16_test_dice"] == pytest.approx(card["fp32_test_dice"], abs=0.02)
    assert card["test_metrics"]["n_images"] == 1
    assert card["onnx_bytes"] == (out / "plain_unet_fp16.onnx").stat().st_size
    assert card["onnx_bytes"] < card["fp32_onnx_bytes"]


@pytest.mark.slow
def test_fp16_refusal_writes_nothing(tiny_run_dir: Path, tmp_path: Path, monkeypatch):
    import export.pipeline

    monkeypatch.setattr(export.pipeline, "FP16_PARITY_TOLERANCE", -1.0)
    out = tmp_path / "models"
    assert (
        main([str(tiny_run_dir), "--out", str(out), "--precision", "fp16", "--max-images", "1"])
        == 2
    )
    assert not out.exists()


@pytest.mark.slow
def test_isic_run_gets_credit_and_lesion_postprocess(tiny_run_dir: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(config | {"dataset": "isic"}))
    (run / "test_metrics.json").unlink()
    out = tmp_path / "models"
    assert main([str(run), "--out", str(out), "--max-images", "1"]) == 0
    card = json.loads((out / "isic_unet.json").read_text())
    assert "ISIC 2017" in card["source"] and "CC BY-NC 4.0" in card["source"]
    assert card["postprocess"] == {"keep_largest": True, "fill_holes": True}
    assert card["keras_test_metrics"] is None


@pytest.mark.slow
def test_bad_name_is_refused(tiny_run_dir: Path, tmp_path: Path, capsys):
    assert main([str(tiny_run_dir), "--out", str(tmp_path), "--name", "../evil"]) == 2
    assert "--name" in capsys.readouterr().err


def test_an_existing_model_is_never_replaced_silently(tiny_run_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "models"
    out.mkdir()
    shipped = out / "shipped.onnx"
    shipped.write_bytes(b"the shipped model")
    assert main([str(tiny_run_dir), "--out", str(out), "--name", "shipped"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "shipped.onnx exists" in err[0] and "--force" in err[0]
    assert shipped.read_bytes() == b"the shipped model"
    code = main([str(tiny_run_dir), "--out", str(out), "--name", "shipped", "--force"])
    assert code == 0 and shipped.read_bytes() != b"the shipped model"
    printed = capsys.readouterr()
    # no stray conversion or progress lines (tf2onnx logs each step at INFO)
    assert "Using tensorflow" not in printed.err and "Optimizing ONNX" not in printed.err
    assert "score " not in printed.err
    assert len(printed.out.strip().splitlines()) == 1


def test_closing_line_explains_a_dice_unlike_evaluates():
    from export.install import installed_line

    card = {
        "name": "m",
        "onnx_bytes": 2e6,
        "precision": "fp32",
        "test_split": "test",
        "test_metrics": {"dice": 0.5452, "n_images": 3},
        "keras_test_metrics": {"dice": 0.5427},
        "test_metrics_no_postprocess": {"dice": 0.5428},
    }
    line = installed_line(Path("models"), card, "parity 1e-06")
    assert "Dice 0.5452" in line and "evaluate's 0.5427" in line and "without it 0.5428" in line
    same = card | {"keras_test_metrics": {"dice": 0.5452}}
    assert "evaluate" not in installed_line(Path("models"), same, "parity 1e-06")
