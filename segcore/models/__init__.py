"""Registry of the U-Net family by name: build a model, read its defaults, pick its main output.

Every model takes an "image" input (NHWC, dynamic H/W unless `input_size` is given; H and W must
be divisible by 2**depth) and outputs sigmoid probabilities with K channels: the main prediction
is the float32 layer named "mask"; deep-supervision models put their side outputs before it.
Every builder takes ``out_channels`` (default 1): instance models (``--target instance``) use one
channel per `segcore.inference.instances.target_channels`, the foreground last.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

MASK_LAYER = "mask"

#: Architecture name -> (module, builder function). Builders are imported (with Keras) only when a
#: model is built, so the names are available to light code such as the training CLI's --help.
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "unet": ("segcore.models.unet", "build_unet"),
    "unet_bn": ("segcore.models.unet", "build_unet_bn"),
    "improved_unet": ("segcore.models.improved_unet", "build_improved_unet"),
    "unetpp": ("segcore.models.unetpp", "build_unetpp"),
    "attention_unet": ("segcore.models.attention_unet", "build_attention_unet"),
}


def _builder(name: str) -> Callable[..., keras.Model]:
    """The builder registered under `name`; ValueError listing the known names otherwise."""
    try:
        module, function = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}"
        ) from None
    return getattr(importlib.import_module(module), function)


def defaults(name: str) -> dict[str, Any]:
    """The keyword arguments `name`'s builder accepts, with their default values."""
    params = inspect.signature(_builder(name)).parameters.values()
    return {p.name: p.default for p in params}


def build(name: str, **kwargs: Any) -> keras.Model:
    """Build architecture `name` with `kwargs` overriding its `defaults`."""
    return _builder(name)(**kwargs)


def main_output_model(model: keras.Model) -> keras.Model:
    """A model whose single output is the "mask" layer (the model itself when it already is)."""
    import keras

    mask = model.get_layer(MASK_LAYER).output
    if len(model.outputs) == 1 and model.outputs[0] is mask:
        return model
    return keras.Model(model.input, mask, name=f"{model.name}_main")


def load_main_model(path: str | os.PathLike) -> keras.Model:
    """Load a saved ``.keras`` model (compile=False) reduced to its main "mask" output.

    Keras raises many exception types for a file it refuses; callers turn them into one line.
    """
    import keras

    return main_output_model(keras.saving.load_model(path, compile=False))


__all__ = [
    "ARCHITECTURES",
    "MASK_LAYER",
    "build",
    "defaults",
    "load_main_model",
    "main_output_model",
]
