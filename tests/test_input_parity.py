"""One input path: the same pixels give the same nuclei whichever way they come in.

The same 12-bit plane as a 16-bit PNG, a 16-bit TIFF, an OME-TIFF and an OME-Zarr, through the
command line (named model and ``--model auto``), the app's upload and a napari layer; an 8-bit
image and the same values x 257 in 16 bits; mean intensity on raw values everywhere; the card's
percentile normalisation on every path. Hand-made models (`handmade_models`), no training.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from handmade_models import save_conv1x1_sigmoid_model, write_nuclei_model
from PIL import Image
from synthetic_images import fluorescence, skin_photos

from segcore.app.segment import Upload, segment_upload
from segcore.commands.predict import main as predict_main
from segcore.data.imagestats import training_stats
from segcore.inference.engine import Engine
from segcore.io.labels_zarr import read_labels
from segcore.napari.widget_core import segment_pixels

HEIGHT, WIDTH = 160, 200


def twelve_bit_plane(seed: int = 0) -> np.ndarray:
    """A 12-bit DAPI-like plane (uint16): bright disks up to 4095 on a camera offset > 0."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    image = rng.integers(100, 300, (HEIGHT, WIDTH)).astype(np.uint16)
    for cy, cx, r in [(30, 40, 9), (35, 120, 11), (90, 70, 8), (120, 160, 10), (110, 20, 7)]:
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 3800
    return image


def write_forms(plane: np.ndarray, folder: Path) -> dict[str, Path]:
    """The plane as 16-bit PNG, 16-bit TIFF, OME-TIFF and OME-Zarr."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "png16": folder / "p16.png",
        "tiff16": folder / "t16.tif",
        "ometiff": folder / "o.ome.tif",
        "omezarr": folder / "z.ome.zarr",
    }
    Image.fromarray(plane).save(paths["png16"])
    assert Image.open(paths["png16"]).mode.startswith("I")  # really 16-bit
    tifffile.imwrite(paths["tiff16"], plane)
    tifffile.imwrite(paths["ometiff"], plane, metadata={"axes": "YX"})
    group = zarr.open_group(str(paths["omezarr"]), mode="w", zarr_format=2)
    group.create_array("0", shape=plane.shape, chunks=(64, 64), dtype="uint16")[:] = plane
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A nuclei model (fluorescence statistics) and a lesion model (photo statistics)."""
    folder = tmp_path_factory.mktemp("models")
    nuclei = write_nuclei_model(folder)
    card = json.loads(nuclei.with_suffix(".json").read_text())
    card["image_stats"] = training_stats(fluorescence(12))
    nuclei.with_suffix(".json").write_text(json.dumps(card))
    lesion = save_conv1x1_sigmoid_model(folder / "lesion.onnx", 3, [1.0, 1.0, 1.0], [-1.5])
    lesion_card = {"name": "lesion", "dataset": "isic", "input_size": 32, "channels": 3}
    lesion_card["image_stats"] = training_stats(skin_photos(12))
    lesion.with_suffix(".json").write_text(json.dumps(lesion_card))
    return folder


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images hold the same objects (ids may differ)."""
    pairs = set(zip(a[a > 0].tolist(), b[b > 0].tolist(), strict=True))
    return np.array_equal(a > 0, b > 0) and len(pairs) == len(np.unique(a[a > 0]))


def rows_of(out: Path) -> dict[str, dict]:
    with open(out / "predictions.csv", encoding="utf-8") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


def objects_of(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_file_form_gives_the_same_nuclei_in_the_cli(models: Path, tmp_path: Path):
    plane = twelve_bit_plane()
    paths = write_forms(plane, tmp_path / "in")
    out = tmp_path / "named"
    files = [str(p) for p in paths.values()]
    assert predict_main(["--model", str(models / "nuclei.onnx"), *files, "--out", str(out)]) == 0
    rows = rows_of(out)
    counts = {r["count"] for r in rows.values()}
    assert counts == {"5"}, rows  # a 16-bit PNG used to be divided by 65535 (fewer nuclei)
    png = np.asarray(Image.open(out / "p16_labels.png"))
    for stem in ("t16", "o", "z"):
        assert same_partition(png, read_labels(out / f"{stem}_labels.ome.zarr"))
    # mean intensity on raw values (counts ~3800), the same for the PNG and the block-wise TIFF
    means = {
        stem: sorted(
            round(float(r["mean_intensity"])) for r in objects_of(out / f"{stem}_objects.csv")
        )
        for stem in ("p16", "t16")
    }
    assert means["p16"] == means["t16"] and min(means["p16"]) > 3000


def test_model_auto_gives_what_naming_its_choice_gives(
    models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SEGCORE_MODELS_DIR", str(models))
    paths = write_forms(twelve_bit_plane(), tmp_path / "in")
    files = [str(paths["png16"]), str(paths["ometiff"])]
    assert predict_main(["--model", "auto", *files, "--out", str(tmp_path / "auto")]) == 0
    named = ["--model", str(models / "nuclei.onnx"), *files, "--out", str(tmp_path / "named")]
    assert predict_main(named) == 0
    auto, fixed = rows_of(tmp_path / "auto"), rows_of(tmp_path / "named")
    for name in auto:
        assert auto[name]["model"] == "nuclei"
        assert auto[name]["count"] == fixed[name]["count"] == "5"
        assert auto[name]["outputs"] == fixed[name]["outputs"]  # the same (block-wise) path
    assert same_partition(
        read_labels(tmp_path / "auto" / "o_labels.ome.zarr"),
        read_labels(tmp_path / "named" / "o_labels.ome.zarr"),
    )


def test_eight_bit_and_the_same_values_in_sixteen_bits_agree(models: Path, tmp_path: Path):
    plane8 = (twelve_bit_plane() // 16).astype(np.uint8)
    engine = Engine(models / "nuclei.onnx")
    Image.fromarray(plane8).save(tmp_path / "p8.png")
    Image.fromarray(plane8.astype(np.uint16) * 257).save(tmp_path / "p16.png")
    tifffile.imwrite(tmp_path / "t16.tif", plane8.astype(np.uint16) * 257)
    labels = [engine.predict(tmp_path / n).labels for n in ("p8.png", "p16.png", "t16.tif")]
    assert labels[0].max() == 5
    assert all(same_partition(labels[0], other) for other in labels[1:])


def test_app_upload_and_napari_layer_match_the_cli(models: Path, tmp_path: Path):
    plane = twelve_bit_plane()
    engine = Engine(models / "nuclei.onnx")
    cli = engine.predict(plane)
    buffer = io.BytesIO()
    Image.fromarray(plane).save(buffer, format="PNG")
    png = segment_upload(engine, Upload("p16.png", buffer.getvalue()), threshold=None, tta=False)
    tif = io.BytesIO()
    tifffile.imwrite(tif, plane, metadata={"axes": "YX"})
    tiff = segment_upload(engine, Upload("o.ome.tif", tif.getvalue()), threshold=None, tta=False)
    layer = segment_pixels(engine, plane)
    assert cli.count == png.figures["count"] == tiff.figures["count"] == layer.count == 5
    assert same_partition(cli.labels, layer.labels)
    raw = sorted(round(o["mean_intensity"]) for o in cli.objects)
    for result in (png, tiff):
        assert sorted(round(o["mean_intensity"]) for o in result.objects) == raw
    assert sorted(round(v) for v in layer.features["mean_intensity"]) == raw
    assert min(raw) > 3000  # raw counts, not the 8-bit view


def test_percentile_normalisation_is_the_same_on_every_path(models: Path, tmp_path: Path):
    folder = tmp_path / "m"
    folder.mkdir()
    path = write_nuclei_model(folder, "pct")
    card = json.loads(path.with_suffix(".json").read_text())
    card |= {"normalization": "percentile", "normalization_percentiles": [1.0, 99.8]}
    path.with_suffix(".json").write_text(json.dumps(card))
    engine = Engine(path)
    plane = twelve_bit_plane()
    loaded = engine.load(plane)
    x = engine.model_input(loaded)
    low, high = np.percentile(plane.astype(np.float32), [1.0, 99.8])
    expected = np.clip((plane.astype(np.float32) - low) / (high - low), -0.5, 2.0)
    np.testing.assert_allclose(x[..., 0], expected, atol=1e-5)
    # the same values in 8 bits x 257 normalise alike: the normaliser sees raw values of any type
    plane8 = (plane // 16).astype(np.uint8)
    x8 = engine.model_input(engine.load(plane8))
    x16 = engine.model_input(engine.load(plane8.astype(np.uint16) * 257))
    np.testing.assert_allclose(x8, x16, atol=1e-5)
    paths = write_forms(plane, tmp_path / "in")
    out = tmp_path / "out"
    assert predict_main(["--model", str(path), *map(str, paths.values()), "--out", str(out)]) == 0
    assert {r["count"] for r in rows_of(out).values()} == {str(engine.predict(plane).count)}
