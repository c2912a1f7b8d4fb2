"""Precision variants: fp16 <-> fp32 graphs, boundary convolutions, multiply-add counts, int8
export from a run and from a shipped model, and the Dice guard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.graph import boundary_convs, count_macs, to_fp16, to_fp32
from segcore.data import find_samples, make_split
from segcore.inference.engine import Engine


def conv_graph() -> onnx.ModelProto:
    """NHWC image -> Conv 3x3 (3->4) -> ConvTranspose 2x2 stride 2 (4->2) -> MatMul (2->5)."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(4, 2, 2, 2)).astype(np.float32), "w2"),
        numpy_helper.from_array(rng.normal(size=(2, 5)).astype(np.float32), "w3"),
    ]
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1"], ["c1"], pads=[1, 1, 1, 1], name="first"),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("ConvTranspose", ["r1", "w2"], ["c2"], strides=[2, 2], name="up"),
        helper.make_node("Transpose", ["c2"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["nhwc", "w3"], ["mask"], name="head"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, None, None, 3])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [None, None, None, 5])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_count_macs_by_hand():
    # Conv: 8x8 outputs x 4 channels x (3 in x 3x3); ConvTranspose: 8x8x4 inputs x (2 out x 2x2);
    # MatMul: 16x16 rows x 5 outputs x 2 inputs
    expected = 64 * 4 * 27 + 256 * 8 + 256 * 5 * 2
    assert count_macs(conv_graph(), (1, 8, 8, 3)) == expected
    assert count_macs(conv_graph(), (2, 8, 8, 3)) == 2 * expected


@pytest.mark.parametrize("form", ["QOperator", "QDQ"])
def test_count_macs_of_an_int8_graph_equals_its_float_graph(form: str, tmp_path: Path):
    """QLinearConv / QLinearMatMul (QOperator) and Q/DQ around Conv (QDQ) do the same work."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            rng = np.random.default_rng(1)
            self.batches = iter([{"image": rng.random((1, 8, 8, 3), np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self.batches, None)

    onnx.save(conv_graph(), tmp_path / "fp32.onnx")
    quantize_static(
        tmp_path / "fp32.onnx", tmp_path / "int8.onnx", Images(), quant_format=QuantFormat[form]
    )
    int8 = onnx.load(tmp_path / "int8.onnx")
    if form == "QOperator":
        assert {"QLinearConv", "QLinearMatMul"} <= {n.op_type for n in int8.graph.node}
    assert count_macs(int8, (1, 8, 8, 3)) == count_macs(conv_graph(), (1, 8, 8, 3))


def test_boundary_convs_by_hand():
    assert boundary_convs(conv_graph()) == (["first"], ["up"])


def test_fp16_round_trip_restores_the_weights_the_fp16_graph_uses():
    fp32 = conv_graph()
    half = to_fp16(fp32)
    assert any(n.op_type == "Cast" for n in half.graph.node)
    back = to_fp32(half)
    assert not any(n.op_type == "Cast" for n in back.graph.node)
    got = {i.name: numpy_helper.to_array(i) for i in back.graph.initializer}
    for init in fp32.graph.initializer:
        original = numpy_helper.to_array(init)
        assert got[init.name].dtype == np.float32
        # tensors under 16 values stay float32 in the fp16 graph
        kept = original if original.size < 16 else original.astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(got[init.name], kept)
    assert to_fp32(fp32).SerializeToString() == fp32.SerializeToString()


def test_exported_unet_boundaries_and_macs(tiny_models_dir: Path):
    proto = onnx.load(tiny_models_dir / "tiny_unet.onnx")
    first, last = boundary_convs(proto)
    assert len(first) == 1 and len(last) == 1 and first != last
    macs = count_macs(proto, (1, 32, 32, 3))
    assert count_macs(proto, (1, 64, 64, 3)) == 4 * macs > 0


@pytest.mark.slow
def test_int8_export_from_a_run(tiny_run_dir: Path, tmp_path: Path, capsys):
    from export.__main__ import main

    out = tmp_path / "models"
    assert main([str(tiny_run_dir), "--out", str(out), "--precision", "int8"]) == 0
    assert "plain_unet_int8.onnx" in capsys.readouterr().out
    card = json.loads((out / "plain_unet_int8.json").read_text())
    assert card["precision"] == "int8"
    split = json.loads((tiny_run_dir / "split.json").read_text())
    train = {Path(s["image"]).stem for s in split["train"]}
    held_out = {Path(s["image"]).stem for s in split["val"] + split["test"]}
    assert card["calibration_images"] and set(card["calibration_images"]) <= train
    assert not set(card["calibration_images"]) & held_out
    q = card["quantization"]
    assert q["selection_split"] == "val" and q["speedup_over_fp32_batch1"] > 0
    assert q["speed_measured"]["cpu"] and q["speed_measured"]["onnxruntime"]
    # every form tried with all convolutions int8; the chosen one is the fastest holding Dice
    by_form = [c for c in q["candidates"] if not c["float_nodes"]]
    assert {c["form"] for c in by_form} == {
        "QDQ/uint8",
        "QDQ/int8",
        "QOperator/uint8",
        "QOperator/int8",
    }
    holding = [c for c in by_form if card["fp32_val_dice"] - c["val_dice"] <= 0.003]
    if holding and not q["float_nodes"]:
        fastest = max(holding, key=lambda c: c["speedup_over_fp32"])
        assert f"{q['format']}/{q['activations']}" == fastest["form"]
    assert card["fp32_test_dice"] - card["test_metrics"]["dice"] <= 0.003
    model = onnx.load(out / "plain_unet_int8.onnx")
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert ("QLinearConv" in ops) == (q["format"] == "QOperator")
    int8 = [i for i in model.graph.initializer if i.data_type == TensorProto.INT8]
    assert int8  # the weights are stored as int8
    assert Engine(out / "plain_unet_int8.onnx").predict(np.zeros((40, 40, 3), np.uint8)).mask.shape


@pytest.mark.slow
def test_int8_dice_guard_refuses_and_writes_nothing(tiny_run_dir: Path, tmp_path: Path, capsys):
    import export.precision
    from export.__main__ import main

    out = tmp_path / "models"
    tolerance = export.precision.DICE_TOLERANCE
    export.precision.DICE_TOLERANCE = -1.0  # any int8 model now "loses" Dice
    try:
        assert main([str(tiny_run_dir), "--out", str(out), "--precision", "int8"]) == 2
    finally:
        export.precision.DICE_TOLERANCE = tolerance
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: int8 loses") and "nothing written" in err
    assert not out.exists()


@pytest.mark.slow
def test_int8_from_a_shipped_model(tiny_models_dir: Path, tiny_dataset_dir: Path, tmp_path: Path):
    from export.quantize import main

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    half = to_fp16(onnx.load(tiny_models_dir / "tiny_unet.onnx"))
    onnx.save(half, shipped / "tiny.onnx")
    card = json.loads((tiny_models_dir / "tiny_unet.json").read_text())
    stats = {"mean": [0.5], "threshold": 2.0}  # the training images' statistics travel along
    source = card | {"name": "tiny", "precision": "fp16", "image_stats": stats}
    (shipped / "tiny.json").write_text(json.dumps(source))
    args = [str(shipped / "tiny.onnx"), "--data", str(tiny_dataset_dir), "--activations", "uint8"]
    assert main(args) == 0
    out = json.loads((shipped / "tiny_int8.json").read_text())
    assert out["precision"] == "int8" and out["derived_from"] == "tiny.onnx (fp16)"
    assert out["quantization"]["activations"] == "uint8"
    tried = {c["form"] for c in out["quantization"]["candidates"]}
    assert tried == {"QDQ/uint8", "QOperator/uint8"}  # --activations narrows the forms
    assert out["image_stats"] == stats
    model = onnx.load(shipped / "tiny_int8.onnx")
    points = {i.data_type for i in model.graph.initializer if i.name.endswith("zero_point")}
    assert TensorProto.UINT8 in points and TensorProto.INT8 in points  # activations, weights
    assert not (shipped / "tiny_int8.history.csv").exists()
    _, samples = find_samples(tiny_dataset_dir)
    train = {s.name for s in make_split(samples, (0.6, 0.2, 0.2), 0)["train"]}
    assert set(out["calibration_images"]) <= train
    assert out["test_metrics"]["n_images"] == card["test_metrics"]["n_images"]
    assert "fp16_test_dice" not in out and "parity_max_abs_diff" not in out


def test_shipped_model_with_other_data_is_refused(
    tiny_models_dir: Path, tmp_path: Path, capsys, disk_image
):
    from PIL import Image

    from export.quantize import main

    data = tmp_path / "data"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    for i in range(30):  # 30 images: a test split of 6, the card says 2
        image, mask = disk_image(32, 32, [(16, 16, 6)], seed=i)
        Image.fromarray(image).save(data / "images" / f"i{i}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(data / "masks" / f"i{i}.png")
    model = tiny_models_dir / "tiny_unet.onnx"
    assert main([str(model), "--data", str(data), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "re-created test split has 6 images, the card 2" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def nuclei_data(data: Path) -> Path:
    """15 images of 4 disks each in the DSB layout (one mask file per nucleus)."""
    from PIL import Image
    from synthetic_images import disk_labels

    for i in range(15):
        image, labels = disk_labels(64, 80, seed=i, n=4)
        folder = data / f"img{i:02d}"
        (folder / "images").mkdir(parents=True)
        (folder / "masks").mkdir()
        Image.fromarray(image).save(folder / "images" / f"img{i:02d}.png")
        for j in range(1, int(labels.max()) + 1):
            mask = ((labels == j) * 255).astype(np.uint8)
            Image.fromarray(mask).save(folder / "masks" / f"m{j}.png")
    return data


def shipped_nuclei_model(folder: Path) -> Path:
    """The hand-made instance model with the split a shipped card records."""
    from handmade_models import write_nuclei_model

    folder.mkdir()
    model = write_nuclei_model(folder)
    card = json.loads(model.with_suffix(".json").read_text())
    card |= {"split": "0.6,0.2,0.2", "seed": 0, "postprocess": {"keep_largest": False}}
    model.with_suffix(".json").write_text(json.dumps(card))
    return model


def test_int8_of_an_instance_model_is_chosen_and_guarded_by_val_dsb_score(tmp_path: Path):
    from export.quantize import main

    data = nuclei_data(tmp_path / "stage1_train")
    shipped = shipped_nuclei_model(tmp_path / "shipped").parent
    assert main([str(shipped / "nuclei.onnx"), "--data", str(data)]) == 0
    out = json.loads((shipped / "nuclei_int8.json").read_text())
    assert out["fp32_val_dsb_score"] > 0.5  # the disks are found as nuclei
    assert out["fp32_val_dsb_score"] - out["val_dsb_score"] <= 0.003
    assert out["fp32_val_dice"] - out["val_dice"] <= 0.003
    candidates = out["quantization"]["candidates"]
    assert len(candidates) >= 4 and all("val_dsb_score" in c for c in candidates)
    assert "dsb_score" in out["test_metrics"]


def test_an_instance_int8_losing_val_scores_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    import export.precision
    from export.quantize import main

    monkeypatch.setattr(export.precision, "DICE_TOLERANCE", -1.0)  # any result is a loss
    data = nuclei_data(tmp_path / "stage1_train")
    model = shipped_nuclei_model(tmp_path / "shipped")
    assert main([str(model), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: int8 loses validation dice") and "dsb_score" in err
    assert not model.with_name("nuclei_int8.onnx").exists()
