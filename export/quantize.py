"""A shipped model at another precision: ``python -m export.quantize models/NAME.onnx --data DIR``.

For a model whose training run folder is gone: the float32 weights come back from the ONNX file
(fp16-weight graphs hold them exactly), the run's train/val/test split is re-created from the
card's ``split`` and ``seed`` over ``--data`` (the data folder training used; its test split must
have the card's test image count), and `export.precision` calibrates on the training images,
chooses float layers on the validation images and scores the test images. Writes
``<out>/<NAME>_<precision>.onnx`` + card, or exits 2 writing nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx

from export import PRECISIONS, ExportError, add_int8_flags
from export.graph import to_fp32
from export.install import check_free, install, installed_line
from export.precision import CALIBRATION_IMAGES, with_precision
from export.run_folder import add_data_flag, shipped_split
from segcore import cli
from segcore.card import ModelCard
from segcore.errors import ModelError
from segcore.inference.onnx_runner import quiet_onnxruntime_logs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = cli.parser("python -m export.quantize", __doc__.split("\n")[0])
    p.add_argument("model", type=Path, metavar="MODEL", help="models/NAME.onnx (card beside it)")
    add_data_flag(p)
    p.add_argument("--precision", choices=PRECISIONS, default="int8", help="precision to write")
    p.add_argument("--out", type=Path, help="output folder (default: the model's folder)")
    p.add_argument("--name", help="model name (default: NAME_<precision>)")
    p.add_argument("--force", action="store_true", help="replace a model of the same name in --out")
    p.add_argument(
        "--calibration-images",
        type=cli.positive_int,
        default=CALIBRATION_IMAGES,
        help="training images whose activations set the int8 ranges",
    )
    p.add_argument(
        "--max-images", type=cli.positive_int, help="score on at most N val and N test images"
    )
    add_int8_flags(p)
    return p.parse_args(argv)


def convert(
    model: Path,
    data: Path | list[Path],
    precision: str,
    out: Path,
    name: str | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
    max_images: int | None = None,
    activations: str = "auto",
    force: bool = False,
    quant_format: str = "auto",
) -> dict:
    """Write ``model`` at ``precision`` into ``out``; returns the new card. Raises ExportError
    (also when ``out`` holds a model of that name and ``force`` is not given)."""
    try:
        source = ModelCard.read(model.with_suffix(".json")).raw
        proto = onnx.load(model)
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    except (OSError, onnx.onnx_cpp2py_export.checker.ValidationError, ValueError) as exc:
        raise ExportError(f"{model}: not a readable ONNX model ({exc})") from exc
    name = name or f"{source.get('name', model.stem)}_{precision}"
    check_free(out, name, force)
    split = shipped_split(source, data, check_test=not max_images)
    card = {k: v for k, v in source.items() if not k.startswith(("fp32_", "fp16_", "parity"))}
    card.update(
        name=name,
        derived_from=f"{source.get('name', model.stem)}.onnx ({source.get('precision', 'fp32')})",
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    )
    with tempfile.TemporaryDirectory(prefix="segcore-precision-") as tmp:
        variant = with_precision(
            to_fp32(proto),
            card,
            split,
            precision,
            Path(tmp),
            calibration_images=calibration_images,
            max_images=max_images,
            activations=activations,
            quant_format=quant_format,
        )
        card.update(variant.card)
        # the training history stays with the model trained; the card names it (derived_from)
        install(variant.path, None, card, out, name)
    return card


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    cli.setup_logging()
    return cli.run_command(lambda: _quantize(parse_args(argv)))


def _quantize(args: argparse.Namespace) -> int:
    quiet_onnxruntime_logs()  # the CUDA provider's fallback notice on CPU-only machines
    out = args.out or args.model.parent
    card = convert(
        args.model,
        args.data,
        args.precision,
        out,
        args.name,
        args.calibration_images,
        args.max_images,
        args.activations,
        args.force,
        args.quant_format,
    )
    print(installed_line(out, card, f"fp32 Dice {card['fp32_test_dice']:.4f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
