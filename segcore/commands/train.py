"""Train a U-Net variant on an images/masks dataset: ``python -m segcore.train --data DIR ...``.

Writes a run folder: best.keras (the best epoch), history.csv, config.json, split.json,
checkpoint/ (for --resume), test_metrics.json and test_per_image.csv; every file atomically.
With no arguments it trains a small model on the real samples bundled in samples/isic, so a new
user sees it work. The flags are parsed and checked before Keras loads (``--help`` is instant);
the loop itself is `segcore.training.loop`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from segcore import cli
from segcore.data.layouts import FORMATS
from segcore.errors import DataError
from segcore.inference.instances import MARKERS
from segcore.inference.preprocess import NORMALIZATIONS
from segcore.models import ARCHITECTURES
from segcore.run_config import (
    DEMO_SIZING,
    LOSSES,
    SCHEDULES,
    TARGETS,
    RunConfig,
    TrainConfig,
    check_config,
    init_path,
)
from segcore.training.distribute import STRATEGIES

FEW_TEST_IMAGES = 10  # below this, the end of a run says the test score is noisy


def _parser() -> argparse.ArgumentParser:
    """The flags; every default is None so that a flag the user gave can be told apart (the help
    shows the value that applies)."""
    d = TrainConfig()
    p = cli.parser("python -m segcore.train", __doc__.split("\n")[0], show_defaults=False)
    p.set_defaults(**{k: None for k in ("augment", "mixed_precision", "tensorboard")})
    add = p.add_argument
    add(
        "--data",
        action="append",
        help="dataset folder; repeat for several sources, each split on its own "
        "(default: the bundled samples/isic demo)",
    )
    add(
        "--source-weights",
        metavar="W1,W2,...",
        help="with several --data: sampling weight of each source (default 1 each)",
    )
    add("--format", choices=FORMATS, help=f"dataset layout (default {d.format})")
    add("--arch", choices=list(ARCHITECTURES), help=f"architecture (default {d.arch})")
    add("--base-filters", type=cli.positive_int, help="filters at the first level (per arch)")
    add("--depth", type=cli.positive_int, help=f"down-sampling steps (default {d.depth})")
    add("--img-size", type=cli.positive_int, help=f"square training size (default {d.img_size})")
    add(
        "--channels",
        type=int,
        choices=[1, 3],
        help=f"1 = grayscale, 3 = RGB (default {d.channels})",
    )
    add("--epochs", type=cli.positive_int, help=f"epochs (default {d.epochs})")
    add("--batch-size", type=cli.positive_int, help=f"global batch size (default {d.batch_size})")
    add("--lr", type=cli.positive_float, help=f"initial Adam learning rate (default {d.lr})")
    add("--loss", choices=LOSSES, help=f"loss (default {d.loss})")
    add(
        "--schedule",
        choices=SCHEDULES,
        help=f"LR: ReduceLROnPlateau or cosine (default {d.schedule})",
    )
    add("--patience", type=cli.positive_int, help=f"early-stopping patience (default {d.patience})")
    add("--split", help=f"train,val,test fractions (default {d.split})")
    add("--seed", type=int, help=f"random seed of split and training (default {d.seed})")
    add("--init-seed", type=int, help="seed of weights and augmentation only (default --seed)")
    add("--seeds", help="S1,S2,...: one ensemble member per --init-seed into <out>-seed<S>")
    add("--parallel", type=cli.positive_int, help="with --seeds: members trained at once (1)")
    add("--out", help="run folder (default runs/<arch>-<dataset>-<time>)")
    add("--resume", metavar="RUN_DIR", help="continue an interrupted or finished run")
    _add_run_flags(p, d)
    return p


def _add_run_flags(p: argparse.ArgumentParser, d: TrainConfig) -> None:
    """The flags about how a run computes and what it starts from."""
    add = p.add_argument
    add("--mixed-precision", action="store_true", help="bfloat16 compute, float32 weights")
    add("--tensorboard", action="store_true", help="TensorBoard logs in RUN_DIR/tb")
    add(
        "--distribute",
        choices=STRATEGIES,
        help="data-parallel: Keras DataParallel (JAX), all devices and processes; "
        f"mirrored: TensorFlow MirroredStrategy, local GPUs (default {d.distribute})",
    )
    add("--no-augment", dest="augment", action="store_false", help="train without augmentation")
    add("--skip-unmatched", action="store_true", default=None, help="leave out unmatched images")
    add("--workers", type=cli.non_negative_int, help="data worker threads (default 0 = auto)")
    add(
        "--time-limit",
        type=float,
        metavar="MINUTES",
        help="stop after the last epoch that fits in this many minutes (default 0 = none)",
    )
    add("--deep-supervision", choices=["on", "off"], help="unetpp side outputs (default on)")
    add(
        "--target",
        choices=TARGETS,
        help="mask: resized semantic mask; instance: marker + foreground on native-scale crops "
        f"of --img-size (nuclei as objects) (default {d.target})",
    )
    add(
        "--markers",
        choices=MARKERS,
        help="with --target instance: the channel that separates touching nuclei, their inner "
        f"boundary ring or a distance-to-edge map (default {d.markers})",
    )
    add(
        "--init-from",
        metavar="MODEL",
        help="fine-tune: start from the weights of a trained model of the same architecture and "
        "outputs (a .keras file, or a run folder's best.keras); use a lower --lr",
    )
    add(
        "--invert-brightfield",
        action="store_true",
        default=None,
        help="invert bright-field images before the model (recorded in the card)",
    )
    add(
        "--stain-jitter",
        type=float,
        metavar="S",
        help="HED-space colour jitter of H&E / colour-stained images, strength S (default 0 = off)",
    )
    add(
        "--normalization",
        choices=NORMALIZATIONS,
        help="model input: divide_by_255, or percentile (each image's 1st-99.8th percentiles "
        f"to 0-1, recorded in the card) (default {d.normalization})",
    )
    add(
        "--blur-noise",
        type=float,
        metavar="P",
        help="augmentation: probability of a Gaussian blur, and of Gaussian noise (default 0)",
    )
    add("--verbose", action="store_true", help="show TensorFlow's start-up notices")


def parse_args(argv: list[str]) -> tuple[TrainConfig, str | None]:
    """Parse flags into a TrainConfig (and the run folder to resume, if any).

    Without --data the bundled demo's sizing applies (explicit flags still win). With --resume
    the run's config.json is read back and only RESUMABLE settings may change; raises DataError
    (one line naming the flag or file) for a bad value.
    """
    a = _parser().parse_args(argv)
    fields = TrainConfig.__dataclass_fields__
    given = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    if a.data is not None:
        given["data"] = a.data[0] if len(a.data) == 1 else a.data
    if a.deep_supervision is not None:
        given["arch_kwargs"] = {"deep_supervision": a.deep_supervision == "on"}
    if a.resume is not None:
        return RunConfig.read(Path(a.resume)).resumed(given), a.resume
    if a.markers is not None and a.target != "instance":
        raise DataError(f"--markers {a.markers}: only with --target instance")
    cfg = TrainConfig(**((DEMO_SIZING if a.data is None else {}) | given))
    check_config(cfg)
    if cfg.init_from:
        init_path(cfg.init_from)  # a typo fails now, before the data are read
    return cfg, None


def _verbose_flag(argv: list[str]) -> bool:
    """Whether --verbose was given, read before anything else."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--verbose", action="store_true")
    return early.parse_known_args(argv)[0].verbose


def _report(run_dir: Path) -> None:
    """The run folder and its test score, with a word on small test sets."""
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    n, dice = metrics["n_images"], metrics["dice"]
    print(f"run folder: {run_dir}  test dice {dice['mean']:.4f} on {n} images")
    if n < FEW_TEST_IMAGES:
        print(
            f"note: a mean over {n} test images is noisy (one image moves it by up to "
            f"{1 / max(n, 1):.2f}) and differs from the best validation Dice, measured on other "
            "images at the training size; use a full data set (--data) for a reliable score"
        )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 for bad input, no traceback)."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a == "--seeds" or a.startswith("--seeds=") for a in argv):
        from segcore.commands.members import main as train_members

        return train_members(argv)
    verbose = _verbose_flag(argv)
    cli.setup_logging()

    def body() -> int:
        cfg, resume = parse_args(argv)
        # the data are found before Keras loads: a wrong --data folder is named at once
        found = None if resume else cfg.find_data()
        from segcore.training.quiet import quiet_tensorflow

        quiet_tensorflow(verbose)
        from segcore.training.loop import train

        run_dir = train(cfg, Path(resume) if resume else None, found)
        if run_dir is not None:
            _report(run_dir)
        return 0

    return cli.run_command(body)


if __name__ == "__main__":
    sys.exit(main())
