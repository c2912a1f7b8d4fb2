"""Keras model -> ONNX graph (tf2onnx, opset 17, dynamic batch and size)."""

from __future__ import annotations

import os

# tf2onnx converts TensorFlow graphs: Keras must run on its TensorFlow backend (its default).
# Importing this module changes no setting; ``python -m export`` chooses the backend for its own
# process, and load_main_model says so when another backend is active.
import keras
import onnx
import tensorflow as tf
import tf2onnx

from export import ExportError
from segcore.models import load_main_model as load_saved_main_model  # registers custom layers

OPSET = 17
INPUT_NAME = "image"
OUTPUT_NAME = "mask"


def load_main_model(path: os.PathLike) -> keras.Model:
    """Load a run's ``best.keras`` (compile=False) reduced to its main "mask" output, float32."""
    if keras.backend.backend() != "tensorflow":
        raise ExportError(
            f"export needs the TensorFlow Keras backend, this process has {keras.backend.backend()}"
            " (run python -m export)"
        )
    try:
        model = load_saved_main_model(path)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ExportError(f"{path}: cannot load the Keras model ({exc})") from exc
    return float32_model(model)


class InstanceNormalization(keras.layers.Layer):
    """Instance norm with a two-pass variance: the export form of GroupNormalization(groups=-1).

    tf2onnx's graph for Keras' GroupNormalization loses precision on real images (output
    probabilities off by up to 8e-4); mean((x - mean)^2) converts faithfully (< 1e-5). Same
    weights (gamma, beta) and epsilon as the layer it replaces.
    """

    def __init__(self, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x):
        mean = keras.ops.mean(x, axis=(1, 2), keepdims=True)
        centered = x - mean
        var = keras.ops.mean(centered * centered, axis=(1, 2), keepdims=True)
        return centered * keras.ops.rsqrt(var + self.epsilon) * self.gamma + self.beta


def _is_instance_norm(layer: keras.layers.Layer) -> bool:
    if not isinstance(layer, keras.layers.GroupNormalization):
        return False
    cfg = layer.get_config()
    return cfg["groups"] in (-1, layer.input.shape[-1]) and cfg["center"] and cfg["scale"]


def float32_model(model: keras.Model) -> keras.Model:
    """A float32 copy (same weights) whose layers convert faithfully to ONNX, or the model itself.

    Layers computing in another dtype are cloned as float32; instance norms become
    `InstanceNormalization`.
    """
    if all(
        layer.dtype_policy.name == "float32" and not _is_instance_norm(layer)
        for layer in model.layers
    ):
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if _is_instance_norm(layer):
            return InstanceNormalization(layer.epsilon, name=layer.name, dtype="float32")
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float32"})

    copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def to_onnx(model: keras.Model, channels: int, size: int) -> tuple[onnx.ModelProto, bool]:
    """Convert to ONNX: input "image" (N, H, W, C float32), output "mask" probabilities.

    Height and width are dynamic when the model traces with unknown sizes; layers that cannot
    (Keras' bilinear UpSampling2D) get a graph fixed at ``size`` x ``size``, batch still dynamic.
    Returns (model, dynamic_size).
    """
    try:
        return _convert(model, (None, None, None, channels)), True
    except Exception:  # tracing errors come in many TensorFlow types
        pass
    try:
        return _convert(model, (None, size, size, channels)), False
    except Exception as exc:
        raise ExportError(
            f"tf2onnx cannot convert the model ({exc.__class__.__name__}: {exc})"
        ) from exc


def _convert(model: keras.Model, shape: tuple[int | None, ...]) -> onnx.ModelProto:
    spec = [tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    rename_output(proto, OUTPUT_NAME)
    onnx.checker.check_model(proto)
    return proto


def rename_output(proto: onnx.ModelProto, name: str) -> None:
    """Rename the graph's single output (and every reference to it) in place."""
    old = proto.graph.output[0].name
    if old == name:
        return
    for node in proto.graph.node:
        node.output[:] = [name if o == old else o for o in node.output]
        node.input[:] = [name if i == old else i for i in node.input]
    proto.graph.output[0].name = name
