"""segcore.data.stain: HED jitter of colour-stained images only; bright-field inversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segcore.data.augment import AugmentConfig, augment_intensity
from segcore.data.stain import jitter_hed, stain_jitter
from segcore.inference.preprocess import load_image
from segcore.kinds import image_kind, invert_brightfield

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "dsb" / "stage1_train"


def _sample(prefix: str) -> np.ndarray:
    (folder,) = [d for d in SAMPLES.iterdir() if d.name.startswith(prefix)]
    return load_image(folder / "images" / f"{folder.name}.png")


def test_jitter_changes_an_he_image_and_keeps_it_stained():
    he = _sample("853a4c67").astype(np.float32) / 255  # a bundled H&E crop
    out = jitter_hed(he, np.random.default_rng(0), 0.05)
    assert out.dtype == np.float32 and out.shape == he.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.abs(out - he).mean() > 1e-3  # the colours moved
    assert np.abs(out - he).mean() < 0.1  # by a little
    assert image_kind((out * 255).astype(np.uint8)) == "he"


def test_zero_strength_is_the_identity_up_to_rounding():
    he = _sample("853a4c67").astype(np.float32) / 255
    out = jitter_hed(he, np.random.default_rng(0), 0.0)
    np.testing.assert_allclose(out, he, atol=1 / 255 + 1e-5)  # black is floored at 1/255


def test_batch_jitter_leaves_fluorescence_alone():
    fluo = _sample("df5cdd0e")[:64, :64].astype(np.float32) / 255
    he = _sample("853a4c67")[:64, :64].astype(np.float32) / 255
    x = np.stack([fluo, he])
    out = stain_jitter(x.copy(), np.random.default_rng(1), 0.05)
    np.testing.assert_array_equal(out[0], fluo)
    assert np.abs(out[1] - he).mean() > 1e-3


def test_augment_config_applies_the_jitter_only_when_set():
    he = _sample("853a4c67")[:64, :64].astype(np.float32)[None] / 255
    plain = AugmentConfig(brightness=0.0, contrast=0.0)
    np.testing.assert_array_equal(augment_intensity(he.copy(), np.random.default_rng(0), plain), he)
    jitter = AugmentConfig(brightness=0.0, contrast=0.0, stain_jitter=0.05)
    out = augment_intensity(he.copy(), np.random.default_rng(0), jitter)
    assert np.abs(out - he).mean() > 1e-3


@pytest.mark.parametrize("prefix", ["df5cdd0e", "853a4c67"])
def test_only_brightfield_images_are_inverted(prefix):
    image = _sample(prefix)
    np.testing.assert_array_equal(invert_brightfield(image), image)
    brightfield = 255 - _sample("df5cdd0e")  # dark nuclei on a light grey field
    inverted = invert_brightfield(brightfield)
    np.testing.assert_array_equal(inverted, _sample("df5cdd0e"))
    assert image_kind(inverted) == "fluorescence"
