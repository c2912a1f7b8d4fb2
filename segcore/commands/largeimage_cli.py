"""The microscopy and large-image options of ``python -m segcore.predict`` (light to import:
``--help`` loads neither scipy nor onnxruntime; the work is in `segcore.large.largeimage`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm import tqdm

from segcore import cli
from segcore.errors import ClusterError, UserError, reason
from segcore.io.microscopy import PIXEL_SIZE_RANGE_UM, PROJECTIONS, pixel_size_ok
from segcore.io.names import printable

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the work's modules load when a file needs them, not for --help
    from segcore.large.distributed import BlockCluster
    from segcore.large.largeimage import ImageSpec, LargeEngine


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
        type=pixel_size,
        metavar="UM",
        help=f"pixel size in µm, {PIXEL_SIZE_RANGE_UM[0]:g} to {PIXEL_SIZE_RANGE_UM[1]:g} "
        "(default: from the file's metadata, if any)",
    )
    g.add_argument(
        "--object-diameter",
        metavar="PX|UMum",
        help="typical nucleus diameter in pixels (30) or µm (12um): the image is rescaled so "
        "nuclei look as wide as the card's typical nucleus (18 px for the DSB models) to the "
        "model (default: no rescaling)",
    )


def pixel_size(text: str) -> float:
    """A pixel size in µm within `PIXEL_SIZE_RANGE_UM` (argparse type); INF and NaN refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not pixel_size_ok(value):
        low, high = PIXEL_SIZE_RANGE_UM
        raise argparse.ArgumentTypeError(f"{text}: must be {low:g} to {high:g} µm")
    return value


def open_cluster(args: argparse.Namespace) -> BlockCluster | None:
    """A `segcore.large.distributed.BlockCluster` for ``--workers``/``--scheduler``, else None;
    raises ClusterError (one line) for a scheduler that cannot be used."""
    if not (args.workers or args.scheduler):
        return None
    from segcore.large.distributed import BlockCluster

    return BlockCluster(args.workers, args.scheduler)


class LargeFiles:
    """The microscopy files of a ``predict`` run, with the plane options given: their thumbnail
    for the model check, and their segmentation block by block (`segcore.large.largeimage`)."""

    def __init__(self, args: argparse.Namespace, cluster: BlockCluster | None) -> None:
        """``args``: predict's options; ``cluster``: a `segcore.large.distributed.BlockCluster` or None."""
        self.args, self.cluster = args, cluster

    def spec(self, path: Path) -> ImageSpec:
        """The `segcore.large.largeimage.ImageSpec` of ``path`` under the plane options."""
        from segcore.large.largeimage import ImageSpec

        a = self.args
        return ImageSpec(str(path), a.channel, a.z, a.t, a.project)

    def thumbnail(self, path: Path, side: int) -> np.ndarray:
        """The selected plane of ``path``, every n-th pixel (at least ``side`` on its longer
        side), as 8-bit RGB mapped as before a model is chosen (`segcore.inference.model_input.plain_view`);
        raises ImageError."""
        from segcore.inference.model_input import plain_view

        image, _ = self.spec(path).open()
        step = max(1, max(image.width, image.height) // side)
        return plain_view(image.read_plane(step))

    def segment(self, engine: LargeEngine, path: Path, out_dir: Path, stem: str) -> dict:
        """Segment one file with ``engine``; its predictions.csv row. An unusable file gives an
        error row and one line on stderr, and so does an unexpected exception (as an internal
        error naming the file, its traceback with --verbose), so the batch goes on. A lost
        scheduler ends the run."""
        from segcore.large.largeimage import segment_large

        a = self.args
        try:
            result = segment_large(
                engine,
                self.spec(path),
                out_dir,
                stem,
                block_size=a.block_size,
                tta=a.tta,
                pixel_size_um=a.pixel_size,
                cluster=self.cluster,
                object_diameter=a.object_diameter,
            )
        except ClusterError:
            raise
        except UserError as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
        except (OSError, MemoryError) as exc:  # an output it cannot write, a file it cannot hold
            message = f"{path}: {reason(exc)}"
        except Exception as exc:  # a bug: said, and the other files still run
            log.debug("internal error on %s", path, exc_info=exc)
            message = f"{path}: internal error ({reason(exc)}); --verbose shows where"
        else:
            for line in result.notes:
                tqdm.write(line, file=sys.stderr)
            return result.row(path)
        tqdm.write(f"error: {printable(message)}", file=sys.stderr)
        return {"file": str(path), "error": message}
