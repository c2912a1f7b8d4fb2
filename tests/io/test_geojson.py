"""QuPath-ready GeoJSON: detections with a class and measurements (µm when the size is known)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segcore.inference.instances import measure_objects
from segcore.io.geojson import CLASSIFICATION, MICRON_COLUMNS, add_microns, detection
from segcore.io.instance_io import outlines_geojson, save_outlines_geojson


def two_nuclei() -> tuple[np.ndarray, np.ndarray]:
    """A label image with ids 1 (6x8 box) and 3 (a 5x5 box; id 2 absent), and a gray image."""
    labels = np.zeros((30, 40), dtype=np.int32)
    labels[2:8, 4:12] = 1
    labels[15:20, 25:30] = 3
    image = np.where(labels > 0, 200, 20).astype(np.uint8)
    return labels, np.repeat(image[..., None], 3, axis=2)


def test_detections_follow_qupaths_convention(tmp_path: Path):
    labels, image = two_nuclei()
    objects = measure_objects(labels, image)
    path = tmp_path / "x_outlines.geojson"
    save_outlines_geojson(path, labels, objects, pixel_size_um=0.5)
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection"
    first, second = data["features"]
    for feature, label, area in ((first, 1, 48), (second, 3, 25)):
        props = feature["properties"]
        assert props["objectType"] == "detection" and props["label"] == label
        assert props["classification"]["name"] == CLASSIFICATION["name"]
        assert len(props["classification"]["color"]) == 3
        m = props["measurements"]
        assert "id" not in m and m["area_px"] == area
        assert m["area_um2"] == pytest.approx(area * 0.25)
        assert m["mean_intensity"] == pytest.approx(200.0)
        assert all(isinstance(v, (int, float)) for v in m.values())
    xs = [x for x, _ in first["geometry"]["coordinates"][0]]
    ys = [y for _, y in first["geometry"]["coordinates"][0]]
    assert (min(xs), max(xs), min(ys), max(ys)) == pytest.approx((4, 12, 2, 8), abs=0.51)  # pixels


def test_without_pixel_size_or_objects():
    labels, _ = two_nuclei()
    features = outlines_geojson(labels)["features"]
    assert [f["properties"]["measurements"] for f in features] == [{"area_px": 48}, {"area_px": 25}]
    row = {"id": 1, "area_px": 4, "centroid_x": 1.0, "centroid_y": 2.0, "equivalent_diameter": 2}
    assert add_microns(row, None) == row
    assert not set(MICRON_COLUMNS) & set(detection(row, [[0, 0]])["properties"]["measurements"])
    assert add_microns(row, 2.0)["centroid_y_um"] == 4.0
