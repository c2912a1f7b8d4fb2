"""Facts about the environment a run used: backend, device, library versions."""

from __future__ import annotations

import importlib.metadata
import platform

import keras

PACKAGES = ("keras", "tensorflow", "jax", "numpy", "pillow", "onnx", "onnxruntime", "tf2onnx")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape a run (missing ones left out)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        for dist in (name, f"{name}-gpu"):
            try:
                out[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def device_description() -> str:
    """The accelerator the current Keras backend computes on, e.g. 'NVIDIA H100 (jax)' or 'cpu'."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        dev = jax.devices()[0]
        return "cpu" if dev.platform == "cpu" else f"{dev.device_kind} ({dev.platform})"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"{details.get('device_name', 'GPU')} x{len(gpus)}"
    return f"cpu ({platform.processor() or platform.machine()})"
