"""The microscopy and large-image options of ``python -m segcore.predict`` (light to import:
``--help`` loads neither scipy nor onnxruntime; the work is in `segcore.largeimage`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from segcore import cli
from segcore.errors import ImageError
from segcore.io.microscopy import PROJECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The microscopy and large-image options of ``python -m segcore.predict``."""
    g = parser.add_argument_group(
        "microscopy files and large images (TIFF, OME-TIFF, OME-Zarr; instance models)"
    )
    g.add_argument(
        "--block-size",
        type=cli.positive_int,
        help="block side in pixels; memory depends on it, not on the image (default: 4 of the "
        "model's tiles with their context, 3456 for the nuclei model)",
    )
    g.add_argument(
        "--workers",
        type=cli.positive_int,
        help="blocks on a local Dask cluster of N processes (default: this process)",
    )
    g.add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="blocks on a running Dask scheduler (default: none)",
    )
    g.add_argument(
        "--channel",
        metavar="N|NAME",
        help="channel with the nuclei (default: one named DAPI/Hoechst/DNA..., else the first)",
    )
    g.add_argument("--z", type=int, metavar="K", help="z plane of a stack (default: none)")
    g.add_argument("--t", type=int, metavar="K", help="time point of a series (default: none)")
    g.add_argument(
        "--project",
        choices=PROJECTIONS,
        help="project a z-stack instead of picking a plane (default: none)",
    )
    g.add_argument(
        "--pixel-size",
        type=_positive_float,
        metavar="UM",
        help="pixel size in µm (default: from the file's metadata, if any)",
    )
    g.add_argument(
        "--object-diameter",
        metavar="PX|UMum",
        help="typical nucleus diameter in pixels (30) or µm (12um): the image is rescaled so "
        "nuclei look as wide as the card's typical nucleus (18 px for the DSB models) to the "
        "model (default: no rescaling)",
    )


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def open_cluster(args: argparse.Namespace) -> object | None:
    """A `segcore.distributed.BlockCluster` for ``--workers``/``--scheduler``, else None."""
    if not (args.workers or args.scheduler):
        return None
    from segcore.distributed import BlockCluster

    return BlockCluster(args.workers, args.scheduler)


def large_handler(
    engine: object, args: argparse.Namespace, cluster: object | None
) -> Callable[[Path, Path, str], dict]:
    """``handle(path, out_dir, stem) -> predictions.csv row`` for one microscopy file."""

    from segcore.largeimage import ImageSpec, segment_large

    def handle(path: Path, out_dir: Path, stem: str) -> dict:
        """Segment one file; an unusable file gives an error row and one line on stderr."""
        spec = ImageSpec(str(path), args.channel, args.z, args.t, args.project)
        try:
            result = segment_large(
                engine,
                spec,
                out_dir,
                stem,
                block_size=args.block_size,
                tta=args.tta,
                pixel_size_um=args.pixel_size,
                cluster=cluster,
                object_diameter=args.object_diameter,
            )
        except ImageError as exc:
            tqdm.write(f"error: {exc}", file=sys.stderr)
            return {"file": str(path), "error": str(exc)}
        for line in result.notes:
            tqdm.write(line, file=sys.stderr)
        return result.row(path)

    return handle
