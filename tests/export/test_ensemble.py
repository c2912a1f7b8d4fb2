"""``python -m export --ensemble``: member graphs merged into one ONNX averaging them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from handmade_models import save_conv1x1_sigmoid_model

from export import ExportError
from export.__main__ import main
from export.ensemble import check_members, merge_members
from export.graph import to_fp16
from export.run_folder import read_run


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _members(tmp_path: Path) -> list[onnx.ModelProto]:
    weights = ([1.0, -2.0, 0.5], [0.3, 0.3, 0.3], [-1.0, 0.0, 2.0])
    paths = [
        save_conv1x1_sigmoid_model(tmp_path / f"m{i}.onnx", 3, w, [0.1 * i])
        for i, w in enumerate(weights)
    ]
    return [onnx.load(p) for p in paths]


def test_merged_output_is_the_members_mean(tmp_path: Path):
    members = _members(tmp_path)
    members[2] = to_fp16(members[2], min_elements=1)  # a half-precision member mixes in
    merged = merge_members(members)
    assert [i.name for i in merged.graph.input] == ["image"]
    assert [o.name for o in merged.graph.output] == ["mask"]
    assert merged.graph.node[-1].op_type == "Mean"
    x = np.random.default_rng(0).random((2, 5, 7, 3), dtype=np.float32)
    expected = np.mean([_run(m, x) for m in members], axis=0)
    np.testing.assert_allclose(_run(merged, x), expected, atol=1e-6)
    assert not np.allclose(_run(members[0], x), expected, atol=1e-3)  # the members differ


def test_members_that_do_not_fit_are_refused(tmp_path: Path):
    members = _members(tmp_path)
    with pytest.raises(ExportError, match="at least two"):
        merge_members(members[:1])
    gray = onnx.load(save_conv1x1_sigmoid_model(tmp_path / "g.onnx", 1, [1.0], [0.0]))
    with pytest.raises(ExportError, match="input channels differ"):
        merge_members([members[0], gray])


def _second_member(tiny_run_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two run folders: the tiny run and a copy whose last layer's bias is shifted."""
    import keras

    first = Path(shutil.copytree(tiny_run_dir, tmp_path / "run-seed1"))
    second = Path(shutil.copytree(tiny_run_dir, tmp_path / "run-seed2"))
    model = keras.saving.load_model(second / "best.keras", compile=False)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, bias + 0.5])
    model.save(second / "best.keras")
    return first, second


@pytest.mark.slow
def test_export_ensemble_of_two_runs(tiny_run_dir: Path, tmp_path: Path, capsys):
    first, second = _second_member(tiny_run_dir, tmp_path)
    out = tmp_path / "models"
    argv = ["--ensemble", str(first), str(second), "--out", str(out), "--name", "tiny_ens"]
    assert main([*argv, "--precision", "fp16"]) == 0
    assert "tiny_ens.onnx" in capsys.readouterr().out
    card = json.loads((out / "tiny_ens.json").read_text())
    members = card["ensemble"]["members"]
    assert [m["precision"] for m in members] == ["fp16", "fp16"]
    assert all("loss" in m["val"] for m in members)  # the best epoch's val_* of history.csv
    assert members[0]["test_dice"] != members[1]["test_dice"] or card["merge_max_abs_diff"] < 1e-4
    assert card["merge_max_abs_diff"] <= 1e-4
    assert card["test_metrics"]["n_images"] == 2 and "thresholded_jaccard" in card["test_metrics"]
    model = onnx.load(out / "tiny_ens.onnx")
    assert sum(n.op_type == "Mean" for n in model.graph.node) == 1
    assert card["onnx_bytes"] == (out / "tiny_ens.onnx").stat().st_size


def test_one_run_dir_or_an_ensemble(tiny_run_dir: Path, capsys):
    assert main([str(tiny_run_dir), "--ensemble", str(tiny_run_dir)]) == 2
    assert "give one RUN_DIR, or --ensemble" in capsys.readouterr().err


def test_members_must_share_their_split(tiny_run_dir: Path, tmp_path: Path):
    other = Path(shutil.copytree(tiny_run_dir, tmp_path / "other"))
    split = json.loads((other / "split.json").read_text())
    split["test"], split["val"] = split["val"], split["test"]
    (other / "split.json").write_text(json.dumps(split))
    with pytest.raises(ExportError, match="split differs"):
        check_members([read_run(tiny_run_dir), read_run(other)])
