"""`segcore.card.ModelCard`: one reader with defaults, and a one-line ModelError naming the card
for every value the engine could not use safely."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from handmade_models import save_conv1x1_sigmoid_model

from segcore.app.model_choice import list_models
from segcore.card import ModelCard
from segcore.errors import ModelError
from segcore.inference.engine import Engine
from segcore.inference.postprocess import Postprocess

TILED = {
    "name": "nuclei",
    "input_size": 64,
    "channels": 3,
    "dataset": "dsb",
    "arch_kwargs": {"depth": 2},
    "mode": "tiled",
    "tile": {"size": 64, "overlap": 0.25},
    "instances": {"foreground": 0.6, "boundary": 0.3, "min_size_px": 8},
}


def write(folder: Path, card: dict, name: str = "m") -> Path:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(card))
    return path


def test_defaults_are_filled_in_one_place(tmp_path: Path):
    card = ModelCard.read(write(tmp_path, {"input_size": 32, "channels": 1, "dataset": "isic"}))
    assert (card.name, card.threshold, card.mode, card.depth, card.stride) == (
        "m",
        0.5,
        "resize",
        4,
        16,
    )
    assert card.postprocess == Postprocess.for_dataset("isic")
    assert card.family == "isic" and card.instances is None and card.tile is None
    assert card.ort_optimization == "extended" and card.outputs == 1


def test_a_tiled_instance_card(tmp_path: Path):
    card = ModelCard.read(write(tmp_path, TILED))
    assert card.tile.size == 64 and card.tile.overlap == 0.25 and card.stride == 4
    assert card.instances.foreground == 0.6 and card.instances.min_size_px == 8
    assert card.outputs == 2 and card.get("dataset") == "dsb" and card.raw == TILED


@pytest.mark.parametrize(
    "change, words",
    [
        ({"tile": {"size": 64, "overlap": 0.999}}, "tile overlap"),
        ({"tile": {"size": 66, "overlap": 0.25}}, "tile size"),
        ({"tile": None}, "tile size and overlap"),
        ({"instances": [1, 2]}, "instances must be an object"),
        ({"instances": {"foreground": 2}}, "foreground must be a number from 0 to 1"),
        ({"instances": {"min_size_px": -1}}, "min_size_px"),
        ({"instances": {"markers": "stars"}}, "instances.markers"),
        ({"postprocess": {"fill_holes": "yes"}}, "postprocess"),
        ({"arch_kwargs": "deep"}, "arch_kwargs"),
        ({"arch_kwargs": {"depth": 99}}, "depth"),
        ({"threshold": math.nan}, "threshold"),
        ({"input_size": 0}, "input_size"),
        ({"input_size": 66}, "input_size"),
        ({"channels": 2}, "channels"),
        ({"mode": "mosaic"}, "unknown mode"),
        ({"ort_optimization": "turbo"}, "ort_optimization"),
        ({"normalization": "zscore"}, "normalization"),
        ({"normalization_percentiles": [99, 1]}, "normalization_percentiles"),
        ({"normalization_percentiles": [1, math.inf]}, "normalization_percentiles"),
        ({"normalization_percentiles": "1-99"}, "normalization_percentiles"),
        ({"instances_by_kind": {"phase": {}}}, "unknown kind 'phase'"),
        ({"instances_by_kind": {"he": {"foreground": 7}}}, "foreground must be a number"),
        ({"instances_by_kind": {"he": 3}}, "instances_by_kind.he must be an object"),
    ],
)
def test_bad_values_are_one_line_naming_the_card(tmp_path: Path, change: dict, words: str):
    path = write(tmp_path, TILED | change)
    with pytest.raises(ModelError, match=words) as info:
        ModelCard.read(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_per_kind_decoding_lies_over_the_card_settings(tmp_path: Path):
    card = ModelCard.read(write(tmp_path, TILED | {"instances_by_kind": {"he": {"boundary": 0.2}}}))
    he = card.decoding_for("he")
    assert he.boundary == 0.2 and he.foreground == 0.6 and he.min_size_px == 8
    assert card.decoding_for("fluorescence") == card.instances == card.decoding_for(None)


def test_unreadable_cards(tmp_path: Path):
    with pytest.raises(ModelError, match="not found"):
        ModelCard.read(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ModelError, match="unreadable"):
        ModelCard.read(tmp_path / "bad.json")
    with pytest.raises(ModelError, match="lacks channels"):
        ModelCard.read(write(tmp_path, {"input_size": 32}))


def test_an_instance_card_on_a_one_output_model_is_refused(tmp_path: Path):
    save_conv1x1_sigmoid_model(tmp_path / "one.onnx", 3, [1.0, 1.0, 1.0], [0.0])
    write(tmp_path, TILED, "one")
    with pytest.raises(ModelError, match="1 output channel"):
        Engine(tmp_path / "one.onnx")


def test_the_app_lists_a_bad_card_as_a_problem_not_a_model(tmp_path: Path):
    save_conv1x1_sigmoid_model(tmp_path / "good.onnx", 3, [1.0, 1.0, 1.0], [0.0])
    save_conv1x1_sigmoid_model(tmp_path / "slow.onnx", 3, [1.0, 1.0, 1.0], [0.0])
    write(tmp_path, {"input_size": 32, "channels": 3}, "good")
    write(tmp_path, TILED | {"tile": {"size": 64, "overlap": 0.999}}, "slow")
    entries, problems = list_models(tmp_path)
    assert [e.name for e in entries] == ["good"]
    assert len(problems) == 1 and "slow.json" in problems[0] and "overlap" in problems[0]


def test_percentile_normalization_is_read_with_its_percentiles(tmp_path: Path):
    card = ModelCard.read(
        write(
            tmp_path, TILED | {"normalization": "percentile", "normalization_percentiles": [2, 99]}
        )
    )
    assert card.normalization == "percentile" and card.percentiles == (2.0, 99.0)
    assert ModelCard.read(write(tmp_path, TILED)).percentiles == (1.0, 99.8)
