"""Instance models through the engine and ``segcore.commands.predict``, with hand-made ONNX models.

``two_channel`` outputs boundary = sigmoid(20 (G - 0.5)) and foreground = sigmoid(20 (R - 0.5)),
so an image whose red channel paints the nuclei and green their boundary rings decodes to known
labels; ``constant`` outputs 0.7 everywhere. Both run tiled at native scale, as their cards say.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from handmade_models import save_conv1x1_sigmoid_model
from PIL import Image
from synthetic_images import painted_nuclei

from segcore.commands.predict import main as predict_main
from segcore.errors import ModelError
from segcore.inference.engine import Engine
from segcore.inference.instances import OBJECT_COLUMNS
from segcore.io.instance_io import load_labels_png
from segcore.scoring.matching import iou_matrix

TILE = {"size": 64, "overlap": 0.25}


def write_model(
    folder: Path, name: str, weights: list[float], bias: list[float], markers: str = "boundary"
) -> Path:
    """A 1x1-conv ONNX model from 3 input to 2 sigmoid output channels, with a tiled card."""
    save_conv1x1_sigmoid_model(folder / f"{name}.onnx", 3, weights, bias)
    card = {
        "name": name,
        "arch": "handmade",
        "arch_kwargs": {"depth": 2},
        "dataset": "dsb",
        "input_size": 64,
        "channels": 3,
        "normalization": "divide_by_255",
        "threshold": 0.5,
        "mode": "tiled",
        "tile": TILE,
        "instances": {
            "foreground": 0.5,
            "boundary": 0.5,
            "distance": 0.5,
            "markers": markers,
            "min_marker_px": 4,
            "min_size_px": 8,
        },
    }
    (folder / f"{name}.json").write_text(json.dumps(card))
    return folder / f"{name}.onnx"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("instance_models")
    write_model(folder, "two_channel", [0, 20, 0, 20, 0, 0], [-10.0, -10.0])
    write_model(folder, "distance", [0, 20, 0, 20, 0, 0], [-10.0, -10.0], markers="distance")
    write_model(folder, "constant", [0.0] * 6, [0.0, float(np.log(0.7 / 0.3))])
    return folder


@pytest.mark.parametrize("markers, name", [("boundary", "two_channel"), ("distance", "distance")])
def test_engine_decodes_touching_nuclei_across_tiles(models: Path, markers: str, name: str):
    engine = Engine(models / f"{name}.onnx")
    assert engine.mode == "tiled" and engine.instances.markers == markers
    image, truth = painted_nuclei(markers=markers)
    pred = engine.predict(image)
    assert pred.labels is not None and pred.labels.shape == truth.shape
    assert pred.labels.dtype == np.int32
    assert pred.count == 3 and pred.components == 2  # two nuclei touch: one merged component
    np.testing.assert_array_equal(pred.mask, pred.labels > 0)
    iou = iou_matrix(truth, pred.labels)
    assert (iou.max(axis=1) > 0.9).all()  # every nucleus found, one to one
    assert len(set(iou.argmax(axis=1))) == 3
    assert len(pred.objects) == 3 and tuple(pred.objects[0]) == OBJECT_COLUMNS
    assert sum(o["area_px"] for o in pred.objects) == pred.area_px


def test_constant_model_tiles_without_seams(models: Path):
    engine = Engine(models / "constant.onnx")
    image = np.random.default_rng(0).integers(0, 255, (150, 211, 3), dtype=np.uint8)
    pred = engine.predict(image)
    np.testing.assert_allclose(pred.probability, 0.7, atol=1e-5)
    assert pred.probability.shape == (150, 211)


def test_image_within_one_tile_equals_whole_image_run(models: Path):
    engine = Engine(models / "two_channel.onnx")
    image = np.random.default_rng(1).integers(0, 255, (50, 61, 3), dtype=np.uint8)
    tiled = engine.tiled_channels(image)
    padded = np.pad(image, ((0, 2), (0, 3), (0, 0)), mode="symmetric")  # to multiples of 4
    whole = engine.channel_maps(padded[None].astype(np.float32) / 255)[0]
    np.testing.assert_allclose(tiled, whole[:50, :61], atol=1e-6)


def test_semantic_models_have_no_labels(bright_models_dir: Path, disk_image):
    engine = Engine(bright_models_dir / "bright.onnx")
    image, _ = disk_image(32, 32, [(10, 10, 5), (22, 22, 5)])
    pred = engine.predict(image)
    assert engine.mode == "resize" and pred.labels is None and pred.objects is None
    assert pred.count == pred.components == 2


def test_tiled_card_needs_a_tile(models: Path, tmp_path: Path):
    card = json.loads((models / "constant.json").read_text())
    del card["tile"]
    (tmp_path / "m.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="tile"):
        Engine(models / "constant.onnx", tmp_path / "m.json")


def test_predict_writes_instance_outputs(models: Path, tmp_path: Path):
    image, truth = painted_nuclei()
    Image.fromarray(image).save(tmp_path / "cells.png")
    out = tmp_path / "out"
    assert predict_main(["--model", str(models / "two_channel.onnx"), str(tmp_path / "cells.png"), "--out", str(out)]) == 0  # fmt: skip
    with open(out / "predictions.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert int(row["count"]) == 3 and int(row["components"]) == 2
    labels = load_labels_png(out / "cells_labels.png")
    assert labels.shape == truth.shape and labels.max() == 3
    with open(out / "cells_objects.csv", newline="") as f:
        objects = list(csv.DictReader(f))
    assert [int(o["id"]) for o in objects] == [1, 2, 3]
    outlines = json.loads((out / "cells_outlines.geojson").read_text())
    assert [f["properties"]["label"] for f in outlines["features"]] == [1, 2, 3]
    overlay = np.asarray(Image.open(out / "cells_overlay.png"))
    assert overlay.shape == (*truth.shape, 3)
    colours = {
        tuple(overlay[round(float(o["centroid_y"])), round(float(o["centroid_x"]))])
        for o in objects
    }
    assert len(colours) == 3  # every nucleus its own colour
