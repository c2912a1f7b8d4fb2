"""Instance views of the app, exercised before an instance model exists on this branch.

`InstanceEngine` is a real `Engine` on the hand-made ``bright`` model whose predictions also carry
the instance fields of the shared interface (``labels``: one id per connected object of the real
mask; ``objects``: their measurements), as an instance model's engine returns them. The Segment
page's result view, the Gallery's counts and the Benchmarks table are checked on them.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from pagetools import captions, metrics
from PIL import Image
from scipy import ndimage
from streamlit.testing.v1 import AppTest

from segcore.app.benchmarks import model_table
from segcore.app.gallery import score_samples
from segcore.app.model_choice import ModelEntry
from segcore.app.segment import Upload, objects_csv, segment_upload
from segcore.card import ModelCard
from segcore.data import find_samples
from segcore.inference.engine import Engine, Prediction
from segcore.inference.instances import OBJECT_COLUMNS, measure_objects

DISKS = [(20, 20, 8), (20, 60, 8), (60, 40, 10)]


class InstanceEngine(Engine):
    """The real engine; each prediction also labels the mask's connected objects."""

    def predict_batch(self, images, **options) -> list[Prediction]:
        loaded = [self.load(im) for im in images]
        out = []
        for im, pred in zip(loaded, super().predict_batch(loaded, **options), strict=True):
            labels = ndimage.label(pred.mask)[0].astype(np.int32)
            objects = measure_objects(labels, im.pixels)
            out.append(dataclasses.replace(pred, labels=labels, objects=objects))
        return out


@pytest.fixture(scope="module")
def engine(bright_models_dir: Path) -> InstanceEngine:
    return InstanceEngine(bright_models_dir / "bright.onnx")


@pytest.fixture(scope="module")
def result(engine: InstanceEngine, disk_image):
    image, truth = disk_image(80, 80, DISKS)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return segment_upload(
        engine, Upload("cells.png", buffer.getvalue()), threshold=0.5, tta=False, truth=truth
    )


def test_instance_result_keeps_labels_and_objects(result):
    assert result.is_instances and result.count == len(DISKS)
    labels = result.labels()
    assert labels.shape == (80, 80) and set(np.unique(labels)) == {0, 1, 2, 3}
    rows = objects_csv(result).splitlines()
    assert rows[0].split(",") == list(OBJECT_COLUMNS) and len(rows) == 1 + len(DISKS)
    assert sorted(o["area_px"] for o in result.objects)[-1] > 300  # the radius-10 disk


def test_the_count_is_of_instances_not_of_components():
    """Two touching nuclei are one connected component but two objects: the page, the batch CSV
    and the figures count two."""
    labels = np.zeros((20, 30), np.int32)
    labels[5:15, 5:15], labels[5:15, 15:25] = 1, 2
    pred = Prediction(
        probability=(labels > 0).astype(np.float32),
        mask=labels > 0,
        width=30,
        height=20,
        area_px=200,
        area_pct=100 * 200 / 600,
        components=1,
        seconds=0.0,
        labels=labels,
        objects=measure_objects(labels, np.zeros((20, 30, 3), np.uint8)),
    )
    figures = pred.figures()
    assert (figures["count"], figures["components"]) == (2, 1)


def render_result(data: bytes) -> None:
    """AppTest script: the Segment page's view of one pickled result."""
    import pickle
    from pathlib import Path

    from segcore.app.model_choice import ModelEntry
    from segcore.app.result_view import show_result

    result = pickle.loads(data)
    from segcore.card import ModelCard

    card = {"dataset": "dsb", "instances": {}, "input_size": 32, "channels": 3}
    entry = ModelEntry("cells", Path("cells.onnx"), ModelCard.from_json(card), None)
    show_result(result, entry, None, {"opacity": 0.5, "probability": True}, 0)


def test_segment_view_shows_instances_count_histogram_and_table(result):
    at = AppTest.from_function(render_result, args=(pickle.dumps(result),), default_timeout=30)
    at.run()
    assert not at.exception and not at.error
    assert captions(at) == [
        "Image",
        "Ground truth",
        "Prediction",
        "Objects, one colour each · truth outline (green)",
        "Probability (yellow = sure)",
    ]
    assert metrics(at)["Nuclei"] == "3"
    assert len(at.get("plotly_chart")) == 1  # the size histogram
    assert len(at.dataframe[0].value) == len(DISKS)
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == [
        "Download mask (PNG)",
        "Download objects (CSV)",
        "Download labels (16-bit PNG)",
        "Download outlines for QuPath (GeoJSON)",
    ]


def test_gallery_counts_objects_against_one_mask_per_object(engine, disk_image, tmp_path: Path):
    root = tmp_path / "stage1_train" / "cell"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    image, _ = disk_image(80, 80, DISKS)
    Image.fromarray(image).save(root / "images" / "cell.png")
    for i, disk in enumerate(DISKS[:2]):  # annotated: 2 objects, found: 3
        _, mask = disk_image(80, 80, [disk])
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"m{i}.png")
    _, samples = find_samples(tmp_path / "stage1_train")
    (item,), problems = score_samples(engine, samples)
    assert not problems
    assert (item.count, item.true_count) == (3, 2) and item.count_error == pytest.approx(0.5)


def test_benchmarks_table_shows_instance_scores(bright_models_dir: Path):
    card = {
        "input_size": 32,
        "channels": 3,
        "dataset": "dsb",
        "instances": {"min_size_px": 3},
        "test_metrics": {"dice": 0.93, "dsb_score": 0.61, "f1_iou50": 0.9, "count_error": 0.05},
    }
    lesion_card = {k: v for k, v in card.items() if k != "instances"}
    entries = [
        ModelEntry("nuclei", bright_models_dir / "bright.onnx", ModelCard.from_json(card), None),
        ModelEntry(
            "lesions", bright_models_dir / "bright.onnx", ModelCard.from_json(lesion_card), None
        ),
    ]
    table = model_table(entries).set_index("model")
    assert table.loc["nuclei", ["DSB score", "F1 @ IoU 0.5", "count error"]].tolist() == [
        0.61,
        0.9,
        0.05,
    ]
    assert table.loc["lesions", ["DSB score"]].isna().all()
