"""segcore.data.imagestats: features, the training statistics in the card, distances, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic_images import fluorescence, skin_photos

from segcore.data.imagestats import (
    FEATURES,
    card_training_images,
    distance,
    fit_stats,
    image_features,
    main,
    training_stats,
    usable,
)


def test_features_are_finite_and_named():
    for image in (*skin_photos(2), *fluorescence(2), np.zeros((5, 7, 3), np.uint8)):
        f = image_features(image)
        assert f.shape == (len(FEATURES),) and np.isfinite(f).all()


def test_images_like_the_training_set_pass_and_others_do_not():
    stats = training_stats(skin_photos(80), "test")
    assert usable(stats) and stats["n_images"] == 80
    json.dumps(stats)  # goes into the card as it is
    alike = [distance(stats, im) for im in skin_photos(40, seed=5)]
    unlike = [distance(stats, im) for im in fluorescence(20)]
    assert np.mean(np.array(alike) > 1) <= 0.05
    assert min(unlike) > 1


def test_usable_rejects_other_versions_and_partial_entries():
    stats = fit_stats(np.random.default_rng(0).normal(size=(30, len(FEATURES))))
    assert usable(stats)
    assert not usable(None) and not usable({})
    assert not usable({**stats, "version": 99})
    assert not usable({k: v for k, v in stats.items() if k != "components"})
    with pytest.raises(ValueError):
        fit_stats(np.zeros((1, len(FEATURES))))


def test_command_fills_image_stats_from_the_cards_training_split(tmp_path: Path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for i, image in enumerate(skin_photos(20)):
        Image.fromarray(image).save(data / "images" / f"p{i:02d}.png")
        Image.fromarray(np.zeros((96, 96), np.uint8)).save(data / "masks" / f"p{i:02d}.png")
    card_path = tmp_path / "model.json"
    card_path.write_text(json.dumps({"name": "m", "split": "0.8,0.1,0.1", "seed": 3}))
    train = card_training_images(json.loads(card_path.read_text()), data)
    assert len(train) == 16
    assert main([str(card_path), "--data", str(data)]) == 0
    card = json.loads(card_path.read_text())
    assert card["name"] == "m" and usable(card["image_stats"])
    assert card["image_stats"]["n_images"] == 16
    assert main([str(tmp_path / "missing.json"), "--data", str(data)]) == 2
