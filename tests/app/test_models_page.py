"""The Models page in AppTest and the card helpers behind it."""

from __future__ import annotations

import json
from pathlib import Path

from pagetools import problems, texts, warnings

from segcore.app.cards import card_facts, card_scores, data_credit
from segcore.app.catalog import default_model, list_models

FULL_CARD = {
    "name": "isic_unet",
    "arch": "unet",
    "dataset": "isic256",
    "input_size": 128,
    "channels": 1,
    "threshold": 0.5,
    "params": 1234567,
    "onnx_bytes": 4_900_000,
    "train_seconds": 600.0,
    "epochs": 20,
    "best_epoch": 17,
    "test_metrics": {"dice": 0.81, "iou": 0.7, "n_images": 200},
    "source": "ISIC 2017 (CC BY-NC 4.0)",
    "source_url": "https://example.org",
    "image_stats": {"n_images": 1600},
}


def test_models_page_shows_every_card(app_env, bright_models_dir: Path, open_page):
    app_env(models=bright_models_dir)
    at = open_page("models")
    assert not problems(at)
    assert [s.value for s in at.subheader] == ["bright", "bright_gray"]
    assert len(at.expander) == 2
    assert "not recorded in the card" in texts(at)  # plain data, no source in the card


def test_models_page_skips_a_model_without_card(
    app_env, tmp_path: Path, bright_models_dir, open_page
):
    (tmp_path / "lone.onnx").write_bytes((bright_models_dir / "bright.onnx").read_bytes())
    (tmp_path / "ok.onnx").write_bytes((bright_models_dir / "bright.onnx").read_bytes())
    (tmp_path / "ok.json").write_text((bright_models_dir / "bright.json").read_text())
    app_env(models=tmp_path)
    at = open_page("models")
    assert not problems(at)
    assert any("lone.json" in w for w in warnings(at))
    assert [s.value for s in at.subheader] == ["bright"]


def test_card_facts_are_tolerant_and_readable():
    facts = {k: v for group in card_facts(FULL_CARD).values() for k, v in group}
    assert facts["Input"] == "128x128 grayscale"
    assert facts["Parameters"] == "1,234,567"
    assert facts["ONNX size"] == "4.90 MB"
    assert facts["Training time"] == "10.0 min"
    assert facts["Epochs"] == "20 (best 17)"
    assert "Loss" not in facts
    assert facts["Image check"] == "statistics of 1,600 training images"
    assert card_facts({"input_size": 32, "channels": 3})["Training"] == []
    assert card_scores(FULL_CARD) == {"dice": 0.81, "iou": 0.7}


def test_data_credit():
    assert data_credit(FULL_CARD) == ("ISIC 2017 (CC BY-NC 4.0)", "https://example.org")
    assert data_credit({}) == ("not recorded in the card", "")


def test_catalog_families_and_default(tmp_path: Path, bright_models_dir: Path):
    for name, dataset, score in (("a", "dsb256", 0.9), ("b", "isic256", 0.8), ("c", "isic", 0.85)):
        (tmp_path / f"{name}.onnx").write_bytes((bright_models_dir / "bright.onnx").read_bytes())
        card = {"input_size": 32, "channels": 3, "dataset": dataset}
        card["test_metrics"] = {"dice": score}
        (tmp_path / f"{name}.json").write_text(json.dumps(card))
    entries, bad = list_models(tmp_path)
    assert not bad
    assert [e.family for e in entries] == ["dsb", "isic", "isic"]
    assert entries[default_model(entries)].name == "a"
    assert entries[default_model(entries, "isic")].name == "c"
    assert entries[default_model(entries, "other")].name == "a"
    assert entries[1].label() == "b (isic256, ?, Dice 0.800)"
    assert list_models(tmp_path / "missing") == ([], [])
