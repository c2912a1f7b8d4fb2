"""Several data sources in one run: each folder split on its own, sources recorded, names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from segcore.data.layouts import find_samples
from segcore.data.sources import (
    DATASET_MARKER,
    dataset_name,
    folder_name,
    source_counts,
    sources_name,
    split_sources,
)
from segcore.data.split import make_split, read_split, write_split

FRACTIONS = (0.5, 0.25, 0.25)


def write_label_source(root: Path, n: int = 4, size: int = 32) -> Path:
    """Plain layout whose masks are 16-bit label images (MoNuSeg's form): two objects each."""
    for i in range(n):
        labels = np.zeros((size, size), dtype=np.uint16)
        labels[2:10, 2:10] = 1
        labels[12:20, 12 + i : 20 + i] = 300 + i
        image = np.where(labels[..., None] > 0, 180, 30).astype(np.uint8).repeat(3, axis=2)
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / f"tile{i}.png")
        Image.fromarray(labels).save(root / "masks" / f"tile{i}.png")
    return root


def test_each_source_is_split_as_it_would_be_alone(tmp_path: Path, writers):
    dsb = writers["dsb"](tmp_path / "dsb", n=8)
    tiles = write_label_source(tmp_path / "tiles")
    both = split_sources([str(dsb), str(tiles)], "auto", False, FRACTIONS, seed=7)
    alone = make_split(find_samples(dsb.resolve())[1], FRACTIONS, 7)
    for part in ("train", "val", "test"):
        from_dsb = [s.image for s in both.split[part] if s.source == "dsb"]
        assert from_dsb == [s.image for s in alone[part]]
        assert any(s.source == "tiles" for s in both.split[part])
    assert both.fmt == "dsb"
    assert both.root == tmp_path.resolve()
    assert source_counts(both.split) == {
        "dsb": {"train": 4, "val": 2, "test": 2},
        "tiles": {"train": 2, "val": 1, "test": 1},
    }


def test_one_source_keeps_its_paths_and_records_no_source(tmp_path: Path, writers):
    plain = writers["plain"](tmp_path / "plain")
    one = split_sources([str(plain)], "auto", False, FRACTIONS, seed=1)
    assert one.root == plain
    assert all(s.source == "" for part in one.split.values() for s in part)
    assert source_counts(one.split) == {}


def test_split_json_round_trips_the_source(tmp_path: Path, writers):
    dsb = writers["dsb"](tmp_path / "dsb", n=4)
    tiles = write_label_source(tmp_path / "tiles")
    found = split_sources([str(dsb), str(tiles)], "auto", False, FRACTIONS, seed=3)
    write_split(tmp_path / "split.json", found.split, found.root, {"seed": 3})
    back = read_split(tmp_path / "split.json")
    assert back == found.split
    text = json.loads((tmp_path / "split.json").read_text())
    assert not Path(text["train"][0]["image"]).is_absolute()


def test_names(tmp_path: Path, writers):
    plain = writers["plain"](tmp_path / "my_cells")
    assert folder_name(plain) == "my_cells"
    assert folder_name(writers["dsb"](tmp_path / "x")) == "dsb"
    (plain / DATASET_MARKER).write_text(json.dumps({"dataset": "isic"}))
    assert dataset_name("plain", plain) == "isic"
    assert sources_name(["dsb", "monuseg2018"]) == "dsb+monuseg2018"


def test_a_resumed_run_names_its_sources_as_the_new_run_did(tmp_path: Path, writers):
    from dataclasses import asdict

    from segcore.run_config import RunConfig, TrainConfig, recorded_format, source_names

    dsb = writers["dsb"](tmp_path / "dsb", n=4)
    tiles = write_label_source(tmp_path / "tiles")
    cfg = TrainConfig(data=[str(dsb), str(tiles)], source_weights="1,3")
    saved = asdict(cfg) | {"dataset": "dsb+tiles", "format": recorded_format(cfg, "dsb")}
    resumed = RunConfig.from_json(saved).settings
    assert source_names(resumed) == source_names(cfg) == ["dsb", "tiles"]


def test_a_shipped_models_split_is_recreated_from_several_folders(tmp_path: Path, writers):
    from export.run_folder import shipped_split

    dsb = writers["dsb"](tmp_path / "dsb", n=8)
    tiles = write_label_source(tmp_path / "tiles")
    trained = split_sources([str(dsb), str(tiles)], "auto", False, FRACTIONS, seed=5)
    card = {"split": "0.5,0.25,0.25", "seed": 5, "test_metrics": {"n_images": 3}}
    assert shipped_split(card, [dsb, tiles]) == trained.split
