"""Shared test base that every registered architecture passes (tiny configs, CPU-fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np
import pytest

from segcore.models import ARCHITECTURES, build, main_output_model
from segcore.training.losses import get_loss


@dataclass(frozen=True)
class Case:
    """One tiny architecture configuration and what it must produce."""

    arch: str
    params: int  # pins the architecture: update only for an intended change
    k: int = 1  # output channels
    kwargs: dict = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return self.kwargs.get("channels", 3)

    def build(self, **overrides) -> keras.Model:
        return build(self.arch, **{"base_filters": 4, "depth": 3, **self.kwargs, **overrides})


CASES = {
    "unet": Case("unet", 30365),
    "unet_bn-gray": Case("unet_bn", 30821, kwargs={"channels": 1}),
    "improved_unet": Case("improved_unet", 50199),
    "unetpp-ds": Case("unetpp", 35415, k=3, kwargs={"deep_supervision": True}),
    "unetpp": Case("unetpp", 35405, kwargs={"deep_supervision": False}),
    "attention_unet": Case("attention_unet", 31428),
}


@pytest.fixture(params=list(CASES.values()), ids=list(CASES))
def case(request) -> Case:
    """Each architecture case in turn."""
    return request.param


@pytest.fixture(scope="module", params=list(CASES.values()), ids=list(CASES))
def built(request) -> tuple[Case, keras.Model]:
    """Each case with its model, built once for the read-only tests below."""
    keras.utils.set_random_seed(0)
    yield request.param, request.param.build()
    keras.backend.clear_session()


@pytest.fixture(autouse=True)
def _restore_keras():
    """Seed Keras and restore the global dtype policy after each test."""
    keras.utils.set_random_seed(0)
    yield
    keras.mixed_precision.set_global_policy("float32")


def _batch(n: int, h: int, w: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random image batch and a binary mask that depends on it."""
    rng = np.random.default_rng(0)
    x = rng.random((n, h, w, channels), dtype=np.float32)
    y = (x.mean(axis=-1, keepdims=True) > 0.5).astype(np.float32)
    return x, y


def _predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Inference-mode forward pass as numpy (eager: faster than `predict` for tiny models)."""
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_cases_cover_registry():
    assert {case.arch for case in CASES.values()} == set(ARCHITECTURES)


def test_known_parameter_count(built):
    case, model = built
    assert model.count_params() == case.params
    assert model.get_layer("mask").dtype_policy.name == "float32"


@pytest.mark.parametrize("size", [(32, 32), (64, 48)])
def test_forward_any_size(built, size):
    case, model = built
    x, _ = _batch(2, *size, case.channels)
    y = _predict(model, x)
    assert y.shape == (2, *size, case.k)
    assert y.dtype == np.float32
    assert np.all((y >= 0.0) & (y <= 1.0))


def test_save_load_round_trip(built, tmp_path: Path):
    case, model = built
    path = tmp_path / f"{case.arch}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    x, _ = _batch(2, 32, 32, case.channels)
    np.testing.assert_allclose(_predict(loaded, x), _predict(model, x), rtol=0, atol=1e-6)


def test_main_output_is_last_channel(built):
    case, model = built
    main = main_output_model(model)
    assert len(main.outputs) == 1
    x, _ = _batch(2, 32, 32, case.channels)
    mask = _predict(main, x)
    assert mask.shape == (2, 32, 32, 1)
    np.testing.assert_allclose(mask, _predict(model, x)[..., -1:], rtol=0, atol=1e-6)


def test_fixed_input_size(case):
    model = case.build(input_size=32)
    assert tuple(model.input.shape) == (None, 32, 32, case.channels)
    assert tuple(model.output.shape) == (None, 32, 32, case.k)


def test_mixed_precision_output_is_float32(case):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = case.build()
    assert model.output.dtype == "float32"
    x, _ = _batch(1, 32, 32, case.channels)
    y = _predict(model, x)
    assert y.dtype == np.float32
    assert y.shape == (1, 32, 32, case.k)


@pytest.mark.slow
def test_training_lowers_loss(case):
    model = case.build(depth=2)
    # Eager: tracing the train and test functions costs more than a few tiny steps.
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2), loss=get_loss("bce_dice"), run_eagerly=True
    )
    x, y = _batch(4, 32, 32, case.channels)
    before = model.evaluate(x, y, verbose=0)
    for _ in range(3):
        model.train_on_batch(x, y)
    assert model.evaluate(x, y, verbose=0) < before
