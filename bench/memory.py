"""Peak memory of ``segcore.commands.predict`` per image size, each image in a fresh subprocess.

    python -m bench.memory [--model models/isic_improved_unet.onnx] [--sizes 1000 4000 8900]

For each size it writes a square PNG (a disk on a plain background, small on disk like the
hostile 230 KB 8900x8900 PNG of issue 11), runs ``python -m segcore.predict`` on it in a child
process and reads that child's peak resident memory (``ru_maxrss`` from ``os.wait4``). Writes
``bench/results/memory-<tag>.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.records import add_out_flag, write_records
from segcore.paths import REPO_ROOT

DEFAULT_SIZES = (1000, 4000, 8900)


def disk_png(path: Path, side: int) -> Path:
    """A ``side`` x ``side`` RGB PNG of a brown disk on skin colour, built row band by band."""
    img = Image.new("RGB", (side, side), (220, 190, 170))
    band = 512
    r = side * 0.35
    for top in range(0, side, band):
        yy, xx = np.mgrid[top : min(side, top + band), :side]
        inside = (yy - side / 2) ** 2 + (xx - side / 2) ** 2 < r * r
        rows = np.where(inside[..., None], [150, 90, 60], [220, 190, 170]).astype(np.uint8)
        img.paste(Image.fromarray(rows), (0, top))
    img.save(path, optimize=True)
    return path


def peak_rss(command: Sequence[str]) -> tuple[int, int, float]:
    """Run ``command``; returns (exit status, its peak resident memory in bytes, seconds)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss * 1024, time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.memory",
        description=__doc__.split("\n")[0],
    )
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "isic_improved_unet.onnx")
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    p.add_argument("--tta", action="store_true", help="predict with the four flips")
    add_out_flag(p, "memory")
    args = p.parse_args(argv)
    if not args.model.is_file():
        print(f"error: --model {args.model}: not found", file=sys.stderr)
        return 2
    records = []
    with tempfile.TemporaryDirectory(prefix="segcore-memory-") as tmp:
        baseline = [sys.executable, "-c", "import segcore.inference.engine"]
        _, base_bytes, _ = peak_rss(baseline)
        for side in args.sizes:
            image = disk_png(Path(tmp) / f"disk{side}.png", side)
            out = Path(tmp) / f"out{side}"
            command = [sys.executable, "-m", "segcore.predict", str(image)]
            status, peak, seconds = peak_rss(
                [*command, "--model", str(args.model), "--out", str(out)] + ["--tta"] * args.tta
            )
            records.append(
                {
                    "width": side,
                    "height": side,
                    "megapixels": side * side / 1e6,
                    "png_bytes": image.stat().st_size,
                    "peak_rss_bytes": peak,
                    "import_rss_bytes": base_bytes,
                    "seconds": seconds,
                    "exit_status": status,
                    "model": args.model.stem,
                    "tta": args.tta,
                }
            )
            print(
                f"{side}x{side} ({side * side / 1e6:5.1f} MP, PNG {image.stat().st_size / 1e3:6.0f} KB):"
                f" peak {peak / 1e6:7.0f} MB, {seconds:5.1f} s, exit {status}"
            )
    print(f"(importing segcore.inference.engine alone peaks at {base_bytes / 1e6:.0f} MB)")
    path = write_records(args.out, records)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
