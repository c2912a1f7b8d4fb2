"""segcore.kinds: the image-kind rule on the bundled DSB samples and made images; per-kind means."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from segcore.inference.preprocess import load_image
from segcore.kinds import image_kind, kind_statistics, reports_kinds, scores_by_kind

DSB_SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "dsb" / "stage1_train"
#: The bundled samples' kinds, set by looking at each image (no bright-field image is bundled).
SAMPLE_KINDS = {
    "12f89395": "fluorescence",
    "24a20f2a": "he",
    "309ba76b": "fluorescence",
    "5d75a639": "he",
    "853a4c67": "he",
    "8d29c5a0": "fluorescence",
    "a31deaf0": "he",
    "ac782d2c": "fluorescence",
    "ac8169a0": "fluorescence",
    "c75139ef": "fluorescence",
    "df5cdd0e": "fluorescence",
    "e1bcb583": "fluorescence",
}


def _sample(prefix: str) -> np.ndarray:
    (folder,) = [d for d in DSB_SAMPLES.iterdir() if d.name.startswith(prefix)]
    return load_image(folder / "images" / f"{folder.name}.png")


@pytest.mark.parametrize(("prefix", "kind"), sorted(SAMPLE_KINDS.items()))
def test_bundled_samples_get_their_kind(prefix, kind):
    assert image_kind(_sample(prefix)) == kind


def test_every_bundled_sample_is_listed():
    assert sorted(d.name[:8] for d in DSB_SAMPLES.iterdir()) == sorted(SAMPLE_KINDS)


def test_inverted_fluorescence_reads_as_brightfield():
    # dark nuclei on a light grey field: what a bright-field image looks like
    image = 255 - _sample("df5cdd0e")
    assert image_kind(image) == "brightfield"
    assert image_kind(image[..., 0]) == "brightfield"  # a 2-D grey image as well


def test_colour_of_a_light_field_decides_he():
    grey = np.full((40, 40, 3), 220, np.uint8)
    assert image_kind(grey) == "brightfield"
    stained = grey.copy()
    stained[..., 1] = 150  # purple-pink: red and blue above green
    assert image_kind(stained) == "he"
    background, colour = kind_statistics(stained)
    assert background > 0.3 and colour == pytest.approx(70 / 255, abs=1e-6)


def test_coloured_fluorescence_stays_fluorescence():
    image = np.zeros((40, 40, 3), np.uint8)
    image[10:20, 10:20, 1] = 255  # a green dye on a dark field
    assert image_kind(image) == "fluorescence"


def test_scores_by_kind_means_per_kind_and_overall():
    rows = [{"dice": 0.9, "f1": 1.0}, {"dice": 0.5, "f1": 0.0}, {"dice": 0.7, "f1": 0.5}]
    out = scores_by_kind(rows, ["fluorescence", "he", "fluorescence"], ["dice", "f1"])
    assert set(out) == {"all", "fluorescence", "he"}  # no bright-field image: no entry
    assert out["all"] == pytest.approx({"n_images": 3, "dice": 0.7, "f1": 0.5})
    assert out["fluorescence"] == pytest.approx({"n_images": 2, "dice": 0.8, "f1": 0.75})
    assert out["he"] == pytest.approx({"n_images": 1, "dice": 0.5, "f1": 0.0})
    assert math.isnan(scores_by_kind(rows, ["he"] * 3, ["missing"])["he"]["missing"])
    with pytest.raises(ValueError, match="2 kinds for 3"):
        scores_by_kind(rows, ["he", "he"], ["dice"])


def test_lesion_photos_report_no_kinds():
    assert not reports_kinds("isic")
    assert reports_kinds("dsb") and reports_kinds("plain")


def test_engine_inverts_brightfield_images_when_its_card_says_so(tmp_path):
    import json

    from handmade_models import save_conv1x1_sigmoid_model

    from segcore.inference.engine import Engine
    from segcore.kinds import invert_brightfield

    model = save_conv1x1_sigmoid_model(tmp_path / "m.onnx", 3, [1.0, 1.0, 1.0], [-1.5])
    card = {"name": "m", "dataset": "dsb", "input_size": 32, "channels": 3, "threshold": 0.5}
    model.with_suffix(".json").write_text(json.dumps(card))
    fluorescence = _sample("df5cdd0e")[:64, :64]
    brightfield = 255 - fluorescence
    plain = Engine(model)
    as_input = fluorescence / np.float32(255.0)
    np.testing.assert_allclose(plain.model_input(plain.load(brightfield)), 1 - as_input, atol=1e-6)
    model.with_suffix(".json").write_text(json.dumps({**card, "invert_brightfield": True}))
    inverting = Engine(model)
    for image in (brightfield, fluorescence):
        np.testing.assert_allclose(
            inverting.model_input(inverting.load(image)), as_input, atol=1e-6
        )
    # the prediction of the bright-field image is the fluorescence image's
    np.testing.assert_array_equal(
        inverting.predict(brightfield).mask, plain.predict(invert_brightfield(brightfield)).mask
    )
    assert not np.array_equal(plain.predict(brightfield).mask, inverting.predict(brightfield).mask)


def test_invert_brightfield_all_in_place_and_the_training_flag():
    from segcore.commands.train import parse_args
    from segcore.kinds import invert_brightfield_all

    fluorescence = _sample("df5cdd0e")[:32, :32]
    batch = np.stack([255 - fluorescence, fluorescence])
    listed = list(batch.copy())
    invert_brightfield_all(batch)
    invert_brightfield_all(listed)
    np.testing.assert_array_equal(batch[0], fluorescence)
    np.testing.assert_array_equal(batch[1], fluorescence)
    np.testing.assert_array_equal(listed[0], fluorescence)
    assert parse_args(["--data", "d", "--invert-brightfield"])[0].invert_brightfield is True
    assert parse_args(["--data", "d"])[0].invert_brightfield is False
