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
