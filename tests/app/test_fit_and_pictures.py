"""segcore.app.fit (model fit and its warning), segcore.app.pictures and segcore.app.text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_images import fluorescence, skin_photos

from segcore.app.fit import Fit, measure_fit, mismatch_message
from segcore.app.model_choice import ModelEntry
from segcore.app.pictures import probability_picture
from segcore.app.text import plain
from segcore.card import ModelCard
from segcore.data.imagestats import training_stats
from segcore.inference.visualize import OUTLINE_DARK, OUTLINE_LIGHT, instance_overlay, overlay
from segcore.scoring.truth import resize_labels


def entry(name: str, dataset: str, stats: dict | None, dice: float = 0.9) -> ModelEntry:
    card = {"dataset": dataset, "input_size": 32, "channels": 3, "test_metrics": {"dice": dice}}
    if stats is not None:
        card["image_stats"] = stats
    return ModelEntry(name, Path(f"{name}.onnx"), ModelCard.from_json(card), None)


def test_a_microscopy_image_under_the_lesion_model_is_warned_about_and_redirected():
    lesions = entry("lesions", "isic", training_stats(skin_photos(60), dataset="isic"))
    nuclei = entry("nuclei", "dsb", training_stats(fluorescence(60)))
    plain_model = entry("mine", "plain", None)
    entries = [lesions, nuclei, plain_model]
    cells = measure_fit(fluorescence(1, seed=9)[0], entries)
    assert cells.best() == "nuclei" and cells.distances["mine"] is None
    text = mismatch_message(cells, lesions, entries)
    assert "does not look like the skin-lesion photos that lesions was trained on" in text
    assert "microscopy images of cell nuclei of nuclei" in text
    assert mismatch_message(cells, nuclei, entries) is None
    assert mismatch_message(cells, plain_model, entries) is None  # no statistics: no warning
    photo = measure_fit(skin_photos(1, seed=11)[0], entries)
    assert photo.best() == "lesions" and mismatch_message(photo, lesions, entries) is None


def test_a_clearly_better_model_is_named_even_inside_the_threshold():
    fit = Fit({"a": 0.8, "b": 0.2, "c": None})
    assert fit.mismatch("a") == (True, "b")
    assert Fit({"a": 0.8, "b": 0.5}).mismatch("a") == (False, None)
    assert Fit({"a": 3.0, "b": 2.0}).mismatch("a") == (True, None)  # nothing fits


def test_overlay_opacity_and_contrasting_outline():
    image = np.full((60, 60, 3), (200, 120, 200), np.uint8)  # a purple stain
    mask = np.zeros((60, 60), bool)
    mask[15:45, 15:45] = True
    clear = overlay(image, mask, opacity=0.0)
    assert (clear[30, 30] == image[30, 30]).all()  # opacity 0: the inside is untouched
    strong = overlay(image, mask, opacity=1.0)
    assert (strong[30, 30] == (255, 64, 64)).all()
    assert (clear[15, 30] == OUTLINE_DARK).all() and (clear[16, 30] == OUTLINE_LIGHT).all()
    truth = np.zeros_like(mask)
    truth[5:10, 5:10] = True
    assert (overlay(image, mask, truth=truth)[5, 7] == (0, 200, 90)).all()


def test_probability_and_instance_pictures():
    heat = probability_picture(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert heat.shape == (1, 3, 3) and heat[0, 0].sum() < heat[0, 2].sum()
    assert (probability_picture(np.array([[255]], np.uint8)) == heat[:, 2:]).all()
    labels = np.zeros((20, 20), np.int32)
    labels[2:8, 2:8], labels[10:18, 10:18] = 1, 2
    picture = instance_overlay(np.zeros((20, 20, 3), np.uint8), labels, opacity=1.0)
    assert tuple(picture[4, 4]) != tuple(picture[14, 14]) and picture[0, 0].sum() == 0
    assert resize_labels(labels, (10, 10)).shape == (10, 10)
    assert set(np.unique(resize_labels(labels, (10, 10)))) == {0, 1, 2}


def test_plain_escapes_markdown():
    assert plain("![t](http://host/x.png) a.jpg") == r"\!\[t\]\(http\:\/\/host\/x\.png\) a\.jpg"
    assert plain("<img src=x>") == r"\<img src\=x\>"
    assert plain("plain name 01") == "plain name 01"


def test_among_models_of_the_same_training_images_the_best_test_dice_is_suggested():
    stats = training_stats(fluorescence(60))
    lesions = entry("lesions", "isic", training_stats(skin_photos(60), dataset="isic"))
    weaker = entry("nuclei_objects", "dsb", stats, dice=0.91)
    stronger = entry("nuclei", "dsb", stats, dice=0.92)
    entries = [lesions, weaker, stronger]
    cells = measure_fit(fluorescence(1, seed=9)[0], entries)
    assert cells.best() == "nuclei"
    assert "of nuclei:" in mismatch_message(cells, lesions, entries)
    assert Fit({"a": 1.0, "b": 0.5, "c": 0.51}).best() == "b"
    assert Fit({"a": 0.5, "b": 0.3}).best() == "b"
