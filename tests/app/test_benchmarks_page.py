"""The Benchmarks page in AppTest and its tables: cards plus bench/results, or a friendly note."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pagetools import problems, texts, warnings

from segcore.app.benchmarks import (
    latency_figure,
    latency_table,
    load_nuclei,
    load_results,
    model_table,
    nuclei_caption,
    nuclei_table,
    precision_table,
    scores_as_text,
    training_figure,
    training_table,
)
from segcore.app.model_choice import list_models


def inference_record(model: str, provider: str = "CPUExecutionProvider") -> dict:
    """A record shaped like ``python -m bench.inference`` writes."""
    return {
        "model": model,
        "arch": "handmade",
        "providers": [provider],
        "ort_latency_ms_median": 2.0,
        "ort_latency_ms_p90": 2.5,
        "ort_throughput_ips": 900.0,
        "keras_latency_ms_median": 8.0,
        "keras_latency_ms_p90": 9.0,
        "keras_throughput_ips": 200.0,
        "ort_over_keras_latency": 0.25,
        "e2e_photo": "3000x2000 JPEG",
        "e2e_seconds_median": 0.31,
        "keras_device": "cpu",
        "host": "vm",
        "cpu": "Some CPU",
        "date": "2026-11-23T00:00:00+00:00",
    }


TRAIN_RECORD = {
    "arch": "unet_bn",
    "img_size": 128,
    "batch_size": 16,
    "precision": "fp32",
    "train_img_s": 4.7,
    "model_only_img_s": 6.8,
    "device": "cpu",
    "backend": "jax",
}


@pytest.fixture
def bench_dir(tmp_path: Path) -> Path:
    """Results for both hand-made models (bright on CPU and GPU) and one training record."""
    folder = tmp_path / "results"
    folder.mkdir()
    records = [
        inference_record("bright"),
        inference_record("bright", "CUDAExecutionProvider"),
        inference_record("bright_gray"),
    ]
    (folder / "inference-vm.json").write_text(json.dumps(records))
    (folder / "train.json").write_text(json.dumps([TRAIN_RECORD]))
    return folder


def test_benchmarks_page_with_results(app_env, bright_models_dir: Path, bench_dir: Path, open_page):
    app_env(models=bright_models_dir, bench=bench_dir)
    at = open_page("benchmarks")
    assert not problems(at)
    assert not at.info
    models, every_model_column, latency, every_field, training = (d.value for d in at.dataframe)
    assert set(models.columns) < set(every_model_column.columns)  # the main columns fit 1400 px
    assert list(latency.columns)[:3] == ["model", "precision", "runs on"]
    assert {"machine", "date", "photo"} <= set(every_field.columns) - set(latency.columns)
    assert models["model"].tolist() == ["bright", "bright_gray"]
    assert latency["ORT / Keras"].tolist() == [0.25, 0.25, 0.25]
    assert latency["runs on"].tolist() == ["CPU", "GPU", "CPU"]
    assert training["train img/s"].tolist() == [4.7]


def test_benchmarks_page_without_results(app_env, bright_models_dir: Path, open_page):
    app_env(models=bright_models_dir)
    at = open_page("benchmarks")
    assert not problems(at)
    assert "No inference benchmark results yet" in texts(at)
    assert "No training benchmark results yet" in texts(at)
    assert len(at.dataframe) == 2  # the models table from the cards (main columns, every column)


def test_benchmarks_page_skips_a_broken_file(app_env, bright_models_dir, bench_dir, open_page):
    (bench_dir / "inference-broken.json").write_text("{not json")
    app_env(models=bright_models_dir, bench=bench_dir)
    at = open_page("benchmarks")
    assert not problems(at)
    assert any("inference-broken.json" in w for w in warnings(at))


def test_tables_and_figures(bright_models_dir: Path, bench_dir: Path):
    inference, training, bad = load_results(bench_dir)
    assert len(inference) == 3 and len(training) == 1 and not bad
    entries, _ = list_models(bright_models_dir)
    table = model_table(entries)
    assert table["ONNX MB"].notna().all()
    assert table["test Dice"].isna().all()  # the hand-made cards have no test metrics
    latency = latency_table(inference)
    labels = set(latency_figure(latency).data[0].x)
    assert labels == {"bright CPU", "bright GPU", "bright_gray"}
    assert latency["precision"].tolist() == ["fp32"] * 3  # records without one are fp32
    assert training_table(training)["arch"].tolist() == ["unet_bn"]


def test_inference_table_has_a_precision_per_row_and_tolerates_new_and_missing_keys():
    records = [
        {**inference_record("bright"), "precision": "fp32"},
        {
            **inference_record("bright"),
            "precision": "int8",
            "ort_throughput_ips_batch8": 1500.0,
            "gflops_fraction_of_gemm": 0.61,
        },
        {"model": "bright_gray", "precision": "fp16"},  # an old or partial record
    ]
    table = latency_table(records)
    assert table["precision"].tolist() == ["fp32", "int8", "fp16"]
    assert table["gflops_fraction_of_gemm"].tolist()[1] == 0.61
    assert np.isnan(table["gflops_fraction_of_gemm"].tolist()[0])
    assert table["onnxruntime ms"].isna().tolist() == [False, False, True]
    assert set(latency_figure(table).data[0].x) == {"bright fp32", "bright int8", "bright_gray"}


def test_training_chart_has_one_panel_and_axis_per_device():
    records = [
        {**TRAIN_RECORD, "device": "NVIDIA H100", "precision": "bf16", "train_img_s": 1080.0},
        TRAIN_RECORD,
    ]
    fig = training_figure(training_table(records))
    assert [trace.y.tolist() for trace in fig.data] == [[1080.0], [4.7]]
    assert {a.text for a in fig.layout.annotations} == {"NVIDIA H100", "cpu"}
    assert fig.layout.yaxis2.matches is None  # each device keeps its own scale


def test_missing_results_folder(tmp_path: Path):
    assert load_results(tmp_path / "nope") == ([], [], [])


def test_precision_records_get_their_own_table():
    records = [
        {"model": "m", "precision": "fp16", "ort_latency_ms_median": 40.0},
        {"record": "precision", "model": "m", "precision": "fp32", "batch1_ms_median": 50.0},
        {
            "record": "precision",
            "model": "m",
            "precision": "int8",
            "batch1_ms_median": 25.0,
            "speedup_over_fp32_batch1": 2.0,
            "gemm_fraction": 1.1,
        },
    ]
    latency = latency_table(records)
    assert latency["precision"].tolist() == ["fp16"]
    comparison = precision_table(records)
    assert comparison["precision"].tolist() == ["fp32", "int8"]
    assert comparison["batch 1 ms"].tolist() == [50.0, 25.0]
    assert comparison["speed-up vs fp32"].iloc[1] == 2.0
    assert precision_table(records[:1]).empty


NUCLEI_SCORES = {
    "split": "test",
    "n_images": 60,
    "date": "2026-11-23T12:00:00+00:00",
    "results": [
        {
            "model": "sem",
            "method": "components",
            "dsb_score": 0.55,
            "f1_iou50": 0.82,
            "count_error": 0.11,
            "dice": 0.92,
            "n_images": 60,
        },
        {
            "model": "inst",
            "method": "instances",
            "dsb_score": 0.62,
            "f1_iou50": 0.878,
            "count_error": 0.081,
            "dice": 0.926,
            "n_images": 60,
        },
    ],
}
NUCLEI_SPEED = {
    "model": "inst",
    "size": [1024, 1024],
    "threads": 2,
    "nuclei": 479,
    "e2e_seconds_median": 0.756,
}


def test_benchmarks_page_shows_nuclei_scores_and_speed(
    app_env, bright_models_dir: Path, bench_dir: Path, open_page
):
    (bench_dir / "nuclei-scores.json").write_text(json.dumps(NUCLEI_SCORES))
    (bench_dir / "nuclei-speed.json").write_text(json.dumps(NUCLEI_SPEED))
    app_env(models=bright_models_dir, bench=bench_dir)
    at = open_page("benchmarks")
    assert not problems(at)
    assert "Nuclei as objects" in [h.value for h in at.subheader]
    nuclei = at.dataframe[2].value
    assert nuclei["method"].tolist() == ["components", "instances"]
    assert nuclei["DSB score"].tolist() == [0.55, 0.62]
    assert nuclei["count error"].tolist() == [0.11, 0.081]
    caption = " ".join(c.value for c in at.caption)
    assert "test split (60 images" in caption and "0.76 s end to end" in caption


def test_nuclei_files_absent_broken_or_misshapen(tmp_path: Path):
    assert load_nuclei(tmp_path) == (None, None, [])
    (tmp_path / "nuclei-scores.json").write_text("{not json")
    (tmp_path / "nuclei-speed.json").write_text("[1, 2]")
    scores, speed, bad = load_nuclei(tmp_path)
    assert scores is None and speed is None
    assert [b.split(":")[0] for b in bad] == ["nuclei-scores.json", "nuclei-speed.json"]
    (tmp_path / "nuclei-scores.json").write_text(json.dumps({"results": "none"}))
    assert load_nuclei(tmp_path)[2][0] == "nuclei-scores.json: no list of results"
    (tmp_path / "nuclei-scores.json").write_text(json.dumps(NUCLEI_SCORES))
    (tmp_path / "nuclei-speed.json").unlink()
    scores, speed, bad = load_nuclei(tmp_path)
    assert scores == NUCLEI_SCORES and speed is None and not bad
    assert nuclei_table(scores)["images"].tolist() == [60, 60]
    assert "Speed" not in nuclei_caption(scores, None)
    assert nuclei_caption(None, NUCLEI_SPEED).startswith("Speed: a 1024x1024 image")


def test_scores_as_text_puts_a_dash_where_a_model_has_no_instance_scores():
    table = pd.DataFrame(
        {"model": ["inst", "sem"], "DSB score": [0.6221, None], "count error": [0.0812, None]}
    )
    out = scores_as_text(table)
    assert out["DSB score"].tolist() == ["0.622", "–"]
    assert out["count error"].tolist() == ["8.1%", "–"]
    assert table["DSB score"].iloc[0] == 0.6221  # the original table is left as it was
