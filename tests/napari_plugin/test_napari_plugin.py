"""The napari plugin: manifest, reader, samples, the segment function and the docked widget.

Headless: Qt draws offscreen. (The folder is not called ``napari`` so that it never shadows the
real package on sys.path.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from handmade_models import write_nuclei_model
from PIL import Image
from synthetic_images import disk_image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("napari", reason="napari is not installed (pip install segcore[napari])")
pytest.importorskip("npe2", reason="npe2 is not installed (pip install segcore[napari])")

from segcore.errors import ImageError  # noqa: E402
from segcore.io.instance_io import save_labels, save_labels_png  # noqa: E402
from segcore.napari import reader, samples  # noqa: E402
from segcore.napari.widget_core import (  # noqa: E402
    engine_for,
    layer_pixels,
    layer_source,
    model_choices,
    run_steps,
    segment_pixels,
    segment_steps,
    step_count,
)

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
MANIFEST = REPO / "segcore" / "napari" / "napari.yaml"
MODEL = "nuclei_instance_unet_bn"
DISKS = [(12, 12, 6), (12, 40, 6), (40, 24, 8)]


def test_manifest_is_valid_and_its_commands_import():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(MANIFEST)
    assert manifest.name == "segcore"
    for command in manifest.contributions.commands:
        assert callable(_resolve(command)), command.python_name
    assert {r.command for r in manifest.contributions.readers} == {"segcore.get_reader"}
    assert {s.key for s in manifest.contributions.sample_data} == {"nuclei", "lesion"}


def _resolve(command) -> object:
    """The Python object a manifest command names."""
    import importlib

    module, name = command.python_name.split(":")
    return getattr(importlib.import_module(module), name)


def test_light_modules_never_import_napari_or_qt():
    code = (
        "import sys, segcore.napari, segcore.napari.widget_core, segcore.inference.engine, segcore.commands.predict, "
        "segcore.app.segment, export; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('napari', 'magicgui', 'PyQt5', 'qtpy', 'bioimageio')]; print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reader_opens_segcore_outputs(tmp_path: Path):
    labels = np.zeros((20, 30), dtype=np.int32)
    labels[2:6, 3:9] = 1
    labels[10:15, 20:28] = 300
    save_labels_png(tmp_path / "cells_labels.png", labels)
    Image.fromarray((labels > 0).astype(np.uint8) * 255).save(tmp_path / "cells_mask.png")
    assert reader.get_reader(str(tmp_path / "cells.png")) is None
    assert reader.get_reader(str(tmp_path / "photo_labels.jpg")) is None

    read = reader.get_reader([str(tmp_path / "cells_labels.png"), str(tmp_path / "cells_mask.png")])
    (ids, ids_meta, kind), (mask, mask_meta, mask_kind) = read(
        [str(tmp_path / "cells_labels.png"), str(tmp_path / "cells_mask.png")]
    )
    assert kind == mask_kind == "labels"
    np.testing.assert_array_equal(ids, labels)
    np.testing.assert_array_equal(mask, (labels > 0).astype(np.uint8))
    assert ids_meta["name"] == "cells labels" and mask_meta["name"] == "cells mask"
    big = np.zeros((4, 5), dtype=np.int32)
    big[1, 1:3] = 70_000  # above a 16-bit PNG: segcore writes a 32-bit TIFF
    tif = save_labels(tmp_path / "many_labels", big)
    ((data, meta, _),) = reader.get_reader(str(tif))(str(tif))
    assert tif.name == "many_labels.tif" and meta["name"] == "many labels"
    np.testing.assert_array_equal(data, big)


def test_reader_opens_a_labels_ome_zarr_lazily(tmp_path: Path):
    import zarr

    path = tmp_path / "big_labels.ome.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    labels = np.zeros((64, 48), dtype=np.uint32)
    labels[5:20, 5:20] = 7
    group.create_array("0", shape=labels.shape, chunks=(32, 32), dtype="uint32")[:] = labels
    group.create_array("1", shape=(32, 24), chunks=(32, 24), dtype="uint32")[:] = labels[::2, ::2]
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}],
            "datasets": [
                {"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": [s, s]}]}
                for k, s in ((0, 0.5), (1, 1.0))
            ],
        }
    ]
    ((levels, meta, kind),) = reader.get_reader(str(path))(str(path))
    assert kind == "labels" and meta["multiscale"] and meta["scale"] == (0.5, 0.5)
    assert not isinstance(levels[0], np.ndarray)  # lazy: read by napari chunk by chunk
    np.testing.assert_array_equal(np.asarray(levels[0][:]), labels)


def test_samples_are_the_bundled_images():
    ((nuclei, meta, kind),) = samples.nuclei_sample()
    ((lesion, _, _),) = samples.lesion_sample()
    assert kind == "image" and meta["rgb"]
    assert nuclei.shape == (520, 696, 3) and lesion.shape == (256, 256, 3)


def test_segment_pixels_instance_model(tmp_path: Path):
    image, mask = disk_image(56, 56, DISKS)
    engine = engine_for(write_nuclei_model(tmp_path))
    result = segment_pixels(engine, image)
    assert result.count == 3 and int(result.labels.max()) == 3
    assert result.name == "nuclei: 3 nuclei"
    assert result.features["index"] == [1, 2, 3]
    assert sorted(result.features["area_px"]) == sorted(
        int(np.count_nonzero(result.labels == i)) for i in (1, 2, 3)
    )
    assert (result.labels > 0).sum() == pytest.approx(mask.sum(), rel=0.15)


def test_segment_pixels_semantic_model_gray_and_lazy(bright_models_dir: Path):
    dask = pytest.importorskip("dask.array")
    image, _ = disk_image(32, 32, [(8, 8, 5), (22, 22, 6)])
    engine = engine_for(bright_models_dir / "bright.onnx")
    gray = image[..., 0]
    lazy = [dask.from_array(gray, chunks=16), dask.from_array(gray[::2, ::2], chunks=8)]
    result = segment_pixels(engine, layer_pixels(lazy, rgb=False))
    assert set(np.unique(result.labels)) == {0, 1}
    assert result.name == "bright: mask, 2 components" and result.count == 2
    assert result.features["index"] == [1]
    assert result.features["area_px"] == [int(result.labels.sum())]
    with pytest.raises(ValueError, match="2-D image"):
        layer_pixels(np.zeros((2, 3, 8, 8)), rgb=False)


def test_a_stack_layer_is_a_plane_or_a_projection_never_cut_silently():
    stack = np.zeros((3, 8, 8), np.uint16)
    stack[1, 2, 2], stack[2, 5, 5] = 7, 9
    with pytest.raises(ValueError, match=r"3 planes .*never cut silently"):
        layer_pixels(stack, rgb=False)
    assert layer_pixels(stack, rgb=False, plane=1)[2, 2] == 7
    projected = layer_pixels(stack, rgb=False, project="max")
    assert projected[2, 2] == 7 and projected[5, 5] == 9 and projected.shape == (8, 8)
    with pytest.raises(ValueError, match="outside 0..2"):
        layer_pixels(stack, rgb=False, plane=3)


def test_model_choices_best_first(tmp_path: Path, bright_models_dir: Path, monkeypatch):
    monkeypatch.setenv("SEGCORE_MODELS_DIR", str(tmp_path))
    for suffix in (".onnx", ".json"):
        shutil.copy(bright_models_dir / f"bright{suffix}", tmp_path)
    write_nuclei_model(tmp_path)
    assert set(model_choices()) == {"bright", "nuclei"}


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("DISPLAY"),
    reason="napari's canvas needs OpenGL: run under xvfb-run, as .ci/run does",
)
def test_widget_segments_a_real_image_in_a_headless_viewer():
    """The docked widget runs the shipped nuclei model on a real DSB image in a headless viewer
    (in a fresh process: see viewer_run.py); the window's screenshot goes to
    test-artifacts/napari.png, the README's picture."""
    ARTIFACTS.mkdir(exist_ok=True)
    script = Path(__file__).with_name("viewer_run.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    result = subprocess.run(
        [sys.executable, str(script), MODEL, str(ARTIFACTS / "napari.png")],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("viewer-result:")]
    seen = json.loads(line.removeprefix("viewer-result:"))
    count = seen["count"]
    truth = len(list((samples.samples_dir() / samples.NUCLEI / "masks").glob("*.png")))
    assert seen["layer_type"] == "Labels"
    assert abs(count - truth) <= 0.25 * truth
    assert seen["name"] == f"{MODEL}: {count} nuclei"
    assert seen["features_index"] == list(range(1, count + 1))
    assert {"area_px", "centroid_x", "mean_intensity"} <= set(seen["feature_columns"])
    assert seen["plain_kind"] == "labels" and seen["plain_equal"]
    assert (ARTIFACTS / "napari.png").stat().st_size > 10_000


def test_reader_refuses_a_declared_huge_label_image_and_a_zarr_without_multiscales(
    tmp_path: Path,
):
    """A tiny TIFF declaring 40000x40000 labels is refused before decoding; a zarr folder
    without multiscales is one ImageError line, not a KeyError."""
    import zlib

    import tifffile
    import zarr

    from segcore.errors import ImageError

    huge = tmp_path / "big_labels.tif"
    strips = iter([zlib.compress(b"\0" * 64)] * 40000)
    tifffile.imwrite(huge, strips, shape=(40000, 40000), dtype="uint16", compression="zlib")
    with pytest.raises(ImageError, match="declares 40000x40000 pixels"):
        reader.read_paths(str(huge))
    bare = tmp_path / "bare_labels.ome.zarr"
    zarr.open_group(str(bare), mode="w", zarr_format=2)
    with pytest.raises(ImageError, match="no OME-Zarr multiscales"):
        reader.read_paths(str(bare))


class WindowLog:
    """A lazy 2-D array (as zarr or dask give napari) that records every window read from it."""

    def __init__(self, pixels: np.ndarray) -> None:
        self.pixels, self.shape, self.dtype, self.ndim = pixels, pixels.shape, pixels.dtype, 2
        self.windows: list[tuple[int, int]] = []

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        window = self.pixels[key]
        self.windows.append(window.shape[:2])
        return window


def big_disks(side: int = 720) -> np.ndarray:
    """A one-channel 16-bit image of bright disks on a grid (a few hundred pixels apart)."""
    image = np.full((side, side), 300, np.uint16)
    yy, xx = np.mgrid[:side, :side]
    for cy in range(40, side - 20, 90):
        for cx in range(40, side - 20, 90):
            image[(yy - cy) ** 2 + (xx - cx) ** 2 <= 14**2] = 3000
    return image


def test_a_layer_above_the_cap_goes_block_by_block_never_read_whole(tmp_path: Path):
    engine = engine_for(write_nuclei_model(tmp_path))
    pixels = big_disks()
    lazy = WindowLog(pixels)
    source = layer_source([lazy, pixels[::2, ::2]], rgb=False)
    cap = 100_000  # below the layer's 518,400 pixels
    total = step_count(engine, source, cap)
    steps = segment_steps(engine, source, max_pixels=cap)
    seen = []
    while True:
        try:
            seen.append(next(steps))
        except StopIteration as stop:
            result = stop.value
            break
    assert total > 1 and seen == [(k, total) for k in range(1, total + 1)]  # one step per block
    assert max(h * w for h, w in lazy.windows) < pixels.size  # read window by window
    assert isinstance(result.labels, list) and result.labels[0].shape == pixels.shape  # pyramid
    whole = segment_pixels(engine, pixels)  # the same layer held whole
    assert result.count == whole.count == 64
    blockwise = np.asarray(result.labels[0][:])
    assert np.mean((blockwise > 0) == (whole.labels > 0)) > 0.99
    assert result.features["index"] == list(range(1, result.count + 1))


def test_a_semantic_model_refuses_a_layer_above_the_cap(bright_models_dir: Path):
    engine = engine_for(bright_models_dir / "bright.onnx")
    source = layer_source(np.zeros((64, 64), np.uint8), rgb=False)
    assert step_count(engine, source, 1000) == 1
    with pytest.raises(ImageError, match="above the 1,000-pixel limit"):
        run_steps(segment_steps(engine, source, max_pixels=1000))


def test_the_widget_runs_in_a_thread_worker_with_a_progress_bar(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """start_worker plans in the caller's thread, segments in a napari thread worker whose
    progress bar counts the steps, and adds the Labels layer to the viewer when done."""
    from napari.components import ViewerModel
    from napari.layers import Image as ImageLayer

    from segcore.napari.widget import start_worker

    write_nuclei_model(tmp_path)
    monkeypatch.setenv("SEGCORE_MODELS_DIR", str(tmp_path))
    viewer = ViewerModel()
    image, _ = disk_image(56, 56, DISKS)
    layer = viewer.add_layer(ImageLayer(image, rgb=True, name="disks", scale=(0.5, 0.5)))
    with pytest.raises(ValueError, match="never cut silently"):
        start_worker(viewer, ImageLayer(np.zeros((3, 32, 32)), name="stack"), "nuclei")
    worker = start_worker(viewer, layer, "nuclei")
    assert worker.pbar.total == 1 and "nuclei on disks" in worker.pbar.desc
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=60_000)
    labels = viewer.layers[-1]
    assert type(labels).__name__ == "Labels" and labels.name == "nuclei: 3 nuclei"
    assert tuple(labels.scale) == (0.5, 0.5) and labels.metadata["count"] == 3
