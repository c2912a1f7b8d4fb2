"""End-to-end latency of nuclei as objects on a 1024x1024 image (tiled model, instances, table).

    python -m bench.nuclei_speed [--model models/NAME.onnx] [--image PNG] [--repeats N]
        [--threads 2] [--out bench/results/nuclei-speed.json]

The image is ``--image``, else a 1024x1024 mosaic of the bundled ``samples/dsb`` images at their
own pixel scale (each tiled by mirroring to fill its cell). One call of `Engine.predict` on the
PNG's bytes is timed: decode, tiles through onnxruntime, watershed decoding and the per-nucleus
table. Prints the median and p90 over ``--repeats`` and the share of each stage.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from segcore.atomic import write_text
from segcore.data import find_samples
from segcore.inference.engine import Engine
from segcore.inference.instances import decode, measure_objects
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.inference.preprocess import load_image
from segcore.paths import REPO_ROOT

SIZE = 1024
CELL = 256


def mosaic(samples_dir: Path = REPO_ROOT / "samples" / "dsb", size: int = SIZE) -> np.ndarray:
    """A size x size RGB mosaic of real DSB sample images at native scale (CELL-pixel cells)."""
    _, samples = find_samples(samples_dir, "dsb")
    images = [load_image(s.image) for s in samples]
    out = np.zeros((size, size, 3), np.uint8)
    cells = [(r, c) for r in range(0, size, CELL) for c in range(0, size, CELL)]
    for i, (r, c) in enumerate(cells):
        img = images[i % len(images)]
        reps = (-(-CELL // img.shape[0]), -(-CELL // img.shape[1]), 1)
        out[r : r + CELL, c : c + CELL] = np.tile(img, reps)[:CELL, :CELL]
    return out


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the latency and writes the JSON record when ``--out`` is given."""
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.nuclei_speed",
        description=__doc__,
    )
    p.add_argument(
        "--model", type=Path, default=REPO_ROOT / "models" / "nuclei_instance_unet_bn.onnx"
    )
    p.add_argument("--image", type=Path, help="default: a mosaic of samples/dsb")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    quiet_onnxruntime_logs()
    engine = Engine(a.model, threads=a.threads)
    if engine.instances is None:
        print(
            f"error: {a.model}: not an instance model (no 'instances' in its card)", file=sys.stderr
        )
        return 2
    pixels = load_image(a.image) if a.image else mosaic()
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    data = buf.getvalue()
    engine.predict(data)  # warm-up
    total = _timed(lambda: engine.predict(data), a.repeats)
    channels = engine.tiled_channels(pixels)
    model_s = _timed(lambda: engine.tiled_channels(pixels), max(1, a.repeats // 2))
    decode_s = _timed(lambda: decode(channels[..., -1], channels[..., 0], engine.instances), 3)
    labels = decode(channels[..., -1], channels[..., 0], engine.instances)
    table_s = _timed(lambda: measure_objects(labels, pixels), 3)
    record = {
        "model": engine.name,
        "image": str(a.image) if a.image else f"{SIZE}x{SIZE} mosaic of samples/dsb",
        "size": list(pixels.shape[:2]),
        "tile": engine.card.tile.to_json(),
        "precision": engine.card.get("precision"),
        "threads": a.threads,
        "nuclei": int(labels.max()),
        "e2e_seconds_median": float(np.median(total)),
        "e2e_seconds_p90": float(np.percentile(total, 90)),
        "model_seconds_median": float(np.median(model_s)),
        "decode_seconds_median": float(np.median(decode_s)),
        "objects_seconds_median": float(np.median(table_s)),
        "repeats": a.repeats,
        "cpu": platform.processor() or platform.machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    print(
        f"{engine.name}: {record['size'][1]}x{record['size'][0]} with {record['nuclei']} nuclei, "
        f"{a.threads} threads: end to end {record['e2e_seconds_median']:.3f} s median "
        f"(p90 {record['e2e_seconds_p90']:.3f}); model {record['model_seconds_median']:.3f} s, "
        f"watershed {record['decode_seconds_median']:.3f} s, "
        f"table {record['objects_seconds_median']:.3f} s"
    )
    if a.out:
        write_text(a.out, json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
