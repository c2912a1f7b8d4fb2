"""int8 forms: what onnxruntime runs for each (kernels after optimisation), the interleaved
timing, the CPU facts, and the rule that picks the fastest form holding validation Dice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from test_export_precision import conv_graph

from export.int8_speed import FORMS, batch1_ms, cpu_facts, forms_for, kernels
from export.precision import DICE_TOLERANCE, fastest_holding, quantize


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """conv_graph as float32 and in every int8 form."""
    folder = tmp_path_factory.mktemp("int8")
    fp32 = conv_graph()
    rng = np.random.default_rng(0)
    calibration = [rng.random((16, 16, 3), dtype=np.float32) for _ in range(3)]
    files = {"fp32": folder / "fp32.onnx"}
    onnx.save(fp32, files["fp32"])
    for form in FORMS:
        path = folder / f"{form.format}_{form.activations}.onnx"
        files[form.label] = quantize(fp32, calibration, [], path, folder / "cache.json", form)
    return files


def test_kernels_tell_stored_format_and_integer_convolutions(quantized: dict[str, Path]):
    assert kernels(quantized["fp32"])["stored_format"] == "float"
    assert kernels(quantized["fp32"])["integer_convs"] == 0
    assert kernels(quantized["fp32"])["float_convs"] == 2  # Conv + ConvTranspose
    qdq, qop = kernels(quantized["QDQ/uint8"]), kernels(quantized["QOperator/uint8"])
    assert qdq["stored_format"] == "QDQ" and qop["stored_format"] == "QOperator"
    assert qop["stored_convs"]["QLinearConv"] >= 1
    for k in (qdq, qop):
        assert k["integer_convs"] >= 1  # the 3x3 Conv runs on integers
        assert sum(k["optimized_ops"].values()) > 0


def test_int8_forms_give_the_float_result_closely(quantized: dict[str, Path]):
    import onnxruntime as ort

    x = np.random.default_rng(1).random((1, 16, 16, 3), dtype=np.float32)
    out = {
        k: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"image": x})
        for k, p in quantized.items()
    }
    scale = np.abs(out["fp32"][0]).max()
    for form in FORMS:
        assert np.abs(out[form.label][0] - out["fp32"][0]).mean() < 0.02 * scale


def test_batch1_ms_times_every_model_interleaved(quantized: dict[str, Path]):
    x = np.zeros((1, 16, 16, 3), np.float32)
    timed = batch1_ms({"fp32": quantized["fp32"], "int8": quantized["QDQ/uint8"]}, x, 3)
    assert set(timed) == {"fp32", "int8"}
    for t in timed.values():
        assert 0 < t["median_ms"] <= t["p90_ms"]


def test_forms_for_narrows_the_forms_tried():
    assert forms_for("auto", "auto") == FORMS
    assert [f.label for f in forms_for("QDQ", "auto")] == ["QDQ/uint8", "QDQ/int8"]
    assert [f.label for f in forms_for("auto", "int8")] == ["QDQ/int8", "QOperator/int8"]
    assert [f.label for f in forms_for("QOperator", "uint8")] == ["QOperator/uint8"]


def test_cpu_facts_name_the_int8_flags():
    facts = cpu_facts()
    assert facts["cpu"] and facts["onnxruntime"]
    assert {"avx2", "avx512_vnni", "amx_int8"} <= set(facts["int8_flags"])


def test_fastest_form_holding_dice_wins_else_least_loss():
    slow_good = {"name": "a", "loss": 0.0, "speedup_over_fp32": 1.1}
    fast_good = {"name": "b", "loss": DICE_TOLERANCE / 2, "speedup_over_fp32": 1.6}
    fastest_bad = {"name": "c", "loss": DICE_TOLERANCE * 3, "speedup_over_fp32": 3.0}
    assert fastest_holding([slow_good, fast_good, fastest_bad])["name"] == "b"
    worse_bad = {"name": "d", "loss": DICE_TOLERANCE * 5, "speedup_over_fp32": 4.0}
    assert fastest_holding([worse_bad, fastest_bad])["name"] == "c"
