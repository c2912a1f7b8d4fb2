"""Tune an instance run's decoding on its validation split:
``python -m segcore.commands.instance_eval RUN_DIR --tune [--tile N] [--overlap F]``.

Predicts the validation images once with the run's best model (tiled at native scale), searches
the watershed decoding settings for the best mean DSB 2018 score and writes ``RUN_DIR/decode.json``
(`segcore.training.tuning`); ``python -m export`` copies them into the model card. The flags are
checked before Keras loads.
"""

from __future__ import annotations

import sys
from pathlib import Path

from segcore import cli
from segcore.card import TileSpec
from segcore.errors import DataError, UserError
from segcore.run_config import RunConfig


def _parser():
    p = cli.parser("python -m segcore.commands.instance_eval", __doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="an instance run's folder")
    p.add_argument("--tune", action="store_true", help="search decoding settings on val")
    p.add_argument(
        "--tile", type=cli.positive_int, help="tile size for prediction (default: the run's)"
    )
    p.add_argument("--overlap", type=cli.overlap, help="tile overlap (default: the run's)")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up notices")
    return p


def _tile(config: RunConfig, size: int | None, overlap: float | None) -> TileSpec:
    """The run's tile with the sizes the user gave; DataError when not a multiple of the stride."""
    tile = config.tile or TileSpec(config.settings.img_size, 0.25)
    tile = TileSpec(size or tile.size, tile.overlap if overlap is None else overlap)
    stride = 2**config.depth
    if tile.size % stride:
        raise DataError(f"--tile {tile.size}: must be a multiple of {stride} (2**depth)")
    return tile


def main(argv: list[str] | None = None) -> int:
    """Tune decoding on the validation split and write RUN_DIR/decode.json."""
    cli.setup_logging()

    def body() -> int:
        a = _parser().parse_args(argv)
        if not a.tune:
            raise UserError(f"{a.run_dir}: nothing to do; give --tune (see --help)")
        if not (a.run_dir / "best.keras").is_file():
            raise DataError(f"{a.run_dir}: no best.keras (not a finished run folder)")
        config = RunConfig.read(a.run_dir)
        if config.settings.target != "instance":
            raise DataError(f"{a.run_dir}: not an instance run (--target instance)")
        tile = _tile(config, a.tile, a.overlap)
        from segcore.training.quiet import quiet_tensorflow

        quiet_tensorflow(a.verbose)
        from segcore.training.evaluation import load_model
        from segcore.training.tuning import tune_decoding, write_decode

        settings, score, trials = tune_decoding(a.run_dir, load_model(a.run_dir), tile)
        best = write_decode(a.run_dir, settings, tile, trials)["val"]
        print(
            f"{a.run_dir}: val DSB score {score:.4f} F1@0.5 {best['f1_iou50']:.4f} count error "
            f"{best['count_error']:.3f} with {settings.to_json()} (tile {tile.to_json()}); "
            f"wrote {a.run_dir / 'decode.json'}"
        )
        return 0

    return cli.run_command(body)


if __name__ == "__main__":
    sys.exit(main())
