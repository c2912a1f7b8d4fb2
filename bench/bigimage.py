"""Large images: megapixels per second and peak memory of the nuclei model, per path.

    python -m bench.bigimage [--speed-size 4096] [--block-size N] [--sizes 8192 16384]
        [--nuclei real|synthetic] [--compression zlib|none]
        [--model models/nuclei_instance_unet_bn.onnx] [--out FILE]

Generates 16-bit OME-TIFFs (12-bit values, tiled, written tile by tile so the generator itself
stays small) of real nuclei (``--nuclei real``, the default: 256x256 crops of the fluorescence
images in ``samples/dsb``, rotated and flipped at random, scaled to 12 bits with camera noise) or
of nuclei-like blobs on a camera background (``synthetic``), zlib-compressed unless
``--compression none``, then runs each measurement in a fresh subprocess and reads its peak
resident memory (``ru_maxrss`` from ``os.wait4``; for Dask the largest worker's, asked from each
worker before the cluster closes):

- speed, on one ``--speed-size`` image: in memory (the whole plane read, tiled, decoded at once),
  block-wise (``--block-size`` blocks, one process) and block-wise on 2 local Dask workers;
- memory, block-wise, on each of ``--sizes``: flat when the peak does not grow with the image.

``--speed-size 0`` skips the speed runs.

Writes ``bench/results/bigimage-<host>.json`` (or ``--out``) and prints one line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import tifffile

from bench.records import add_out_flag, write_records

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "nuclei_instance_unet_bn.onnx"
SAMPLES = ROOT / "samples" / "dsb" / "stage1_train"
TILE = 512


def nuclei_tiles(side: int, seed: int = 0) -> Iterator[np.ndarray]:
    """TILE x TILE uint16 tiles (row-major) of bright blobs (radius 5-12) on a noisy background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:TILE, :TILE]
    tiles_per_side = -(-side // TILE)
    for _ in range(tiles_per_side * tiles_per_side):
        tile = rng.normal(300, 30, (TILE, TILE))
        for _ in range(40):
            cy, cx, r = rng.integers(0, TILE, 2).tolist() + [rng.integers(5, 12)]
            tile[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = rng.integers(1500, 3500)
        yield np.clip(tile, 0, 4095).astype(np.uint16)


def fluorescence_sources(folder: Path = SAMPLES) -> list[np.ndarray]:
    """The grey (fluorescence) images under ``folder`` (DSB layout), as 8-bit planes."""
    from PIL import Image

    planes = []
    for path in sorted(folder.glob("*/images/*.png")):
        with Image.open(path, formats=["PNG"]) as im:
            rgb = np.asarray(im.convert("RGB"))
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            planes.append(rgb[..., 0])
    if not planes:
        raise SystemExit(f"no fluorescence images under {folder}")
    return planes


def real_tiles(side: int, seed: int = 0) -> Iterator[np.ndarray]:
    """TILE x TILE uint16 tiles (row-major), each four quarter-tile crops of real fluorescence
    nuclei images (every source is at least a quarter tile), rotated and flipped at random."""
    rng = np.random.default_rng(seed)
    sources = fluorescence_sources()
    half = TILE // 2
    tiles_per_side = -(-side // TILE)
    for _ in range(tiles_per_side * tiles_per_side):
        tile = np.empty((TILE, TILE), np.float32)
        for top, left in ((0, 0), (0, half), (half, 0), (half, half)):
            plane = np.rot90(sources[rng.integers(len(sources))], rng.integers(4))
            if rng.integers(2):
                plane = plane[:, ::-1]
            y = rng.integers(plane.shape[0] - half + 1)
            x = rng.integers(plane.shape[1] - half + 1)
            tile[top : top + half, left : left + half] = plane[y : y + half, x : x + half]
        tile = tile * 16 + rng.normal(100, 10, tile.shape)
        yield np.clip(tile, 0, 4095).astype(np.uint16)


def write_image(
    path: Path, side: int, nuclei: str = "real", compression: str | None = "zlib"
) -> Path:
    """A ``side`` x ``side`` 16-bit tiled OME-TIFF, 0.5 µm pixels, tiles compressed with
    ``compression`` (None: stored raw)."""
    meta = {"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
    tiles = real_tiles(side) if nuclei == "real" else nuclei_tiles(side)
    tifffile.imwrite(
        path,
        tiles,
        shape=(side, side),
        dtype=np.uint16,
        tile=(TILE, TILE),
        compression=compression,
        bigtiff=True,
        metadata=meta,
    )
    return path


def child(mode: str, model: Path, image: Path, block_size: int, out: Path) -> dict:
    """One measurement in this (fresh) process; returns seconds and peak memory."""
    from segcore.inference.engine import Engine
    from segcore.inference.onnx_runner import quiet_onnxruntime_logs
    from segcore.large.largeimage import ImageSpec, segment_large

    quiet_onnxruntime_logs()
    engine = Engine(model)
    spec = ImageSpec(str(image))
    block_size = block_size or None
    start = time.perf_counter()
    workers_peak = 0
    if mode == "in-memory":
        count = in_memory(engine, spec)
    elif mode == "dask-2":
        from segcore.large.distributed import BlockCluster

        with BlockCluster(workers=2) as cluster:
            start = time.perf_counter()
            count = segment_large(
                engine, spec, out, "img", block_size=block_size, cluster=cluster
            ).count
            peaks = cluster.client.run(_own_peak)
            workers_peak = max(peaks.values())
    else:
        count = segment_large(engine, spec, out, "img", block_size=block_size).count
    return {"seconds": time.perf_counter() - start, "count": count, "workers_peak": workers_peak}


def _own_peak() -> int:
    """This process's peak resident memory in bytes."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def in_memory(engine: object, spec: object) -> int:
    """The whole plane at once: read, map, predict by tiles, decode, measure."""
    from segcore.inference.instances import decode, measure_objects
    from segcore.large.blockplan import predict_channels, to_model_channels
    from segcore.large.largeimage import image_mapping

    image, _ = spec.open()  # type: ignore[attr-defined]
    pixels = image.read(0, image.height, 0, image.width)
    x = to_model_channels(image_mapping(engine, image).apply(pixels), engine.channels)  # type: ignore[attr-defined]
    channels = predict_channels(engine, x)
    labels = decode(channels[..., -1], channels[..., 0], engine.instances)  # type: ignore[attr-defined]
    return len(measure_objects(labels, pixels[..., 0]))


def measure(mode: str, args: argparse.Namespace, image: Path, side: int) -> dict:
    """Run `child` in a subprocess; its result with peak memory and megapixels per second."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "bench.bigimage", "--child", mode, "--image", str(image)]
        command += [
            "--model",
            str(args.model),
            "--block-size",
            str(args.block_size),
            "--child-out",
            out,
        ]
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT
        )
        data = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        return {"mode": mode, "side": side, "error": f"exit {os.waitstatus_to_exitcode(status)}"}
    result = json.loads(data.decode().strip().splitlines()[-1])
    peak = max(usage.ru_maxrss * 1024, result.pop("workers_peak"))
    return {
        "mode": mode,
        "side": side,
        "block_size": args.block_size or "default",
        "seconds": round(result["seconds"], 1),
        "mp_per_s": round(side * side / 1e6 / result["seconds"], 3),
        "peak_rss_gb": round(peak / 2**30, 2),
        "nuclei": result["count"],
        "image": args.nuclei,
        "compression": args.compression,
        "file_mb": round(image.stat().st_size / 1e6, 1),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m bench.bigimage", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=MODEL)
    p.add_argument("--speed-size", type=int, default=4096)
    p.add_argument("--block-size", type=int, default=0, help="0: the default for the model")
    p.add_argument("--sizes", type=int, nargs="*", default=[8192, 16384])
    p.add_argument("--nuclei", choices=["real", "synthetic"], default="real")
    p.add_argument("--compression", choices=["zlib", "none"], default="zlib")
    add_out_flag(p, "bigimage")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--image", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(
            json.dumps(child(args.child, args.model, args.image, args.block_size, args.child_out))
        )
        return 0
    rows = []
    compress = None if args.compression == "none" else args.compression
    with tempfile.TemporaryDirectory() as tmp:
        if args.speed_size:
            speed = write_image(Path(tmp) / "speed.ome.tif", args.speed_size, args.nuclei, compress)
            for mode in ("in-memory", "block-wise", "dask-2"):
                rows.append(measure(mode, args, speed, args.speed_size))
                print(json.dumps(rows[-1]), flush=True)
        for side in args.sizes:
            image = write_image(Path(tmp) / f"{side}.ome.tif", side, args.nuclei, compress)
            rows.append(measure("block-wise", args, image, side))
            print(json.dumps(rows[-1]), flush=True)
            image.unlink()
    write_records(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
