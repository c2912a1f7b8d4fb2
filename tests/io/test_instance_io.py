"""``segcore.io.instance_io``: 16-bit label PNGs, object CSVs and GeoJSON outlines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcore.inference.instances import OBJECT_COLUMNS, measure_objects
from segcore.io.instance_io import (
    load_labels_png,
    outlines_geojson,
    save_labels_png,
    save_objects_csv,
    save_outlines_geojson,
)


def blob_labels() -> np.ndarray:
    """Labels with a disc, a touching L shape, a ring (with a hole), a 1-pixel object, id 700."""
    labels = np.zeros((40, 50), np.int32)
    yy, xx = np.mgrid[:40, :50]
    labels[(yy - 10) ** 2 + (xx - 10) ** 2 <= 36] = 1
    labels[4:20, 17:20] = 2
    labels[17:20, 17:30] = 2
    ring = ((yy - 30) ** 2 + (xx - 35) ** 2 <= 49) & ((yy - 30) ** 2 + (xx - 35) ** 2 > 9)
    labels[ring] = 3
    labels[36, 2] = 4
    labels[25:29, 5:9] = 700
    return labels


def _segments_intersect(p1, p2, p3, p4) -> bool:
    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    d1, d2 = cross(p3, p4, p1), cross(p3, p4, p2)
    d3, d4 = cross(p1, p2, p3), cross(p1, p2, p4)
    return (d1 * d2 < 0) and (d3 * d4 < 0)


def assert_valid_ring(ring: list[list[float]]) -> float:
    """A closed, simple (non-self-intersecting) ring of >= 4 positions; returns its area."""
    assert len(ring) >= 4 and ring[0] == ring[-1]
    pts = [tuple(p) for p in ring]
    assert len(set(pts[:-1])) == len(pts) - 1  # no repeated vertex
    edges = list(zip(pts[:-1], pts[1:], strict=True))
    for i, (a, b) in enumerate(edges):
        for j in range(i + 2, len(edges)):
            if i == 0 and j == len(edges) - 1:
                continue  # adjacent through the closing vertex
            c, d = edges[j]
            assert not _segments_intersect(a, b, c, d), f"edges {i} and {j} cross"
    xs, ys = np.array(pts).T
    return 0.5 * abs(np.dot(xs[:-1], ys[1:]) - np.dot(xs[1:], ys[:-1]))


def test_label_png_round_trips_16_bit(tmp_path: Path):
    labels = blob_labels()
    path = tmp_path / "x_labels.png"
    save_labels_png(path, labels)
    with Image.open(path) as img:
        assert img.mode.startswith("I;16") and img.size == (50, 40)
    back = load_labels_png(path)
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, labels)
    assert not list(tmp_path.glob(".*tmp"))  # written atomically, nothing left behind


def test_label_png_refuses_ids_above_16_bit(tmp_path: Path):
    with pytest.raises(ValueError, match="65535"):
        save_labels_png(tmp_path / "big.png", np.full((2, 2), 70000, np.int32))
    assert not list(tmp_path.iterdir())


def test_geojson_has_one_valid_polygon_per_label(tmp_path: Path):
    labels = blob_labels()
    path = tmp_path / "x_outlines.geojson"
    save_outlines_geojson(path, labels)
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection"
    ids = [f["properties"]["label"] for f in data["features"]]
    assert ids == [1, 2, 3, 4, 700]
    for feature in data["features"]:
        assert feature["type"] == "Feature"
        geometry = feature["geometry"]
        assert geometry["type"] == "Polygon" and len(geometry["coordinates"]) == 1
        area = assert_valid_ring(geometry["coordinates"][0])
        label = feature["properties"]["label"]
        filled = (labels == label).sum() + (label == 3) * (labels[27:34, 32:39] == 0).sum()
        # marching squares cuts each pixel corner: the area is the pixel count minus the corners
        assert filled * 0.5 <= area <= filled
        xs = [p[0] for p in geometry["coordinates"][0]]
        cols = np.nonzero(labels == label)[1]
        assert min(xs) >= cols.min() and max(xs) <= cols.max() + 1


def test_geojson_of_empty_labels():
    assert outlines_geojson(np.zeros((5, 5), np.int32)) == {
        "type": "FeatureCollection",
        "features": [],
    }


def test_objects_csv(tmp_path: Path):
    labels = blob_labels()
    objects = measure_objects(labels, np.full((*labels.shape, 3), 50, np.uint8))
    path = tmp_path / "x_objects.csv"
    save_objects_csv(path, objects)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == OBJECT_COLUMNS
    assert [int(r["id"]) for r in rows] == [1, 2, 3, 4, 700]
    assert int(rows[3]["area_px"]) == 1
