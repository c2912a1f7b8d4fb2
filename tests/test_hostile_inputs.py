"""Hostile files and faults on the microscopy path: each ends in one line, bounded work, a batch
never lost, a resume never mixing results (issue 30). Every hostile file is made here, tiny:
a forged header declares the huge image, nothing huge is ever written or decoded."""

from __future__ import annotations

import csv
import json
import math
import shutil
import socket
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from handmade_models import save_bright_instance_model

import segcore.large.largeimage as largeimage
from segcore.commands.predict import main as predict_main
from segcore.errors import ClusterError, ImageError
from segcore.inference.engine import Engine
from segcore.io import fingerprints
from segcore.io.microscopy import open_microscopy
from segcore.large.largeimage import ImageSpec, block_geometry, model_scale, segment_large

BRIGHT = 3000


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_bright_instance_model(tmp_path_factory.mktemp("models"))


def nuclei(seed: int = 0, shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    """A uint16 image of a few bright squares on a camera offset."""
    rng = np.random.default_rng(seed)
    image = np.full(shape, 100, np.uint16)
    for _ in range(6):
        y, x = rng.integers(0, shape[0] - 12), rng.integers(0, shape[1] - 12)
        image[y : y + 8, x : x + 8] = BRIGHT
    return image


def forged_tiff(path: Path, shape: tuple[int, ...], rows: int) -> Path:
    """A tiny zlib TIFF whose header declares ``shape`` in strips of ``rows`` rows (its strips
    hold a few bytes: the file is refused before any would be decoded)."""
    strips = math.prod(shape[:-2]) * math.ceil(shape[-2] / rows)
    data = iter([zlib.compress(b"\0" * 64)] * strips)
    tifffile.imwrite(path, data, shape=shape, dtype="uint16", compression="zlib", rowsperstrip=rows)
    return path


def forged_zarr(path: Path, shape: list[int], datasets: object = None, axes=("y", "x")) -> Path:
    """An OME-Zarr folder of hand-written metadata: ``.zarray`` says ``shape``, no chunk."""
    (path / "0").mkdir(parents=True)
    zarray = {
        "zarr_format": 2, "shape": shape, "chunks": [256] * len(shape), "dtype": "<u2",
        "compressor": None, "fill_value": 0, "order": "C", "filters": None,
    }  # fmt: skip
    (path / "0" / ".zarray").write_text(json.dumps(zarray))
    (path / ".zgroup").write_text('{"zarr_format": 2}')
    datasets = [{"path": "0"}] if datasets is None else datasets
    meta = {"version": "0.4", "axes": [{"name": a} for a in axes], "datasets": datasets}
    (path / ".zattrs").write_text(json.dumps({"multiscales": [meta]}))
    return path


# --- limits on work, checked before decoding -----------------------------------------------------


def test_a_single_strip_bomb_is_refused_before_decoding(tmp_path: Path):
    path = forged_tiff(tmp_path / "bomb.tif", (30000, 30000), rows=30000)
    assert path.stat().st_size < 10_000
    with pytest.raises(ImageError, match=r"bomb.tif: one compressed strip decodes to 1,717 MiB"):
        open_microscopy(path)


def test_declared_sides_and_planes_above_the_limits_are_refused(tmp_path: Path):
    with pytest.raises(ImageError, match="declares 2000000x2000000 pixels, above the limit"):
        open_microscopy(forged_zarr(tmp_path / "wide.ome.zarr", [2_000_000, 2_000_000]))
    huge = forged_zarr(tmp_path / "e12.ome.zarr", [10**12, 10**12])
    with pytest.raises(ImageError, match="refused before decoding"):
        open_microscopy(huge)
    planes = forged_zarr(tmp_path / "z.ome.zarr", [200_000, 64, 64], axes=("z", "y", "x"))
    with pytest.raises(ImageError, match="200,000 planes, channels and time points"):
        open_microscopy(planes)


@pytest.mark.parametrize(
    "datasets, message",
    [
        ([], "without datasets"),
        ([{"path": "../outside"}], "is not a folder inside it"),
        ([{"path": "/etc"}], "is not a folder inside it"),
        ([{"path": "-1"}], "malformed OME-Zarr metadata"),
        ([{"nopath": 1}], "None is not a folder inside it"),
        ("zero", "without datasets"),
    ],
)
def test_malformed_ome_zarr_metadata_is_one_line(tmp_path: Path, datasets, message):
    path = forged_zarr(tmp_path / "bad.ome.zarr", [64, 64], datasets=datasets)
    with pytest.raises(ImageError, match=message) as info:
        open_microscopy(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_axes_that_do_not_match_the_shape_are_refused(tmp_path: Path):
    path = forged_zarr(tmp_path / "axes.ome.zarr", [64, 64], axes=("z", "y", "x"))
    with pytest.raises(ImageError, match="do not match the shape"):
        open_microscopy(path)


def test_a_bogus_ome_dimension_order_is_one_line_or_read(tmp_path: Path):
    path = tmp_path / "order.ome.tif"
    tifffile.imwrite(path, nuclei(), metadata={"axes": "YX"})
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    bogus = xml.replace('DimensionOrder="XYCZT"', 'DimensionOrder="QQQQQ"')
    assert bogus != xml
    tifffile.tiffcomment(path, bogus.encode())
    try:
        image = open_microscopy(path)
    except ImageError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert image.read(0, 10, 0, 10).shape == (10, 10, 1)


def test_a_projection_reads_one_plane_at_a_time(tmp_path: Path):
    stack = np.stack([nuclei(s) for s in range(4)])
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZYX"}, compression="zlib")
    chosen, _ = open_microscopy(path).select(project="max")
    np.testing.assert_array_equal(chosen.read(0, 120, 0, 160)[..., 0], stack.max(axis=0))


def test_an_app_upload_of_a_big_single_strip_stack_is_refused_at_once(tmp_path: Path):
    from segcore.app.microscopy_upload import PlaneChoice, plane_raw

    data = forged_tiff(tmp_path / "stack.tif", (500, 4000, 4000), rows=4000).read_bytes()
    from segcore.io.microscopy import open_tiff_bytes

    image = open_tiff_bytes("stack.tif", data)
    with pytest.raises(ImageError, match="500 planes of 4000x4000 is 8,000 megapixels"):
        plane_raw(image, PlaneChoice(project="max"), 25_000_000)


def test_an_app_decoding_stops_at_its_time_budget_and_reports_progress(tmp_path: Path):
    from segcore.app.microscopy_upload import PlaneChoice, plane_raw
    from segcore.io.microscopy import open_tiff_bytes

    stack = np.stack([nuclei(s, (1100, 64)) for s in range(3)])
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZYX"})
    image = open_tiff_bytes("s.tif", path.read_bytes())
    seen: list[float] = []
    out, _ = plane_raw(image, PlaneChoice(project="max"), 10**8, progress=seen.append)
    assert out.shape[:2] == (1100, 64) and seen == sorted(seen) and len(seen) >= 3
    with pytest.raises(ImageError, match="took more than 0 s and was stopped"):
        plane_raw(image, PlaneChoice(project="max"), 10**8, budget_s=0)


# --- pixel sizes and the object diameter ---------------------------------------------------------


@pytest.mark.parametrize("size", ["INF", "1e300", "0"])
def test_an_unreal_pixel_size_in_the_metadata_is_ignored_with_a_note(
    model: Path, tmp_path: Path, size: str
):
    path = tmp_path / "inf.ome.tif"
    tifffile.imwrite(path, nuclei(), metadata={"axes": "YX"})
    with tifffile.TiffFile(path) as tif:
        xml = tif.ome_metadata
    tifffile.tiffcomment(path, xml.replace("<Pixels ", f'<Pixels PhysicalSizeX="{size}" '))
    image = open_microscopy(path)
    assert image.pixel_size_um is None
    out = tmp_path / "out"
    out.mkdir()
    result = segment_large(Engine(model), ImageSpec(str(path)), out, "inf", block_size=64)
    if size != "0":  # a size of 0 is no size at all, not one to warn about
        assert any("ignored (not a real size)" in n for n in result.notes)
    json.loads((out / "inf_outlines.geojson").read_text(), parse_constant=pytest.fail)
    attrs = (out / "inf_labels.ome.zarr" / ".zattrs").read_text()
    json.loads(attrs, parse_constant=pytest.fail)


@pytest.mark.parametrize("text", ["inf", "0.01", "1e-300um", "nan", "-3", "100000"])
def test_an_object_diameter_out_of_range_is_one_line(text: str):
    with pytest.raises(ImageError, match=f"--object-diameter {text}"):
        model_scale(18.0, text, 0.5, [])


def test_block_context_stays_bounded_whatever_the_scale():
    from segcore.card import TileSpec

    tile = TileSpec(1024, 0.125)
    default, margin = block_geometry(tile, 1.0, None)
    base = default + 2 * margin
    for scale in (1 / 8, 0.5, 1.0, 18 / 4, 6.0):
        block, margin = block_geometry(tile, scale, None)
        assert (block + 2 * margin) * max(1.0, scale) <= base + 1  # as the model sees it
        assert block + 2 * margin <= base and margin * scale >= 128 - 1  # as read
    with pytest.raises(ImageError, match="--block-size 3456: blocks with their context"):
        block_geometry(tile, 4.5, 3456)


def test_cli_pixel_size_inf_is_one_line(model: Path, tmp_path: Path, capsys):
    code = predict_main(
        ["--model", str(model), "--out", str(tmp_path), "x.tif"] + ["--pixel-size", "inf"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--pixel-size inf: must be 0.001 to 1000" in err


# --- a resume never reuses blocks of another input or model --------------------------------------


def run(model: Path, image: Path, out: Path, **kw) -> object:
    out.mkdir(parents=True, exist_ok=True)
    return segment_large(
        Engine(model), ImageSpec(str(image)), out, "img", block_size=64, margin=16, **kw
    )


def test_a_replaced_input_of_the_same_size_is_not_resumed(model: Path, tmp_path: Path):
    image, out = tmp_path / "img.tif", tmp_path / "out"
    tifffile.imwrite(image, nuclei(0))
    size = image.stat().st_size
    assert not run(model, image, out, stop_after=2).complete
    tifffile.imwrite(image, nuclei(1))  # another image, same path and size
    assert image.stat().st_size == size
    result = run(model, image, out)
    assert result.reused == 0
    assert any("made from another input file; starting over" in n for n in result.notes)
    clean = run(model, image, tmp_path / "clean")
    assert result.count == clean.count


def test_a_replaced_model_of_the_same_size_is_not_resumed(model: Path, tmp_path: Path):
    image, out = tmp_path / "img.tif", tmp_path / "out"
    tifffile.imwrite(image, nuclei(0))
    own = tmp_path / "m" / model.name
    own.parent.mkdir()
    shutil.copy(model, own)
    shutil.copy(model.with_suffix(".json"), own.with_suffix(".json"))
    assert not run(own, image, out, stop_after=2).complete
    data = bytearray(own.read_bytes())
    data[-1] ^= 1  # same size, other bytes
    own.write_bytes(bytes(data))
    card = json.loads(own.with_suffix(".json").read_text())
    own.with_suffix(".json").write_text(json.dumps(card))
    notes = run(own, image, out).notes
    assert any("made from another model or card; starting over" in n for n in notes)


def test_the_same_input_and_model_are_resumed(model: Path, tmp_path: Path):
    image, out = tmp_path / "img.tif", tmp_path / "out"
    tifffile.imwrite(image, nuclei(0))
    run(model, image, out, stop_after=2)
    assert run(model, image, out).reused == 2


def test_a_large_file_is_fingerprinted_by_size_mtime_header_and_samples(tmp_path, monkeypatch):
    monkeypatch.setattr(fingerprints, "FULL_DIGEST_BYTES", 4096)
    monkeypatch.setattr(fingerprints, "SAMPLE_BYTES", 64)
    path = tmp_path / "big.bin"
    data = bytearray(np.random.default_rng(0).integers(0, 255, 200_000, dtype=np.uint8))
    path.write_bytes(bytes(data))
    first = fingerprints.fingerprint(path)
    data[100_000] ^= 1  # a byte in the sampled middle
    path.write_bytes(bytes(data))
    assert fingerprints.fingerprint(path) != first
    folder = tmp_path / "z.ome.zarr"
    forged_zarr(folder, [64, 64])
    before = fingerprints.fingerprint(folder)
    (folder / ".zattrs").write_text((folder / ".zattrs").read_text().replace("0.4", "0.5"))
    assert fingerprints.fingerprint(folder) != before


# --- a batch is never lost -----------------------------------------------------------------------


def test_every_input_of_a_batch_is_isolated(model: Path, tmp_path: Path, capsys, monkeypatch):
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, nuclei())
    inputs = [
        good,
        forged_zarr(tmp_path / "e12.ome.zarr", [10**12, 10**12]),
        forged_zarr(tmp_path / "up.ome.zarr", [64, 64], datasets=[{"path": "../x"}]),
        forged_zarr(tmp_path / "empty.ome.zarr", [64, 64], datasets=[]),
        forged_tiff(tmp_path / "bomb.tif", (30000, 30000), rows=30000),
        tmp_path / "missing.tif",
    ]
    long = tmp_path / ("n" * 230 + ".tif")
    shutil.copy(good, long)
    crash = tmp_path / "crash.tif"
    shutil.copy(good, crash)
    real = largeimage.segment_large

    def faulty(engine, spec, *args, **kw):
        if spec.path.endswith("crash.tif"):
            raise ZeroDivisionError("a bug")
        return real(engine, spec, *args, **kw)

    monkeypatch.setattr(largeimage, "segment_large", faulty)
    out = tmp_path / "out"
    code = predict_main(
        ["--model", str(model), "--out", str(out), *map(str, inputs), str(long), str(crash)]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    rows = {r["file"]: r for r in csv.DictReader(open(out / "predictions.csv", encoding="utf-8"))}
    assert len(rows) == 8 and rows["good.tif"]["error"] == "" and rows["good.tif"]["count"]
    assert "internal error (ZeroDivisionError: a bug)" in rows["crash.tif"]["error"]
    assert "File name too long" in rows[long.name]["error"]
    failed = [r for r in rows.values() if r["error"]]
    assert len(failed) == 7
    for row in failed:  # one line each on stderr, naming the file
        assert sum(row["file"] in line for line in err.splitlines() if "error:" in line) >= 1


def test_truth_of_another_size_is_refused_with_one_line(model: Path, tmp_path: Path, capsys):
    from PIL import Image

    image = tmp_path / "cells.png"
    Image.fromarray((nuclei() > 1000).astype(np.uint8) * 255).save(image)
    truth = tmp_path / "truth"
    truth.mkdir()
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(truth / "cells.png")
    out = tmp_path / "out"
    code = predict_main(
        ["--model", str(model), "--out", str(out), "--truth", str(truth), str(image)]
    )
    err = capsys.readouterr().err
    row = next(csv.DictReader(open(out / "predictions.csv")))
    assert code == 0 and row["dice"] == "" and row["error"] == ""
    assert "80x60 pixels, the image is 160x120; a truth must be the image's size" in err


# --- the scheduler -------------------------------------------------------------------------------


def listening(answer: bytes | None, held: list) -> tuple[str, socket.socket]:
    """A server on 127.0.0.1 that accepts and sends ``answer`` (None: stays silent), keeping
    the connection open in ``held``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        try:
            conn, _ = server.accept()
            held.append(conn)  # kept open: a silent server, not a closed one
            if answer is not None:
                conn.sendall(answer)
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    return f"tcp://127.0.0.1:{server.getsockname()[1]}", server


@pytest.mark.parametrize(
    "answer, message",
    [(None, "no handshake in 0.5 s"), (b"HTTP/1.0 200 OK\r\n\r\n", "unknown handshake")],
)
def test_a_port_that_is_not_a_dask_scheduler_is_refused_in_bounded_time(answer, message):
    from segcore.large.distributed import check_scheduler

    held: list = []
    address, server = listening(answer, held)
    with server, pytest.raises(ClusterError, match=f"not a Dask scheduler \\({message}"):
        check_scheduler(address, timeout=0.5)


def test_a_bad_scheduler_address_is_one_line(model: Path, tmp_path: Path, capsys):
    code = predict_main(
        ["--model", str(model), "--out", str(tmp_path), "--scheduler", "foo", "x.tif"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "error: --scheduler foo: expected tcp://HOST:PORT"
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    from segcore.large.distributed import check_scheduler

    with pytest.raises(ClusterError, match="cannot connect"):
        check_scheduler(f"127.0.0.1:{port}", timeout=1)


@pytest.mark.slow
def test_a_lost_scheduler_ends_in_one_line_and_keeps_the_saved_blocks(model, tmp_path, capsys):
    from dask.distributed import LocalCluster

    from segcore.large.distributed import BlockCluster, check_scheduler

    local = LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
        host="127.0.0.1", dashboard_address=None,
    )  # fmt: skip
    address = local.scheduler_address
    assert check_scheduler(address) == address
    cluster = BlockCluster(scheduler=address)
    image, out = tmp_path / "img.tif", tmp_path / "out"
    tifffile.imwrite(image, nuclei(0, (256, 256)))
    out.mkdir()
    results = cluster.results  # the scheduler goes after the first block

    def losing(job, blocks):
        for k, result in enumerate(results(job, blocks)):
            yield result
            if k == 0:
                local.close()

    cluster.results = losing
    with pytest.raises(ClusterError, match="the Dask scheduler was lost"):
        segment_large(
            Engine(model), ImageSpec(str(image)), out, "img", block_size=64, cluster=cluster
        )
    assert list((out / "img_blocks.partial").glob("block-*.npz"))
    cluster.client.close()
