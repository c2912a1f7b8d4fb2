"""The Segment page's instance downloads: the full-size labels PNG and the QuPath GeoJSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from handmade_models import write_nuclei_model
from PIL import Image

from segcore.app.segment import Upload, segment_upload
from segcore.inference.engine import Engine
from segcore.io.instance_io import load_labels_png


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB array as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def test_instance_result_offers_labels_and_geojson(tmp_path: Path, disk_image):
    image, _ = disk_image(56, 56, [(12, 12, 6), (12, 40, 6), (40, 24, 8)])
    engine = Engine(write_nuclei_model(tmp_path))
    result = segment_upload(engine, Upload("cells.png", png_bytes(image)), threshold=0.5, tta=False)
    (tmp_path / "cells_labels.png").write_bytes(result.labels_png)
    labels = load_labels_png(tmp_path / "cells_labels.png")
    expected = engine.predict(image).labels
    np.testing.assert_array_equal(labels, expected)
    features = json.loads(result.outlines_geojson)["features"]
    assert len(features) == len(result.objects) == 3
    for feature, row in zip(features, result.objects, strict=True):
        props = feature["properties"]
        assert props["objectType"] == "detection" and props["label"] == row["id"]
        assert props["measurements"]["area_px"] == row["area_px"]


def test_semantic_result_has_no_instance_downloads(bright_models_dir: Path, disk_image):
    image, _ = disk_image(32, 32, [(16, 16, 8)])
    engine = Engine(bright_models_dir / "bright.onnx")
    result = segment_upload(engine, Upload("a.png", png_bytes(image)), threshold=0.5, tta=False)
    assert result.labels_png is None and result.outlines_geojson is None
