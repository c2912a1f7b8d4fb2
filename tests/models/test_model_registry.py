"""The architecture registry: names, defaults, errors and the main-output helper."""

from __future__ import annotations

import keras
import pytest

from segcore.models import ARCHITECTURES, build, defaults, main_output_model


@pytest.fixture(autouse=True)
def _clean_keras():
    """Drop Keras global state after each test."""
    yield
    keras.backend.clear_session()


def test_registry_names():
    assert set(ARCHITECTURES) == {"unet", "unet_bn", "improved_unet", "unetpp", "attention_unet"}


@pytest.mark.parametrize("name", ["unknown", "UNet", ""])
def test_unknown_name_raises_with_choices(name):
    with pytest.raises(ValueError, match="unet_bn"):
        build(name)
    with pytest.raises(ValueError, match="attention_unet"):
        defaults(name)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_defaults_share_common_keywords(name):
    got = defaults(name)
    assert {"channels", "base_filters", "depth", "dropout", "input_size"} <= set(got)
    assert got["channels"] == 3 and got["depth"] == 4 and got["input_size"] is None


def test_default_filters_and_supervision():
    assert defaults("unet")["base_filters"] == 64
    assert defaults("unet_bn")["base_filters"] == 64
    assert defaults("improved_unet")["base_filters"] == 16
    assert defaults("unetpp")["deep_supervision"] is True


def test_unknown_keyword_raises():
    with pytest.raises(TypeError):
        build("unet", deep_supervision=True)


def test_main_output_model_is_identity_for_single_output():
    model = build("unet", base_filters=4, depth=2)
    assert main_output_model(model) is model


def test_deep_supervision_output_layout():
    model = build("unetpp", base_filters=4, depth=3)
    assert model.output.shape[-1] == 3
    assert model.layers[-1].name == "deep_supervision"
    assert [layer.name for layer in model.layers if layer.name.startswith("side_")] == [
        "side_1",
        "side_2",
    ]
