"""Block-wise segmentation of microscopy files: seams, resume, outputs, µm columns, CLI, Dask.

The hand-made ``bright_nuclei`` model makes every bright blob one nucleus, pixel by pixel, so the
whole-image result is known: the connected components of the bright pixels.
"""

from __future__ import annotations

import csv
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from handmade_models import save_bright_instance_model
from scipy import ndimage

from segcore.commands.predict import main as predict_main
from segcore.errors import ImageError
from segcore.inference.engine import Engine
from segcore.io.labels_zarr import read_labels
from segcore.large.blockplan import fill_empty, plan_blocks
from segcore.large.largeimage import ImageSpec, model_scale, segment_large

HEIGHT, WIDTH = 300, 420
BRIGHT = 3000


def disks_image(seed: int = 0) -> np.ndarray:
    """A uint16 image of bright, non-touching disks on a dim noisy background."""
    rng = np.random.default_rng(seed)
    image = np.zeros((HEIGHT, WIDTH), np.uint16)
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    for _ in range(80):
        cy, cx, r = rng.integers(0, HEIGHT), rng.integers(0, WIDTH), rng.integers(4, 12)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        if not (ndimage.binary_dilation(disk, iterations=2) & (image > 0)).any():
            image[disk] = BRIGHT
    return image + rng.integers(100, 300, image.shape).astype(np.uint16)  # camera offset > 0


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_bright_instance_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def image_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("images") / "disks.ome.tif"
    meta = {"axes": "YX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25}
    tifffile.imwrite(path, disks_image(), tile=(64, 64), metadata=meta)
    return path


def run_blocks(model: Path, image: Path, out: Path, block_size: int, **kw) -> object:
    out.mkdir(parents=True, exist_ok=True)
    return segment_large(
        Engine(model), ImageSpec(str(image)), out, "disks", block_size=block_size, margin=32, **kw
    )


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label images hold the same objects (ids may differ)."""
    pairs = set(zip(a[a > 0].tolist(), b[b > 0].tolist(), strict=True))
    return np.array_equal(a > 0, b > 0) and len(pairs) == len(np.unique(a[a > 0]))


def test_blocks_cover_the_image_once():
    blocks = plan_blocks(300, 420, 128, 16)
    cover = np.zeros((300, 420), int)
    for b in blocks:
        cover[b.y0 : b.y1, b.x0 : b.x1] += 1
        assert b.cy0 == max(0, b.y0 - 16) and b.cx1 == min(420, b.x1 + 16)
    assert (cover == 1).all() and len(blocks) == 3 * 4


def test_block_wise_equals_whole_image(model: Path, image_file: Path, tmp_path: Path):
    whole = run_blocks(model, image_file, tmp_path / "whole", 1024)
    small = run_blocks(model, image_file, tmp_path / "small", 64)
    assert whole.blocks == 1 and small.blocks == 5 * 7
    a = read_labels(tmp_path / "whole" / "disks_labels.ome.zarr")
    b = read_labels(tmp_path / "small" / "disks_labels.ome.zarr")
    truth, n = ndimage.label(disks_image() > BRIGHT // 2)
    # every disk, seams included, is one object: not split, not doubled, not lost
    assert same_partition(a, b) and same_partition(truth.astype(np.uint32), b)
    assert small.count == whole.count == n and small.dropped == 0 and small.cut == 0
    assert sorted(np.unique(b[b > 0])) == list(range(1, n + 1))  # ids unique and compact


def test_outputs_pyramid_microns_and_qupath_geojson(model: Path, image_file: Path, tmp_path: Path):
    result = run_blocks(model, image_file, tmp_path, 128)
    group = zarr.open_group(str(tmp_path / "disks_labels.ome.zarr"), mode="r")
    assert group["0"].dtype == np.uint32 and group["0"].chunks[0] <= 1024
    scales = group.attrs["multiscales"][0]["datasets"]
    assert scales[0]["coordinateTransformations"][0]["scale"] == [0.25, 0.25]
    with open(tmp_path / "disks_objects.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == result.count
    assert float(rows[0]["area_um2"]) == pytest.approx(int(rows[0]["area_px"]) * 0.0625, rel=1e-3)
    features = json.loads((tmp_path / "disks_outlines.geojson").read_text())["features"]
    assert len(features) == result.count
    props = features[0]["properties"]
    assert props["objectType"] == "detection" and props["classification"]["name"] == "Nucleus"
    assert props["measurements"]["area_px"] == int(rows[0]["area_px"])
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".tmp-*"))


def test_no_micron_columns_without_a_pixel_size(model: Path, tmp_path: Path):
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, disks_image())
    run_blocks(model, plain, tmp_path / "out", 256)
    header = (tmp_path / "out" / "disks_objects.csv").read_text().splitlines()[0]
    assert "area_px" in header and "um" not in header
    run_blocks(model, plain, tmp_path / "given", 256, pixel_size_um=0.5)
    assert "area_um2" in (tmp_path / "given" / "disks_objects.csv").read_text().splitlines()[0]


def test_resume_after_a_stop_gives_the_same_result(model: Path, image_file: Path, tmp_path: Path):
    reference = run_blocks(model, image_file, tmp_path / "ref", 64)
    out = tmp_path / "resumed"
    stopped = run_blocks(model, image_file, out, 64, stop_after=7)
    assert not stopped.complete and not (out / "disks_labels.ome.zarr").exists()
    assert len(list((out / "disks_blocks.partial").glob("block-*.npz"))) == 7
    resumed = run_blocks(model, image_file, out, 64)
    assert resumed.complete and resumed.reused == 7 and resumed.count == reference.count
    np.testing.assert_array_equal(
        read_labels(out / "disks_labels.ome.zarr"),
        read_labels(tmp_path / "ref" / "disks_labels.ome.zarr"),
    )
    for name in ("disks_objects.csv", "disks_outlines.geojson"):
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes()


def test_a_damaged_saved_block_is_redone(model: Path, image_file: Path, tmp_path: Path):
    reference = run_blocks(model, image_file, tmp_path / "ref", 64)
    out = tmp_path / "resumed"
    run_blocks(model, image_file, out, 64, stop_after=5)
    saved = sorted((out / "disks_blocks.partial").glob("block-*.npz"))
    saved[2].write_bytes(saved[2].read_bytes()[:100])  # a block cut short by the kill
    resumed = run_blocks(model, image_file, out, 64)
    assert resumed.complete and resumed.reused == 4 and resumed.count == reference.count
    np.testing.assert_array_equal(
        read_labels(out / "disks_labels.ome.zarr"),
        read_labels(tmp_path / "ref" / "disks_labels.ome.zarr"),
    )


def test_cli_two_channel_stack_and_ome_zarr(model: Path, tmp_path: Path, capsys):
    two = np.full((2, 100, 120), 100, np.uint16)  # camera offset
    two[1, 20:40, 20:40] = BRIGHT  # nuclei in the DAPI channel
    two[0, 60:90, 60:90] = BRIGHT
    tifffile.imwrite(
        tmp_path / "two.ome.tif",
        two,
        metadata={"axes": "CYX", "Channel": {"Name": ["GFP", "DAPI"]}},
    )
    tifffile.imwrite(tmp_path / "stack.tif", two, imagej=True, metadata={"axes": "ZYX"})
    group = zarr.open_group(str(tmp_path / "img.ome.zarr"), mode="w", zarr_format=2)
    group.create_array("0", shape=(100, 120), chunks=(50, 50), dtype="uint16")[:] = two[1]
    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": [{"path": "0"}]}]
    out = tmp_path / "out"
    args = ["--model", str(model), "--out", str(out), str(tmp_path / "two.ome.tif")]
    code = predict_main(args + [str(tmp_path / "stack.tif"), str(tmp_path / "img.ome.zarr")])
    err = capsys.readouterr().err
    assert code == 1 and "using channel 1 (DAPI)" in err  # 1: the z-stack failed, the rest ran
    assert "stack.tif: 2 z planes; refused without --z K or --project max" in err
    rows = {Path(r["file"]).name: r for r in csv.DictReader(open(out / "predictions.csv"))}
    assert rows["two.ome.tif"]["count"] == "1" and rows["img.ome.zarr"]["count"] == "1"
    assert rows["stack.tif"]["error"]
    assert (out / "two_labels.ome.zarr").is_dir() and (out / "img_labels.ome.zarr").is_dir()
    code = predict_main(args[:4] + ["--project", "max", str(tmp_path / "stack.tif")])
    assert code == 0 and "maximum projection" in capsys.readouterr().err
    assert read_labels(out / "stack_labels.ome.zarr").max() == 2


@pytest.mark.slow
def test_two_dask_workers_equal_one_process(
    model: Path, image_file: Path, tmp_path: Path, monkeypatch
):
    from segcore.large.distributed import BlockCluster

    # worker processes start by "spawn", which re-runs the parent's __main__ file: in a test
    # session that may be a script an earlier app test ran (streamlit_app.py), not pytest's
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))

    one = run_blocks(model, image_file, tmp_path / "one", 64)
    with BlockCluster(workers=2, timeout=300) as cluster:
        assert cluster.worker_count == 2
        two = run_blocks(model, image_file, tmp_path / "two", 64, cluster=cluster)
    assert two.count == one.count
    for name in ("disks_objects.csv", "disks_outlines.geojson"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    np.testing.assert_array_equal(
        read_labels(tmp_path / "two" / "disks_labels.ome.zarr"),
        read_labels(tmp_path / "one" / "disks_labels.ome.zarr"),
    )


def test_no_data_is_filled_from_the_nearest_data():
    pixels = np.array([[[0], [0], [5]], [[7], [0], [0]]], np.uint16)
    filled = fill_empty(pixels, (pixels == 0).all(axis=-1))
    assert filled[..., 0].tolist() == [[7, 5, 5], [7, 7, 5]]
    assert (filled > 0).all()


def test_object_diameter_rescales_for_the_model(model: Path, image_file: Path, tmp_path: Path):
    notes: list[str] = []
    assert (
        model_scale(18.0, "36", None, notes) == pytest.approx(0.5) and "scaled by 0.500" in notes[0]
    )
    assert model_scale(20.0, "5um", 0.25, []) == pytest.approx(1.0)
    with pytest.raises(ImageError, match="needs a pixel size"):
        model_scale(18.0, "5um", None, [])
    with pytest.raises(ImageError, match="--object-diameter big"):
        model_scale(18.0, "big", None, [])
    plain = run_blocks(model, image_file, tmp_path / "plain", 128)
    halved = run_blocks(model, image_file, tmp_path / "halved", 128, object_diameter="36")
    a = read_labels(tmp_path / "plain" / "disks_labels.ome.zarr")
    b = read_labels(tmp_path / "halved" / "disks_labels.ome.zarr")
    assert b.shape == a.shape and abs(halved.count - plain.count) <= 2
    assert np.mean((a > 0) == (b > 0)) > 0.98  # same nuclei, edges within a pixel or so


def test_skip_existing_carries_over_a_finished_microscopy_file(
    model: Path, image_file: Path, tmp_path: Path, capsys
):
    args = ["--model", str(model), "--out", str(tmp_path), str(image_file), "--block-size", "128"]
    assert predict_main(args) == 0
    first = (tmp_path / "predictions.csv").read_text()
    stamp = (tmp_path / "disks_labels.ome.zarr" / "0").stat().st_mtime_ns
    assert predict_main([*args, "--skip-existing"]) == 0
    assert "skipping 1 finished image(s)" in capsys.readouterr().err
    assert (tmp_path / "predictions.csv").read_text() == first
    assert (tmp_path / "disks_labels.ome.zarr" / "0").stat().st_mtime_ns == stamp


def test_pyramid_levels_are_nearest_neighbour_window_by_window(tmp_path: Path):
    from segcore.io.labels_zarr import create_labels, finish_pyramid

    labels = np.random.default_rng(0).integers(0, 9, (1300, 700)).astype(np.uint32)
    create_labels(tmp_path / "l.zarr", *labels.shape)[:] = labels
    levels = finish_pyramid(tmp_path / "l.zarr", None, strip=300)
    group = zarr.open_group(str(tmp_path / "l.zarr"), mode="r")
    assert levels == 3 and "unit" not in group.attrs["multiscales"][0]["axes"][0]
    for k in range(levels):
        np.testing.assert_array_equal(group[str(k)][:], labels[:: 2**k, :: 2**k])


def test_help_states_each_default_once(capsys):
    with pytest.raises(SystemExit):
        predict_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--block-size", "--workers", "--channel", "--z", "--pixel-size"):
        assert flag in text
    ours = text[text.index("microscopy files and large images") :]
    assert "(default: None)" not in ours and "(default: 4 of the model's tiles" in ours
    assert "(default: the card's) (default" not in text


#: What `slow_first_block` did, in order (the Dask test below runs it in threads).
BLOCK_EVENTS: list[tuple[str, int]] = []


def slow_first_block(job, block, threads=None):
    """A stand-in for `segcore.large.distributed.block_task`: block 0 is slow, the rest quick."""
    import time

    from segcore.large.blockplan import BlockResult

    BLOCK_EVENTS.append(("start", block.index))
    time.sleep(1.0 if block.index == 0 else 0.01)
    BLOCK_EVENTS.append(("end", block.index))
    return BlockResult(block.index, 0, 0, np.zeros((0, 0), np.uint32))


def test_a_slow_block_holds_back_only_a_window_of_later_ones(monkeypatch):
    from dask.distributed import Client, LocalCluster

    import segcore.large.distributed as distributed

    BLOCK_EVENTS.clear()
    monkeypatch.setattr(distributed, "block_task", slow_first_block)
    blocks = plan_blocks(64, 64 * 30, 64, 0)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as local,
        Client(local) as client,
    ):
        cluster = distributed.BlockCluster.__new__(distributed.BlockCluster)
        cluster.client, cluster.timeout, cluster.threads, cluster._cluster = client, 60, 1, None
        found = sorted(r.index for r in cluster.results(None, blocks))
    assert found == list(range(30))
    slow_done = BLOCK_EVENTS.index(("end", 0))
    started_meanwhile = [i for kind, i in BLOCK_EVENTS[:slow_done] if kind == "start"]
    # 2 workers x 4: while block 0 runs, only blocks 1-7 may start (of 29 that could)
    assert max(started_meanwhile) < 8 and len(started_meanwhile) > 2


def seam_file(folder: Path, boxes: list[tuple[int, int, int, int]]) -> Path:
    """A 256x256 OME-TIFF whose bright rectangles (y0, y1, x0, x1) are the nuclei."""
    image = np.full((256, 256), 200, np.uint16)
    for y0, y1, x0, x1 in boxes:
        image[y0:y1, x0:x1] = BRIGHT
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "seam.ome.tif"
    tifffile.imwrite(path, image, metadata={"axes": "YX"})
    return path


def test_touching_nuclei_across_a_block_edge_are_one_object_owned_once(model: Path, tmp_path: Path):
    """Two nuclei touching across the edge between blocks 0 and 1 (x = 128), narrower than the
    margin: found whole by both blocks, kept once, nothing cut or dropped, as the whole image."""
    image = seam_file(tmp_path, [(40, 60, 112, 128), (44, 58, 128, 146), (150, 170, 20, 40)])
    whole = run_blocks(model, image, tmp_path / "whole", 256)
    blocks = run_blocks(model, image, tmp_path / "blocks", 128)
    assert blocks.blocks == 4 and whole.blocks == 1
    a = read_labels(tmp_path / "whole" / "disks_labels.ome.zarr")
    b = read_labels(tmp_path / "blocks" / "disks_labels.ome.zarr")
    assert same_partition(a, b) and blocks.count == whole.count == 2
    assert blocks.cut == 0 and blocks.dropped == 0
    record = zarr.open_group(str(tmp_path / "blocks" / "disks_labels.ome.zarr"), mode="r")
    assert record.attrs["segcore"]["blocks"] == {
        "blocks": 4,
        "margin_px": 32,
        "nuclei_found": 2,
        "cut_by_context_edge": 0,
        "dropped_doubles": 0,
    }
    assert any("0 of 2 nuclei cut" in note for note in blocks.notes)


def test_nuclei_wider_than_the_margin_are_refused_aloud(model: Path, tmp_path: Path):
    """Nuclei 100 pixels wide across a block edge with a 32-pixel margin are truncated by the
    context edge: the run names the file, the counts and the fix, and publishes nothing."""
    boxes = [(10, 30, 80, 180), (60, 80, 80, 180), (110, 120, 80, 180), (200, 210, 30, 40)]
    image = seam_file(tmp_path, boxes)
    with pytest.raises(ImageError, match=r"seam\.ome\.tif: .* cut by a block's context edge.*"
                       r"32-pixel margin; give --object-diameter"):  # fmt: skip
        run_blocks(model, image, tmp_path / "out", 128)
    assert not (tmp_path / "out" / "disks_labels.ome.zarr").exists()
    assert not (tmp_path / "out" / "disks_objects.csv").exists()
    whole = run_blocks(model, image, tmp_path / "whole", 256)  # one block: no seam to cut
    assert whole.count == 4 and whole.cut == 0
