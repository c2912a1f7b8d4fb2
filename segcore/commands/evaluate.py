"""Evaluate a run's best model on its test split: ``python -m segcore.evaluate RUN_DIR [--tta]``.

Writes test_per_image.csv (image, dice, iou, precision, recall, accuracy; instance runs add the
DSB score, F1 at IoU 0.5, count error and object counts), test_metrics.json (mean and median of
each, n_images, threshold) and triptychs/ (image | truth | prediction PNGs for random and for the
worst test images), each file atomically (`segcore.training.evaluation`). Scores are computed at
each image's original size, so they differ from the training-time ``val_dice``, which is
measured at the training size. The flags and files are checked before Keras loads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from segcore import cli
from segcore.errors import DataError

#: What evaluation reads from config.json and split.json.
NEEDED = (("config.json", ("img_size", "channels", "threshold")), ("split.json", ("root", "test")))


def _parser():
    p = cli.parser("python -m segcore.evaluate", __doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run's folder")
    p.add_argument("--tta", action="store_true", help="average predictions over the four flips")
    p.add_argument("--batch-size", type=cli.positive_int, default=8, help="images per batch")
    p.add_argument(
        "--threshold", type=cli.probability, help="mask threshold (default: the run's, 0.5)"
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up notices")
    return p


def check_run_files(run_dir: Path) -> None:
    """DataError naming the file when the run folder lacks what evaluation reads."""
    if not (run_dir / "best.keras").is_file():
        raise DataError(f"{run_dir}: no best.keras (not a finished run folder)")
    for name, keys in NEEDED:
        try:
            content = json.loads((run_dir / name).read_text())
            missing = [k for k in keys if k not in content]
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(f"{run_dir / name}: unreadable ({type(exc).__name__})") from None
        if missing:
            raise DataError(f"{run_dir / name}: no {', '.join(missing)} (not a run's file)")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 for bad input, no traceback)."""
    cli.setup_logging()

    def body() -> int:
        a = _parser().parse_args(argv)
        check_run_files(a.run_dir)
        from segcore.training.quiet import quiet_tensorflow

        quiet_tensorflow(a.verbose)
        from segcore.training.evaluation import evaluate_run, load_model

        s = evaluate_run(a.run_dir, a.tta, load_model(a.run_dir), a.batch_size, a.threshold)
        suffix = "_tta" if a.tta else ""
        print(
            f"{a.run_dir}: test dice mean {s['dice']['mean']:.4f} median "
            f"{s['dice']['median']:.4f} iou {s['iou']['mean']:.4f} ({s['n_images']} images"
            f"{', tta' if a.tta else ''}); wrote test_per_image{suffix}.csv, "
            f"test_metrics{suffix}.json and triptychs/ in {a.run_dir}"
        )
        return 0

    return cli.run_command(body)


if __name__ == "__main__":
    sys.exit(main())
