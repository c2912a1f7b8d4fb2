"""A real export of the tiny run: the ONNX graph, the card's every field, the history copy."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

pytestmark = pytest.mark.slow

CARD_FIELDS = {
    "name": str,
    "arch": str,
    "arch_kwargs": dict,
    "dataset": str,
    "input_size": int,
    "channels": int,
    "normalization": str,
    "threshold": float,
    "params": int,
    "onnx_bytes": int,
    "opset": int,
    "precision": str,
    "dynamic_size": bool,
    "test_split": str,
    "test_metrics": dict,
    "test_metrics_no_postprocess": dict,
    "keras_test_metrics": dict,
    "train_seconds": float,
    "epochs": int,
    "best_epoch": int,
    "device": str,
    "backend": str,
    "library_versions": dict,
    "export_library_versions": dict,
    "parity_max_abs_diff": float,
    "parity_tolerance": float,
    "parity_images": int,
    "created": str,
    "source": str,
    "source_url": str,
    "postprocess": dict,
    "run_dir": str,
}
METRICS = ("n_images", "dice", "iou", "precision", "recall", "accuracy")


@pytest.fixture(scope="module")
def card(tiny_models_dir: Path) -> dict:
    return json.loads((tiny_models_dir / "tiny_unet.json").read_text())


def test_files_written(tiny_models_dir: Path, tiny_run_dir: Path):
    names = sorted(p.name for p in tiny_models_dir.iterdir())
    assert names == ["tiny_unet.history.csv", "tiny_unet.json", "tiny_unet.onnx"]
    history = (tiny_models_dir / "tiny_unet.history.csv").read_bytes()
    assert history == (tiny_run_dir / "history.csv").read_bytes()


def test_card_has_every_field(card: dict, tiny_run_dir: Path, tiny_models_dir: Path):
    for key, kind in CARD_FIELDS.items():
        assert isinstance(card[key], kind), (key, card.get(key))
    config = json.loads((tiny_run_dir / "config.json").read_text())
    assert card["name"] == "tiny_unet"
    assert (card["arch"], card["dataset"], card["input_size"], card["channels"]) == (
        "unet",
        "plain",
        config["img_size"],
        3,
    )
    assert card["arch_kwargs"] == config["arch_kwargs"]
    assert card["params"] == config["params"]
    assert card["precision"] == "fp32" and card["opset"] == 17 and card["dynamic_size"]
    assert card["onnx_bytes"] == (tiny_models_dir / "tiny_unet.onnx").stat().st_size
    assert card["run_dir"] == tiny_run_dir.name  # outside the working directory: its name only
    assert card["postprocess"] == {"keep_largest": False, "fill_holes": True}
    assert dt.datetime.fromisoformat(card["created"]).tzinfo is not None
    assert "user-provided" in card["source"]


def test_card_metrics(card: dict, tiny_run_dir: Path):
    assert card["parity_max_abs_diff"] <= card["parity_tolerance"] == 1e-4
    assert card["parity_images"] >= 1
    scored = (*METRICS, "thresholded_jaccard")
    expected = {"test_metrics": {*scored, "by_kind"}, "test_metrics_no_postprocess": set(scored)}
    for key in ("test_metrics", "test_metrics_no_postprocess", "keras_test_metrics"):
        assert set(card[key]) == expected.get(key, set(METRICS))
        assert all(0 <= card[key][m] <= 1 for m in METRICS[1:])
    # the tiny images (bright disks on a dark field) are all fluorescence-like
    by_kind = card["test_metrics"]["by_kind"]
    assert set(by_kind) == {"all", "fluorescence"}
    assert by_kind["all"] == pytest.approx({k: card["test_metrics"][k] for k in scored})
    assert card["test_metrics"]["n_images"] == 2  # 20 % of the 12 tiny images
    keras_metrics = json.loads((tiny_run_dir / "test_metrics.json").read_text())
    assert card["keras_test_metrics"]["dice"] == keras_metrics["dice"]["mean"]
    # same pipeline without post-processing: the ONNX scores match the Keras ones
    assert card["test_metrics_no_postprocess"]["dice"] == pytest.approx(
        card["keras_test_metrics"]["dice"], abs=1e-3
    )


def test_onnx_graph(tiny_models_dir: Path):
    proto = onnx.load(tiny_models_dir / "tiny_unet.onnx")
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [17]
    (inp,) = proto.graph.input
    (out,) = proto.graph.output
    assert (inp.name, out.name) == ("image", "mask")
    dims = inp.type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [0, 0, 0, 3]  # dynamic N, H, W; 3 channels
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for shape in [(1, 32, 32, 3), (3, 48, 64, 3)]:
        prob = session.run(None, {"image": np.random.rand(*shape).astype(np.float32)})[0]
        assert prob.shape == shape[:3] + (1,)
        assert prob.min() >= 0 and prob.max() <= 1


def test_a_run_on_several_sources_carries_every_licence():
    from export.card_writer import source_credit

    credit = source_credit("dsb+monuseg2018", {"dsb": {"train": 480}, "monuseg2018": {"train": 24}})
    assert [s["name"] for s in credit["sources"]] == ["dsb", "monuseg2018"]
    assert "CC0" in credit["licence"] and "CC BY-NC-SA 4.0" in credit["licence"]
    assert credit["sources"][1]["images"] == {"train": 24}
    assert "Kumar" in credit["sources"][1]["citation"]
    assert "user-provided" in source_credit("dsb+my_cells")["sources"][1]["source"]
