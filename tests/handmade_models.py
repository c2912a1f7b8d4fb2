"""Hand-made ONNX models for tests: tiny graphs with known outputs, no training needed."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper


def save_conv1x1_sigmoid_model(
    path: Path, channels: int, weights: list[float], bias: list[float]
) -> Path:
    """Save a hand-made NHWC ONNX model: sigmoid(1x1 conv) from ``channels`` inputs to
    ``len(bias)`` output channels (``weights`` row-major, outputs x inputs)."""
    outputs = len(bias)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, None, None, channels])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [None, None, None, outputs])
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
            helper.make_node("Conv", ["nchw", "w", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], ["prob"]),
            helper.make_node("Transpose", ["prob"], ["mask"], perm=[0, 2, 3, 1]),
        ],
        path.stem,
        [image],
        [mask],
        [
            helper.make_tensor("w", TensorProto.FLOAT, [outputs, channels, 1, 1], weights),
            helper.make_tensor("b", TensorProto.FLOAT, [outputs], bias),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def save_bright_instance_model(folder: Path, name: str = "bright_nuclei", tile: int = 64) -> Path:
    """A hand-made tiled instance model and its card: foreground = sigmoid(20 (mean - 0.5)),
    boundary = 0 everywhere, so every bright connected blob is one nucleus; wider-than-8-bit
    files are mapped so that their 99.8th percentile is 1."""
    import json

    path = save_conv1x1_sigmoid_model(
        folder / f"{name}.onnx", 3, [0.0, 0.0, 0.0] + [20.0 / 3] * 3, [-10.0, -10.0]
    )
    card = {
        "name": name,
        "arch": "handmade",
        "arch_kwargs": {"depth": 2},
        "dataset": "dsb",
        "input_size": tile,
        "channels": 3,
        "normalization": "divide_by_255",
        "threshold": 0.5,
        "mode": "tiled",
        "tile": {"size": tile, "overlap": 0.25},
        "intensity": {"rule": "percentile", "low": 1.0, "high": 99.8, "target_high": 1.0},
        "instances": {
            "foreground": 0.5,
            "boundary": 0.5,
            "min_marker_px": 4,
            "min_size_px": 8,
            "markers": "boundary",
        },
    }
    (folder / f"{name}.json").write_text(json.dumps(card))
    return path


def write_nuclei_model(folder: Path, name: str = "nuclei") -> Path:
    """Write a hand-made 2-channel instance model and its tiled card (depth 2): boundary =
    sigmoid(2 - 9 * mean), foreground = sigmoid(21 * mean - 8), so bright disks are nuclei."""
    import json

    path = save_conv1x1_sigmoid_model(
        folder / f"{name}.onnx", 3, [-3.0, -3.0, -3.0, 7.0, 7.0, 7.0], [2.0, -8.0]
    )
    card = {
        "name": name,
        "arch": "handmade",
        "arch_kwargs": {"depth": 2, "out_channels": 2},
        "dataset": "dsb",
        "input_size": 32,
        "channels": 3,
        "normalization": "divide_by_255",
        "threshold": 0.5,
        "mode": "tiled",
        "tile": {"size": 64, "overlap": 0.125},
        "target_channels": ["boundary", "foreground"],
        "instances": {"foreground": 0.5, "boundary": 0.4, "min_size_px": 4, "min_peak": 0.0},
        "opset": 17,
        "test_metrics": {"n_images": 3, "dice": 0.5},
    }
    (folder / f"{name}.json").write_text(json.dumps(card))
    return path
