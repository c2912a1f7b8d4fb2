"""Every registered architecture takes the instance head: K = len(target_channels()) outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from segcore.inference.instances import target_channels
from segcore.models import ARCHITECTURES, build, main_output_model
from segcore.training.losses import get_instance_loss
from segcore.training.metrics import get_metrics

K = len(target_channels())


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_instance_head_keeps_main_output_last(arch: str):
    keras.utils.set_random_seed(0)
    model = build(arch, base_filters=4, depth=3, out_channels=K)
    assert main_output_model(model).output.shape[-1] == K
    groups = model.output.shape[-1] // K  # UNet++ with deep supervision: side groups first
    assert model.output.shape[-1] == groups * K


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHITECTURES))
def test_instance_head_trains(arch: str):
    keras.utils.set_random_seed(0)
    model = build(arch, base_filters=4, depth=3, out_channels=K)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=get_instance_loss("bce_dice", K),
        metrics=get_metrics(),
        run_eagerly=True,  # one step: tracing the graph would take 5-15 s per architecture
    )
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    y = np.zeros((2, 32, 32, K), np.float32)
    y[:, 8:24, 8:24, 1] = 1.0  # foreground (last)
    y[:, 8:24, 8, 0] = 1.0  # a boundary line
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"]) and 0.0 <= logs["dice"] <= 1.0


def test_instance_loss_scores_each_channel():
    loss = get_instance_loss("bce", K)
    y = np.zeros((1, 4, 4, K), np.float32)
    y[..., 1] = 1.0
    perfect = np.clip(y, 1e-3, 1 - 1e-3)
    wrong_boundary = perfect.copy()
    wrong_boundary[..., 0] = 1 - 1e-3
    assert float(loss(y, perfect)[0]) < 0.01
    assert float(loss(y, wrong_boundary)[0]) > 1.0  # the boundary channel counts too


def test_unknown_loss_name():
    with pytest.raises(ValueError, match="unknown loss"):
        get_instance_loss("nope", K)
