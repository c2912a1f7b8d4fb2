"""``segcore.modelfit``: Automatic picks by the image's kind and each card's own statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from synthetic_images import fluorescence, skin_photos

from bench.auto_routing import SYNTHETIC_KINDS, non_target_images
from bench.nuclei_sources import default_out, source_name
from segcore.data.imagestats import training_stats
from segcore.kinds import LESION, image_kind, training_kind
from segcore.modelfit import Fit, card_kinds, kind_of, measure_fit, mismatch_line


def stained_tiles(n: int, seed: int = 3) -> list[np.ndarray]:
    """Pink tissue with many small purple nuclei, like H&E tiles."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:96, :96]
    out = []
    for _ in range(n):
        image = np.array([225, 160, 200]) + rng.normal(0, 10, (96, 96, 3))
        for cy, cx in rng.integers(3, 93, size=(40, 2)):
            image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 6] = [90, 50, 140] + rng.normal(0, 8, 3)
        out.append(image.clip(0, 255).astype(np.uint8))
    return out


def card(dataset: str, images: list[np.ndarray], dice: float = 0.8) -> dict:
    """A synthetic model card: statistics and kinds of its training images."""
    stats = training_stats(images, "synthetic", dataset)
    return {
        "dataset": dataset,
        "image_stats": stats,
        "kinds": list(stats["kinds"]),
        "test_metrics": {"dice": dice},
    }


def test_cards_record_the_kinds_of_their_training_images():
    lesions = card("isic", skin_photos(40))
    nuclei = card("dsb+monuseg", fluorescence(30) + stained_tiles(30))
    assert card_kinds(lesions) == (LESION,)
    assert card_kinds(nuclei) == ("fluorescence", "he")
    assert nuclei["image_stats"]["kinds"] == {"fluorescence": 30, "he": 30}
    assert kind_of(lesions) == "skin-lesion photos"
    assert kind_of(nuclei) == "microscopy images of cell nuclei"


def test_a_card_without_kinds_falls_back_on_its_family():
    assert card_kinds({"dataset": "isic"}) == (LESION,)
    assert card_kinds({"dataset": "dsb"}) == ("fluorescence", "brightfield", "he")
    assert card_kinds({"dataset": "isic", "kinds": ["he"]}) == ("he",)  # the card wins


def test_best_takes_the_nearest_model_the_image_lies_within():
    fit = Fit({"lesion": 0.9, "nuclei": 0.4}, "he", {"lesion": (LESION,), "nuclei": ("he",)})
    assert fit.best() == "nuclei"
    fit = Fit({"lesion": 0.3, "nuclei": 0.9}, "he", {"lesion": (LESION,), "nuclei": ("he",)})
    assert fit.best() == "lesion"


def test_outside_every_model_the_image_goes_to_its_kind_and_is_warned_about():
    # a broad lesion set is nearer than a narrow nuclei set: the kind decides, with a warning
    kinds = {"lesion": (LESION,), "nuclei": ("fluorescence", "he")}
    fit = Fit({"lesion": 1.2, "nuclei": 3.4}, "he", kinds)
    assert fit.best() == "nuclei"
    assert fit.mismatch("nuclei") == (True, None)
    cards = {"lesion": {"dataset": "isic"}, "nuclei": {"dataset": "dsb"}}
    assert "nor like any other model's" in (mismatch_line(fit, "nuclei", cards) or "")
    # no model of the image's kind: the nearest, warned about
    fit = Fit({"lesion": 1.2, "nuclei": 3.4}, "brightfield", {**kinds, "nuclei": ("he",)})
    assert fit.best() == "lesion" and fit.mismatch("lesion")[0]


def test_equally_near_models_keep_the_order_given():
    fit = Fit({"a": 0.50, "b": 0.49, "c": 0.2}, "he", {"a": ("he",), "b": ("he",), "c": ("x",)})
    assert fit.best() == "c"
    fit = Fit({"a": 0.50, "b": 0.49}, "he", {"a": ("he",), "b": ("he",)})
    assert fit.best() == "a"  # within 5 %: the first (best test Dice) wins
    assert Fit({"a": None}).best() is None


def test_synthetic_cards_route_each_kind_of_image():
    cards = {
        "lesions": card("isic", skin_photos(60), dice=0.9),
        "nuclei": card("dsb", fluorescence(40) + stained_tiles(40)),
    }
    for image in skin_photos(3, seed=11):
        assert measure_fit(image, cards).best() == "lesions"
    for image in fluorescence(3, seed=12) + stained_tiles(3, seed=13):
        fit = measure_fit(image, cards)
        assert fit.best() == "nuclei" and not fit.mismatch("nuclei")[0]


def test_non_target_images_cover_every_kind_and_are_seeded():
    first = list(non_target_images(2, size=96))
    assert [k for k, _ in first] == [k for k in SYNTHETIC_KINDS for _ in range(2)]
    assert all(im.dtype == np.uint8 and im.shape == (96, 96, 3) for _, im in first)
    again = list(non_target_images(2, size=96))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, again, strict=True))


def test_dark_stained_tissue_is_he_and_coloured_fluorescence_stays_fluorescence():
    dark_tissue = np.zeros((40, 40, 3), np.uint8) + np.array([90, 40, 80], np.uint8)
    assert image_kind(dark_tissue) == "he"
    dapi = np.zeros((40, 40, 3), np.uint8)
    dapi[5:15, 5:15] = [0, 0, 220]  # blue nuclei on black
    assert image_kind(dapi) == "fluorescence"
    assert training_kind(dark_tissue, "isic") == LESION
    assert training_kind(dapi, "dsb") == "fluorescence"


def test_cross_source_names():
    assert source_name(Path("/x/dsb2018/stage1_train")) == "dsb2018"
    assert source_name(Path("/x/monuseg2018")) == "monuseg2018"
    out = default_out("val", ["models/a.onnx", "auto"])
    assert out == Path("bench/results/nuclei_sources-val-a+auto.json")


def test_a_model_preferring_the_images_kind_wins_among_those_it_fits():
    both = {"general": 0.4, "specialist": 0.8, "far": 3.0}
    fit = Fit(both, "he", preferred={"specialist": ("he",)})
    assert fit.best() == "specialist"
    assert Fit(both, "fluorescence", preferred={"specialist": ("he",)}).best() == "general"
    outside = Fit({"general": 0.4, "specialist": 2.0}, "he", preferred={"specialist": ("he",)})
    assert outside.best() == "general"
