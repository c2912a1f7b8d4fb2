"""The Gallery page in AppTest and its scoring: bundled samples, per-image Dice, sorting."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pagetools import SAMPLES, captions, metrics, problems, texts

from segcore.app.gallery import GalleryItem, mean_dice, sample_sets, score_samples, sort_items
from segcore.data import load_sample
from segcore.inference.engine import Engine
from segcore.scoring.scores import dice


def dice_in_captions(at) -> list[float]:
    """The Dice of every triptych, in page order."""
    return [float(c.split("Dice ")[1].split()[0]) for c in captions(at)]


@pytest.fixture
def gallery(bright_page):
    """The Gallery over the real bundled samples with the hand-made models."""
    return bright_page("gallery")


def test_gallery_picks_the_dataset_with_a_model_and_scores_every_sample(gallery):
    assert not problems(gallery)
    assert gallery.radio(key="gallery-dataset").value == "isic"
    count = len(sample_sets(SAMPLES)["isic"])
    assert metrics(gallery)["Samples"] == str(count)
    assert len(dice_in_captions(gallery)) == count


def test_gallery_sorting(gallery):
    worst_first = dice_in_captions(gallery)
    assert worst_first == sorted(worst_first)
    gallery.radio(key="gallery-order").set_value("best first").run()
    assert dice_in_captions(gallery) == sorted(worst_first, reverse=True)
    gallery.radio(key="gallery-order").set_value("name").run()
    names = [c.split(" · ")[0] for c in captions(gallery)]
    assert names == sorted(names)


def test_dataset_without_a_model_says_so(gallery):
    gallery.radio(key="gallery-dataset").set_value("dsb").run()
    assert not problems(gallery)
    assert "No shipped model was trained on dsb" in texts(gallery)


def test_no_samples_folder(app_env, bright_models_dir: Path, open_page):
    app_env(models=bright_models_dir)
    at = open_page("gallery")
    assert not problems(at)
    assert "No bundled samples" in texts(at)


def test_score_samples_matches_the_engine(bright_models_dir: Path):
    engine = Engine(bright_models_dir / "bright_gray.onnx")
    samples = sample_sets(SAMPLES)["isic"][:3]
    items, bad = score_samples(engine, samples)
    assert not bad and [it.name for it in items] == [s.name for s in samples]
    for item, sample in zip(items, samples, strict=True):
        image, truth = load_sample(sample)
        assert item.dice == pytest.approx(dice(truth, engine.predict(image).mask))
        assert item.picture.startswith(b"\x89PNG")
    assert mean_dice(items) == pytest.approx(np.mean([it.dice for it in items]))


def test_sort_items_orders_and_rejects_unknown_orders():
    items = [GalleryItem(n, d, d, b"") for n, d in (("b", 0.5), ("a", 0.9), ("c", 0.5))]
    assert [it.name for it in sort_items(items, "worst first")] == ["b", "c", "a"]
    assert [it.name for it in sort_items(items, "best first")] == ["a", "b", "c"]
    assert [it.name for it in sort_items(items, "name")] == ["a", "b", "c"]
    with pytest.raises(ValueError):
        sort_items(items, "random")
    assert np.isnan(mean_dice([]))


def test_gallery_opens_on_the_dataset_of_the_segment_pages_model(
    app_env, bright_models_dir: Path, tmp_path: Path, open_page
):
    models = tmp_path / "models"
    shutil.copytree(bright_models_dir, models)
    shutil.copy(models / "bright.onnx", models / "nuclei.onnx")
    card = json.loads((models / "bright.json").read_text())
    (models / "nuclei.json").write_text(json.dumps({**card, "name": "nuclei", "dataset": "dsb"}))
    app_env(models=models, samples=SAMPLES)
    at = open_page("segment")
    at.selectbox(key="segment-model").set_value("nuclei").run()
    at.switch_page("pages/gallery.py").run()
    assert not problems(at)
    assert at.radio(key="gallery-dataset").value == "dsb"
    at.radio(key="gallery-dataset").set_value("isic").run()
    at.switch_page("pages/segment.py").run()
    assert at.selectbox(key="segment-model").value == "bright_gray"  # the isic model
