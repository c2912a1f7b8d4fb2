"""ONNX graph edits and facts without TensorFlow: float16 weights and back, boundary convolutions,
multiply-add counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import numpy_helper

#: Operators whose multiply-adds `count_macs` counts (all of a U-Net's heavy work).
MAC_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
#: Quantized forms of `MAC_OPS` (onnxruntime's QOperator int8 models) and the input index of
#: their weight (convolutions) or left operand (matrix products): the same multiply-adds.
QUANTIZED_MAC_OPS = {"QLinearConv": 3, "ConvInteger": 1, "QLinearMatMul": 0, "MatMulInteger": 0}
FP16_SUFFIX = "__fp16"


def to_fp16(proto: onnx.ModelProto, min_elements: int = 16) -> onnx.ModelProto:
    """Half-size model: weights stored as float16, each cast back to float32 inside the graph.

    onnxruntime folds those casts into float32 constants when it loads the model, so the file is
    half the size while compute stays float32 (fast on every CPU; float16 compute is not).
    Tensors smaller than ``min_elements`` stay float32. `to_fp32` undoes it.
    """
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    casts, keep = [], []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or _size(init) < min_elements:
            keep.append(init)
            continue
        half = numpy_helper.from_array(
            numpy_helper.to_array(init).astype("float16"), init.name + FP16_SUFFIX
        )
        keep.append(half)
        casts.append(
            onnx.helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT)
        )
    _replace(graph, keep, casts + list(graph.node))
    onnx.checker.check_model(out)
    return out


def to_fp32(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The float32 graph of a `to_fp16` model: each float16 weight and its Cast become one float32
    weight (float16 -> float32 is exact, so these are the weights the fp16 model computes with).
    A graph without such casts comes back as an unchanged copy."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    graph = out.graph
    halves = {
        i.name: i
        for i in graph.initializer
        if i.data_type == onnx.TensorProto.FLOAT16 and i.name.endswith(FP16_SUFFIX)
    }
    restored, nodes = {}, []
    for node in graph.node:
        if (
            node.op_type == "Cast"
            and len(node.input) == 1
            and node.input[0] in halves
            and node.attribute[0].i == onnx.TensorProto.FLOAT
        ):
            array = numpy_helper.to_array(halves[node.input[0]]).astype(np.float32)
            restored[node.input[0]] = numpy_helper.from_array(array, node.output[0])
        else:
            nodes.append(node)
    keep = [restored.get(i.name, i) for i in graph.initializer]
    _replace(graph, keep, nodes)
    onnx.checker.check_model(out)
    return out


def boundary_convs(proto: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """Names of the first convolutions (reached from the input through no other convolution) and
    of the last ones (reaching the output through no other convolution)."""
    nodes = list(proto.graph.node)
    producers = {o: n for n in nodes for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in nodes:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    first = _nearest_convs(
        [i.name for i in proto.graph.input], lambda t: consumers.get(t, []), lambda n: n.output
    )
    last = _nearest_convs(
        [o.name for o in proto.graph.output],
        lambda t: [producers[t]] if t in producers else [],
        lambda n: n.input,
    )
    return first, last


def _nearest_convs(start: list[str], step, onward) -> list[str]:
    """Convolutions met first when walking the graph from tensors ``start``: ``step(tensor)``
    gives the next nodes, ``onward(node)`` the tensors to go on from when a node is no conv."""
    found, seen, stack = set(), set(), list(start)
    while stack:
        for node in step(stack.pop()):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type in ("Conv", "ConvTranspose"):
                found.add(node.name)
            else:
                stack.extend(onward(node))
    return sorted(found)


def count_macs(proto: onnx.ModelProto, shape: tuple[int, ...]) -> int:
    """Multiply-adds of one run of the graph's `MAC_OPS` nodes for an input of ``shape``.

    Shapes are inferred with the input fixed to ``shape``; a node whose output shape cannot be
    inferred raises ValueError (the count would be silently low).
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(to_fp32(proto))
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    for dim, value in zip(dims, shape, strict=True):
        dim.Clear()
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(fixed, data_prop=True).graph
    shapes = {
        v.name: [
            d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim
        ]
        for v in [*inferred.value_info, *inferred.input, *inferred.output]
    }
    weights = {i.name: list(i.dims) for i in inferred.initializer}
    total = 0
    for node in inferred.node:
        if node.op_type not in MAC_OPS and node.op_type not in QUANTIZED_MAC_OPS:
            continue
        found = shapes.get(node.output[0])
        if not found or None in found:
            raise ValueError(f"cannot infer the output shape of {node.op_type} {node.name!r}")
        out = _known(found, node.name)
        if node.op_type in ("QLinearConv", "ConvInteger"):
            w = node.input[QUANTIZED_MAC_OPS[node.op_type]]
            kernel = _known(weights.get(w) or shapes.get(w), node.name)
            total += int(np.prod(out)) * kernel[1] * int(np.prod(kernel[2:]))
        elif node.op_type in ("QLinearMatMul", "MatMulInteger"):
            a = node.input[0]
            total += int(np.prod(out)) * _known(shapes.get(a) or weights.get(a), node.name)[-1]
        elif node.op_type in ("Conv", "ConvTranspose"):
            kernel = _known(weights.get(node.input[1]) or shapes.get(node.input[1]), node.name)
            if node.op_type == "Conv":
                # weight (C_out, C_in / group, k...): each output value takes C_in / group * k...
                total += int(np.prod(out)) * kernel[1] * int(np.prod(kernel[2:]))
            else:
                # weight (C_in, C_out / group, k...): each input value feeds C_out / group * k...
                inp = _known(shapes[node.input[0]], node.name)
                total += int(np.prod(inp)) * kernel[1] * int(np.prod(kernel[2:]))
        else:
            a = _known(shapes.get(node.input[0]) or weights.get(node.input[0]), node.name)
            total += int(np.prod(out)) * a[-1]
    return total


def _replace(graph: onnx.GraphProto, initializers: list, nodes: list) -> None:
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.node[:]
    graph.node.extend(nodes)


def _size(init: onnx.TensorProto) -> int:
    return int(np.prod(init.dims, dtype=np.int64))


def _known(shape: Sequence[int | None] | None, node: str) -> list[int]:
    """A shape whose every dimension shape inference found (ValueError naming the node else)."""
    if shape is None or any(d is None for d in shape):
        raise ValueError(f"cannot infer the shapes around {node!r}")
    return [int(d) for d in shape if d is not None]
