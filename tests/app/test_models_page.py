"""The Models page in AppTest and the card helpers behind it."""

from __future__ import annotations

import json
from pathlib import Path

from pagetools import problems, warnings

from segcore.app.cards import card_facts, card_scores, score_text
from segcore.app.model_choice import default_model, list_models
from segcore.app.text import plain

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
    assert [s.value for s in at.subheader] == ["bright", plain("bright_gray")]  # shown as typed
    assert len(at.expander) == 2
    facts = at.dataframe[1].value  # the Training facts of the first card
    assert "not recorded in the card" in facts["value"].tolist()  # plain data, no source
    # the full card opens one level deep: a card drawn whole (~1000 JSON nodes each) doubled
    # the page's load in Chromium (11.5 -> 5.5 core-seconds with six shipped cards)
    assert [(j.proto.expanded, j.proto.max_expand_depth) for j in at.json] == [(True, 1)] * 2
    assert json.loads(at.json[0].value)["name"] == "bright"


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
    assert facts["Input"] == "grayscale, resized to 128x128"
    assert facts["Parameters"] == "1,234,567"
    assert facts["ONNX size"] == "4.90 MB"
    assert facts["Training time"] == "10.0 min"
    assert facts["Epochs"] == "20 (best 17)"
    assert "Loss" not in facts
    assert facts["Image check"] == "statistics of 1,600 training images"
    assert card_facts({"input_size": 32, "channels": 3})["Training"] == [
        ("Training data", "not recorded in the card")
    ]
    assert card_scores(FULL_CARD) == {"dice": 0.81, "iou": 0.7}


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


def test_a_tiled_model_is_described_as_tiled_and_count_error_is_a_percentage():
    card = {"input_size": 192, "channels": 3, "mode": "tiled"}
    card["tile"] = {"size": 1024, "overlap": 0.125}
    facts = dict(card_facts(card)["Model"])
    assert facts["Input"] == ("RGB, any size, tiled 1024 px, 12% overlap")
    assert score_text("count_error", 0.081) == "8.1%" and score_text("dice", 0.9) == "0.900"


def test_card_strings_are_plain_text(app_env, bright_models_dir: Path, tmp_path: Path, open_page):
    (tmp_path / "m.onnx").write_bytes((bright_models_dir / "bright.onnx").read_bytes())
    card = json.loads((bright_models_dir / "bright.json").read_text())
    card |= {
        "name": "![x](http://host.invalid/a.png)",
        "arch": "[click](http://host.invalid)",
        "source": "<img src=http://host.invalid/b.png>",
        "source_url": "http://host.invalid/c",
    }
    (tmp_path / "m.json").write_text(json.dumps(card))
    app_env(models=tmp_path)
    at = open_page("models")
    assert not problems(at)
    shown = [s.value for s in at.subheader] + [m.value for m in at.markdown]
    bad = [t for t in shown if "](http" in t or "<img" in t.replace("\\<img", "") or "http://" in t]
    assert bad == []
    facts = at.dataframe[1].value["value"].tolist()  # the credit and address: plain cells
    assert card["source"] in facts and card["source_url"] in facts
