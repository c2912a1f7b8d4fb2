"""Benchmark tables and charts: model cards plus ``bench/results`` (inference and training speed).

``inference-*.json`` files (written by ``python -m bench.inference``) hold lists of per-model
records; ``train.json`` (``python -m bench.train``) a list of training-throughput records;
``nuclei-scores.json`` (``python -m bench.nuclei_scores``) the instance scores of nuclei models and
their baselines on one split, and ``nuclei-speed.json`` (``python -m bench.nuclei_speed``) the end
to end time of one image with instances.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from segcore.app.cards import INSTANCE_SCORES
from segcore.app.dashboard import LAYOUT
from segcore.app.model_choice import ModelEntry


def _read_json(path: Path, kind: type, what: str) -> tuple[Any, list[str]]:
    """The JSON value in ``path`` if it is a ``kind`` (else None and a message naming the file)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, [f"{path.name}: unreadable ({exc})"]
    if not isinstance(data, kind):
        return None, [f"{path.name}: expected {what}"]
    return data, []


def _records(path: Path) -> tuple[list[dict], list[str]]:
    """The list of dict records in one JSON file, and a message if it is unreadable."""
    data, bad = _read_json(path, list, "a list of records")
    return [r for r in data or [] if isinstance(r, dict)], bad


def load_results(folder: Path) -> tuple[list[dict], list[dict], list[str]]:
    """(inference records, training records, problems) found in ``folder``."""
    inference, problems = [], []
    for path in sorted(folder.glob("inference-*.json")) if folder.is_dir() else []:
        records, bad = _records(path)
        inference += [r for r in records if "model" in r]
        problems += bad
    training: list[dict] = []
    if (folder / "train.json").is_file():
        records, bad = _records(folder / "train.json")
        training = [r for r in records if "train_img_s" in r]
        problems += bad
    return inference, training, problems


def _object(path: Path) -> tuple[dict | None, list[str]]:
    """The JSON object in ``path`` (None if the file is absent), and a message if unreadable."""
    return _read_json(path, dict, "a JSON object") if path.is_file() else (None, [])


def load_nuclei(folder: Path) -> tuple[dict | None, dict | None, list[str]]:
    """(instance scores, instance speed, problems) from ``nuclei-scores.json`` and
    ``nuclei-speed.json`` in ``folder``; None for a file that is absent or unreadable."""
    scores, bad_scores = _object(folder / "nuclei-scores.json")
    speed, bad_speed = _object(folder / "nuclei-speed.json")
    if scores is not None and not isinstance(scores.get("results"), list):
        scores, bad_scores = None, ["nuclei-scores.json: no list of results"]
    return scores, speed, bad_scores + bad_speed


def nuclei_table(scores: dict) -> pd.DataFrame:
    """One row per scored method: model, method and the instance and semantic scores."""
    rows = [
        {
            "model": r.get("model"),
            "method": r.get("method"),
            **{label: r.get(key) for key, label in INSTANCE_SCORES},
            "Dice": r.get("dice"),
            "images": r.get("n_images", scores.get("n_images")),
        }
        for r in scores["results"]
        if isinstance(r, dict)
    ]
    return pd.DataFrame(rows)


def nuclei_caption(scores: dict | None, speed: dict | None) -> str:
    """What the nuclei table was scored on, and the end-to-end time of one large image."""
    parts = []
    if scores is not None:
        split, n = scores.get("split", "?"), scores.get("n_images", "?")
        parts.append(
            f"Scores on the DSB {split} split ({n} images; `python -m bench.nuclei_scores`, "
            f"{str(scores.get('date', ''))[:10]}): the DSB 2018 score is the mean over IoU "
            "thresholds 0.50-0.95 of TP/(TP+FP+FN); count error is |found - true| / true per "
            "image, averaged."
        )
    seconds = (speed or {}).get("e2e_seconds_median")
    if isinstance(seconds, int | float):
        speed = speed or {}
        size = "x".join(str(v) for v in speed.get("size", [])) or "one"
        parts.append(
            f"Speed: a {size} image with instances ({speed.get('nuclei', '?')} nuclei) takes "
            f"{seconds:.2f} s end to end with {speed.get('model', 'the model')} on "
            f"{speed.get('threads', '?')} threads (`python -m bench.nuclei_speed`)."
        )
    return " ".join(parts)


def scores_as_text(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of a model table whose instance-score columns are text, with a dash where a model
    has none (a semantic model) instead of the table widget's grey "None"."""
    out = table.copy()
    for key, label in INSTANCE_SCORES:
        if label in out.columns:
            fmt = "{:.1%}" if key == "count_error" else "{:.3f}"
            out[label] = [
                fmt.format(v) if isinstance(v, int | float) and v == v else "–" for v in out[label]
            ]
    return out


def model_table(entries: list[ModelEntry]) -> pd.DataFrame:
    """One row per model from its card: size and test accuracy, plus the instance scores
    (DSB score, F1 at IoU 0.5, count error) when any model is an instance model."""
    instances = any(e.card.instances is not None for e in entries)
    rows = []
    for e in entries:
        metrics = e.card.get("test_metrics") or {}
        size = e.card.get("onnx_bytes") or e.path.stat().st_size
        row = {
            "model": e.name,
            "dataset": e.dataset,
            "arch": e.card.get("arch"),
            "precision": e.card.get("precision", "fp32"),
            "params": e.card.get("params"),
            "ONNX MB": round(size / 1e6, 2),
            "test Dice": metrics.get("dice"),
            "test IoU": metrics.get("iou"),
        }
        if instances:
            for key, label in INSTANCE_SCORES:
                row[label] = metrics.get(key) if e.card.instances is not None else None
        row["test images"] = metrics.get("n_images")
        row["train minutes"] = _minutes(e.card.get("train_seconds"))
        rows.append(row)
    return pd.DataFrame(rows)


def _minutes(seconds: float | None) -> float | None:
    return round(seconds / 60, 1) if isinstance(seconds, int | float) else None


def _runtime(record: dict) -> str:
    """Where onnxruntime ran: ``GPU`` for the CUDA provider, else ``CPU``."""
    providers = record.get("providers") or ["CPUExecutionProvider"]
    return "GPU" if providers[0].startswith("CUDA") else "CPU"


#: Inference record keys shown as columns (record key -> column), in this order.
LATENCY_COLUMNS = {
    "ort_latency_ms_median": "onnxruntime ms",
    "ort_latency_ms_p90": "p90 ms",
    "ort_throughput_ips": "img/s (batch 8)",
    "keras_latency_ms_median": "Keras ms",
    "ort_over_keras_latency": "ORT / Keras",
    "e2e_seconds_median": "e2e s per photo",
}
#: Record keys that describe the setting rather than a measurement (left out of extra columns).
SETTING_KEYS = {"params", "onnx_bytes", "input_size", "channels", "repeats", "cores", "batch"}


def _extra_columns(records: list[dict]) -> list[str]:
    """Numeric measurement keys beyond `LATENCY_COLUMNS` that some record has (new benchmark
    fields such as GFLOP/s or a fraction of the machine's rate), in first-seen order."""
    seen: dict[str, None] = {}
    for r in records:
        for key, value in r.items():
            if (
                key not in LATENCY_COLUMNS
                and key not in SETTING_KEYS
                and not key.startswith("keras_")
                and isinstance(value, int | float)
                and not isinstance(value, bool)
            ):
                seen[key] = None
    return list(seen)


#: Columns of the precision comparison (``"record": "precision"`` records of bench.inference).
PRECISION_COLUMNS = {
    "batch1_ms_median": "batch 1 ms",
    "batch1_ms_p90": "p90 ms",
    "batch8_images_per_s": "img/s (batch 8)",
    "speedup_over_fp32_batch1": "speed-up vs fp32",
    "e2e_photo_seconds_median": "e2e s per photo",
    "gmac_per_image": "GMAC per image",
    "effective_gflops": "GFLOP/s",
    "gemm_gflops": "machine GEMM GFLOP/s",
    "gemm_fraction": "share of GEMM rate",
}


def is_precision_record(record: dict) -> bool:
    """True for bench.inference's per-precision comparison records (fp32 / fp16 / int8 of one
    model, timed in one run on the same inputs)."""
    return record.get("record") == "precision"


def precision_table(records: list[dict]) -> pd.DataFrame:
    """One row per model and precision from the comparison records; empty when there are none."""
    rows = [
        {
            "model": r.get("model"),
            "precision": r.get("precision", "fp32"),
            **{label: r.get(key) for key, label in PRECISION_COLUMNS.items()},
            "machine": r.get("cpu") or r.get("host") or "?",
            "date": r.get("date"),
        }
        for r in records
        if is_precision_record(r)
    ]
    return pd.DataFrame(rows)


def latency_table(records: list[dict]) -> pd.DataFrame:
    """One row per benchmarked model file and machine: onnxruntime latency (median, p90),
    batch throughput, Keras, end to end, and any further numeric fields the records carry.
    Missing fields stay empty; the precision comparison records have `precision_table`."""
    records = [r for r in records if not is_precision_record(r)]
    extras = _extra_columns(records)
    rows = []
    for r in records:
        row = {
            "model": r.get("model"),
            "precision": r.get("precision", "fp32"),
            "runs on": _runtime(r),
        }
        row.update({label: r.get(key) for key, label in LATENCY_COLUMNS.items()})
        row.update({key: r.get(key) for key in extras})
        row.update(
            {
                "machine": r.get("cpu") or r.get("host") or "?",
                "photo": r.get("e2e_photo"),
                "Keras on": r.get("keras_device"),
                "date": r.get("date"),
            }
        )
        rows.append(row)
    return pd.DataFrame(rows)


def training_table(records: list[dict]) -> pd.DataFrame:
    """One row per training-throughput measurement."""
    rows = [
        {
            "arch": r.get("arch"),
            "image size": r.get("img_size"),
            "batch": r.get("batch_size"),
            "precision": r.get("precision", "fp32"),
            "train img/s": r.get("train_img_s"),
            "model only img/s": r.get("model_only_img_s"),
            "device": r.get("device"),
            "backend": r.get("backend"),
            "data": r.get("data"),
            "date": r.get("date"),
        }
        for r in records
    ]
    return pd.DataFrame(rows)


def _label(table: pd.DataFrame) -> pd.Series:
    """Model names, with the precision and the runtime added where one model was measured with
    several."""
    label = table["model"].astype(str)
    for column in ("precision", "runs on"):
        varies = table.groupby("model")[column].transform("nunique") > 1
        label = label.where(~varies, label + " " + table[column].astype(str))
    return label


def latency_figure(table: pd.DataFrame) -> go.Figure:
    """Grouped bars: median batch-1 latency of onnxruntime and Keras per model."""
    long = table.assign(label=_label(table)).melt(
        id_vars="label",
        value_vars=["onnxruntime ms", "Keras ms"],
        var_name="engine",
        value_name="ms",
    )
    fig = px.bar(long, x="label", y="ms", color="engine", barmode="group", text_auto=".1f")
    fig.update_layout(
        title="Latency per image (batch 1, median)", xaxis_title="", yaxis_title="ms", **LAYOUT
    )
    return fig


def e2e_figure(table: pd.DataFrame) -> go.Figure:
    """Bars: end-to-end seconds for one large photo (decode, segment, resize back, clean up)."""
    fig = px.bar(table.assign(label=_label(table)), x="label", y="e2e s per photo", text_auto=".2f")
    fig.update_layout(
        title="End to end, one 3000x2000 photo", xaxis_title="", yaxis_title="seconds", **LAYOUT
    )
    return fig


def scores_figure(table: pd.DataFrame) -> go.Figure:
    """Grouped horizontal bars: test Dice and IoU per model (names stay readable)."""
    long = table.melt(
        id_vars="model", value_vars=["test Dice", "test IoU"], var_name="score", value_name="value"
    )
    fig = px.bar(
        long,
        y="model",
        x="value",
        color="score",
        barmode="group",
        orientation="h",
        text_auto=".3f",
    )
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Test scores", xaxis_title="", yaxis_title="", **LAYOUT)
    return fig


def training_figure(table: pd.DataFrame) -> go.Figure:
    """Bars of training images/s per architecture and setting, one panel per device, each with
    its own y axis (a GPU's thousands and a CPU's few images/s are both readable)."""
    label = (
        table["arch"].astype(str)
        + " "
        + table["image size"].astype(str)
        + "px b"
        + table["batch"].astype(str)
        + " "
        + table["precision"].astype(str)
    )
    data = table.assign(setting=label, device=table["device"].fillna("?").astype(str))
    devices = list(dict.fromkeys(data["device"]))
    fig = px.bar(
        data,
        x="setting",
        y="train img/s",
        color="device",
        facet_col="device",
        facet_col_spacing=0.08,
        category_orders={"device": devices},
        text_auto=".0f",
    )
    fig.update_yaxes(matches=None, showticklabels=True, title_text="")
    fig.update_yaxes(title_text="images/s", col=1)
    fig.update_xaxes(matches=None, title_text="")
    fig.for_each_annotation(lambda a: a.update(text=a.text.split("=", 1)[-1]))
    fig.update_layout(
        title="Training throughput (one panel per device, own scale)", showlegend=False, **LAYOUT
    )
    return fig
