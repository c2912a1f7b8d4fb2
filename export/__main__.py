"""Command line: ``python -m export RUN_DIR [--name NAME] [--out-dir models] [--fp16] [--max-images N]``.

Exit status 0 on success, 2 (one line on stderr, nothing written) on a bad run folder or a
failed check.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from export import ExportError
from export.run_folder import read_run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a training run's best model to ONNX with a model card.",
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="folder written by segcore.train")
    p.add_argument("--name", help="model name (default: <dataset>_<arch>[_fp16])")
    p.add_argument("--out-dir", type=Path, default=Path("models"), help="default: models")
    p.add_argument("--fp16", action="store_true", help="half-precision weights, float32 I/O")
    p.add_argument("--max-images", type=int, help="score on at most N test images")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        run = read_run(args.run_dir)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from export.pipeline import export_run  # TensorFlow loads only for a valid run

        card = export_run(run, args.out_dir, args.name, args.fp16, args.max_images)
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = card["test_metrics"]
    print(
        f"{args.out_dir / card['name']}.onnx: {card['onnx_bytes'] / 1e6:.2f} MB {card['precision']}, "
        f"parity {card['parity_max_abs_diff']:.2g}, {card['test_split']} Dice {m['dice']:.4f} "
        f"on {m['n_images']} images"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
