"""bench.inference's records (shapes and bookkeeping, never speed): precision families, the
multiply-add based GFLOP/s and the per-file records the Benchmarks page reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx

from bench.inference import bench_family, families, model_record
from export.graph import count_macs, to_fp16


def test_precision_records_of_a_family(bright_models_dir: Path, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(bright_models_dir / "bright.onnx", models / "bright.onnx")
    card = json.loads((bright_models_dir / "bright.json").read_text())
    (models / "bright.json").write_text(json.dumps(card | {"precision": "fp32"}))
    # a derived file: an fp16-weight copy standing in for a quantized one
    onnx.save(to_fp16(onnx.load(models / "bright.onnx"), min_elements=1), models / "b_int8.onnx")
    derived = card | {"precision": "int8", "derived_from": "bright.onnx (fp32)", "name": "b_int8"}
    (models / "b_int8.json").write_text(json.dumps(derived))
    work = tmp_path / "work"
    work.mkdir()
    (family,) = families(sorted(models.glob("*.onnx")), work)
    assert family.name == "bright" and set(family.engines) == {"fp32", "fp16", "int8"}
    assert family.files == {"fp32": models / "bright.onnx", "int8": models / "b_int8.onnx"}
    assert family.macs == count_macs(onnx.load(models / "bright.onnx"), (1, 32, 32, 3)) == 3 * 1024
    records = bench_family(family, repeats=3, gemm=100.0)
    assert [r["precision"] for r in records] == ["fp32", "fp16", "int8"]
    for r in records:
        assert r["record"] == "precision" and r["model"] == "bright"
        assert r["effective_gflops"] == 2 * family.macs / (r["batch1_ms_median"] / 1e3) / 1e9
        assert r["gemm_fraction"] == r["effective_gflops"] / 100.0
        assert r["batch1_ms_p90"] >= r["batch1_ms_median"] > 0
    assert records[0]["speedup_over_fp32_batch1"] == 1.0
    shipped = model_record(family, "int8", records[2])
    assert shipped["model"] == "b_int8" and shipped["record"] == "model"
    assert shipped["ort_latency_ms_median"] == records[2]["batch1_ms_median"]


def test_records_are_written_under_a_file_name_safe_tag(tmp_path: Path, monkeypatch):
    import argparse

    import bench.records

    monkeypatch.setattr(bench.records, "RESULTS_DIR", tmp_path / "results")
    parser = argparse.ArgumentParser()
    bench.records.add_out_flag(parser, "inference")
    out = parser.parse_args(["--tag", "host/a b"]).out  # the old spelling names the same file
    path = bench.records.write_records(out, [{"model": "m", "ms": 1.5}])
    assert path == tmp_path / "results" / "inference-host_a_b.json"
    assert json.loads(path.read_text()) == [{"model": "m", "ms": 1.5}]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
