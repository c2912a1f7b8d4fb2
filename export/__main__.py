"""Command line: ``python -m export RUN_DIR [--name NAME] [--out models] [--precision fp32|fp16|int8]
[--max-images N] [--force]``, or ``python -m export --ensemble RUN RUN ...`` for one model
averaging them.

Exit status 0 on success, 2 (one line on stderr, nothing written) on a bad run folder, a failed
check, or a model of that name already in ``--out`` (``--force`` replaces it).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from export import PRECISIONS, add_int8_flags
from segcore import cli
from segcore.training.quiet import quiet_tensorflow


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = cli.parser(
        "python -m export", "Export a training run's best model to ONNX with a model card."
    )
    p.add_argument(
        "run_dir",
        type=Path,
        nargs="?",
        metavar="RUN_DIR",
        help="folder written by segcore.commands.train",
    )
    p.add_argument(
        "--ensemble",
        type=Path,
        nargs="+",
        metavar="RUN",
        help="export these runs (e.g. segcore.commands.train --seeds members) as ONE model averaging them",
    )
    p.add_argument("--name", help="model name (default: <dataset>_<arch>[_<precision>])")
    p.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32; fp16 (half-size weights, float32 compute); int8 (static quantization "
        "calibrated on training images, its form chosen by speed and validation Dice, refused "
        "if it loses test Dice)",
    )
    p.add_argument(
        "--verbose", action="store_true", help="show TensorFlow's start-up notices (CUDA, oneDNN)"
    )
    p.add_argument("--force", action="store_true", help="replace a model of the same name in --out")
    p.add_argument(
        "--max-images", type=cli.positive_int, help="score on at most N val and N test images"
    )
    add_int8_flags(p)
    p.add_argument(
        "--bioimageio",
        action="store_true",
        help="also write <name>.bioimageio.zip, a BioImage Model Zoo package, beside the model",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    cli.setup_logging()
    return cli.run_command(lambda: _export(parse_args(argv)))


def _export(args: argparse.Namespace) -> int:
    from export import ExportError
    from export.install import check_free, default_name, installed_line
    from export.run_folder import read_run

    if (args.run_dir is None) == (args.ensemble is None):
        raise ExportError("give one RUN_DIR, or --ensemble RUN RUN ...")
    runs = [read_run(r) for r in (args.ensemble or [args.run_dir])]
    base = default_name(runs[0].config, args.precision)
    args.name = args.name or (f"{base}_ensemble{len(runs)}" if args.ensemble else base)
    check_free(args.out, args.name, args.force)
    # this command's own process: models trained under JAX export under TensorFlow
    os.environ["KERAS_BACKEND"] = "tensorflow"
    quiet_tensorflow(args.verbose, force=True)
    if not args.verbose:
        from segcore.inference.onnx_runner import quiet_onnxruntime_logs

        quiet_onnxruntime_logs()  # the CUDA provider's fallback notice on CPU-only machines
    from export.ensemble import export_ensemble
    from export.pipeline import export_run  # TensorFlow loads only for a valid run

    # tf2onnx logs each conversion step at INFO: stray lines around the one result line
    logging.getLogger("tf2onnx").setLevel(logging.INFO if args.verbose else logging.WARNING)

    if args.ensemble:
        card = export_ensemble(runs, args.out, args.name, args.precision, args.max_images)
    else:
        card = export_run(
            runs[0], args.out, args.name, args.precision, args.max_images, args.activations,
            args.quant_format,
        )  # fmt: skip
    check = card.get("parity_max_abs_diff", card.get("merge_max_abs_diff"))
    print(installed_line(args.out, card, f"parity {check:.2g}"))
    if args.bioimageio:
        from export.bioimageio import export_package

        package = export_package(args.out / f"{card['name']}.onnx", args.out, force=args.force)
        print(f"{package}: BioImage Model Zoo package, test_model passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
