"""The README results table: shipped rows labelled as post-processed ONNX, raw Keras rows, and the
peer figures read from their data file with their provenance."""

from __future__ import annotations

import json
from pathlib import Path

from variant_folders import write_variant

from export.table import batch1_ms, read_peers, render, variant_records
from segcore.paths import REPO_ROOT as ROOT

CARD = {
    "name": "isic_x_int8",
    "dataset": "isic",
    "precision": "int8",
    "test_metrics": {"dice": 0.9, "iou": 0.8, "precision": 0.91, "recall": 0.92},
    "params": 3_000_000,
    "input_size": 256,
    "epochs": 50,
    "train_seconds": 100.0,
    "device": "gpu",
}
RECORD = {
    "dataset": "isic",
    "arch": "unet",
    "base_filters": 16,
    "test": {"dice": 0.88, "iou": 0.79, "precision": 0.9, "recall": 0.9},
    "params": 2_000_000,
    "input_size": 256,
    "epochs": 60,
    "train_seconds": 200.0,
    "device": "gpu",
    "train_img_s": 300.0,
}


def test_peers_file_has_provenance_for_every_figure():
    peers = read_peers()
    assert peers
    for p in peers:
        assert p["source"] and p["how"] in ("measured", "reported", "approximate")
    reported = [p for p in peers if p["dice"] == 0.83]
    assert reported and "student" in reported[0]["source"] and "BraTS" in reported[0]["source"]


def test_render_labels_rows_and_reads_latency(tmp_path: Path):
    (tmp_path / "inference-a.json").write_text(
        json.dumps(
            [
                {"record": "model", "model": "isic_x_int8", "ort_latency_ms_median": 41.6},
                {"record": "precision", "model": "isic_x", "batch1_ms_median": 99.0},
            ]
        )
    )
    latency = batch1_ms(tmp_path)
    assert latency == {"isic_x_int8": 41.6}
    peer = {"dataset": "isic", "model": "Someone's net", "dice": 0.8, "how": "reported"}
    table = render([RECORD], [CARD], [peer], latency).splitlines()
    assert "CPU ms" in table[0]
    assert "(shipped int8 ONNX, post-processed)" in table[2]
    assert table[2].endswith("| 42 | models/isic_x_int8.json, bench/results/inference-*.json |")
    assert "(base 16, raw Keras, GPU comparison, logs not kept)" in table[3]
    assert table[3].endswith("| bench/results/architectures.json |")
    assert "_Someone's net (peer, reported)_ | 0.8 |" in table[4]
    assert table[4].endswith("| docs/peers.json |")
    assert "0.891" not in (ROOT / "export" / "table.py").read_text()  # figures live in the data


def test_variant_rows_carry_their_interval_and_files_and_leave_toy_runs_out(tmp_path: Path):
    root = tmp_path / "variants"
    write_variant(root, "isic", "unetpp", [0.9, 0.8, 0.85, 0.95, 0.7, 0.75])
    write_variant(root, "isic", "unet", [0.5] * 6, toy=True)
    results = tmp_path / "results"
    results.mkdir()
    (results / "variants-cpu-a.json").write_text(
        json.dumps([{"dataset": "isic", "arch": "unetpp", "batch1_ms_median": 12.34}])
    )
    records = variant_records(root, results)
    assert [r["arch"] for r in records] == ["unetpp"]
    row = render([], [], [], {}, records).splitlines()[2]
    low, high = (float(x) for x in row.split("| 0.8250 (")[1].split(")")[0].split("-"))
    assert low < 0.825 < high
    assert "unetpp (base 16, CPU comparison, fp32 ONNX, post-processed)" in row
    assert "| 12.3 |" in row and row.endswith(
        f"{root}/isic/unetpp/model.json, variants-cpu-a.json |"
    )
