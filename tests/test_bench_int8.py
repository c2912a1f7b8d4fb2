"""bench.int8's records (bookkeeping and kernels, never speed): every shipped int8 model with the
file it derives from, each int8 form, the CPU facts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx

from bench.int8 import main, pairs
from export.int8_speed import FORMS
from export.precision import quantize


def test_int8_bench_records_every_variant(bright_models_dir: Path, tmp_path: Path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(bright_models_dir / "bright.onnx", models)
    card = json.loads((bright_models_dir / "bright.json").read_text())
    (models / "bright.json").write_text(json.dumps(card | {"precision": "fp32"}))
    rng = np.random.default_rng(0)
    calibration = [rng.random((32, 32, 3), dtype=np.float32) for _ in range(2)]
    quantize(onnx.load(models / "bright.onnx"), calibration, [], models / "bright_int8.onnx")
    derived = card | {
        "name": "bright_int8",
        "precision": "int8",
        "derived_from": "bright.onnx (fp32)",
    }
    (models / "bright_int8.json").write_text(json.dumps(derived))
    assert pairs(models) == [(models / "bright_int8.onnx", models / "bright.onnx")]
    out = tmp_path / "int8.json"
    assert main(["--models-dir", str(models), "--repeats", "2", "--out", str(out)]) == 0
    assert "bright_int8" in capsys.readouterr().out
    machine, record = json.loads(out.read_text())
    assert machine["record"] == "machine" and "avx512_vnni" in machine["int8_flags"]
    assert machine["onnxruntime"] and machine["cpu"]
    variants = record["variants"]
    assert set(variants) == {"fp32", "fp16", "int8", *(f"form:{f.label}" for f in FORMS)}
    assert variants["fp32"]["speedup_over_fp32"] == 1.0
    assert (
        variants["int8"]["file"] == "bright_int8.onnx" and variants["fp16"]["file"] == "bright.onnx"
    )
    assert variants["fp32"]["integer_convs"] == 0 and variants["int8"]["integer_convs"] >= 1
    assert variants["form:QOperator/uint8"]["stored_format"] == "QOperator"
    assert variants["int8"]["stored_format"] == "QDQ"
    for v in variants.values():
        assert v["p90_ms"] >= v["median_ms"] > 0


def test_no_int8_model_is_one_line(tmp_path: Path, capsys):
    assert main(["--models-dir", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 2
    assert "no int8 model" in capsys.readouterr().err
