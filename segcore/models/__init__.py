"""Registry of the U-Net family by name: build a model, read its defaults, pick its main output.

Every model takes an "image" input (NHWC, dynamic H/W unless `input_size` is given; H and W must
be divisible by 2**depth) and outputs sigmoid probabilities with K channels: the main prediction
is the float32 layer named "mask"; deep-supervision models put their side outputs before it.
Every builder takes ``out_channels`` (default 1): instance models (``--target instance``) use one
channel per `segcore.instances.target_channels`, the foreground last.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import keras

from segcore.models.attention_unet import build_attention_unet
from segcore.models.improved_unet import build_improved_unet
from segcore.models.unet import build_unet, build_unet_bn
from segcore.models.unetpp import build_unetpp

MASK_LAYER = "mask"

ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "unet": build_unet,
    "unet_bn": build_unet_bn,
    "improved_unet": build_improved_unet,
    "unetpp": build_unetpp,
    "attention_unet": build_attention_unet,
}


def _builder(name: str) -> Callable[..., keras.Model]:
    """The builder registered under `name`; ValueError listing the known names otherwise."""
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}"
        ) from None


def defaults(name: str) -> dict[str, Any]:
    """The keyword arguments `name`'s builder accepts, with their default values."""
    params = inspect.signature(_builder(name)).parameters.values()
    return {p.name: p.default for p in params}


def build(name: str, **kwargs: Any) -> keras.Model:
    """Build architecture `name` with `kwargs` overriding its `defaults`."""
    return _builder(name)(**kwargs)


def main_output_model(model: keras.Model) -> keras.Model:
    """A model whose single output is the "mask" layer (the model itself when it already is)."""
    mask = model.get_layer(MASK_LAYER).output
    if len(model.outputs) == 1 and model.outputs[0] is mask:
        return model
    return keras.Model(model.input, mask, name=f"{model.name}_main")


def load_main_model(path: str | os.PathLike) -> keras.Model:
    """Load a saved ``.keras`` model (compile=False) reduced to its main "mask" output.

    Keras raises many exception types for a file it refuses; callers turn them into one line.
    """
    return main_output_model(keras.saving.load_model(path, compile=False))


__all__ = [
    "ARCHITECTURES",
    "MASK_LAYER",
    "build",
    "defaults",
    "load_main_model",
    "main_output_model",
]
