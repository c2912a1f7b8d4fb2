"""Write a resized, merged copy of a dataset in the plain images/ + masks/ layout.

``python -m segcore.data.pack SRC DST --img-size 256``: every pair is decoded with the training
code, nuclei masks merged, both resized to SIZE x SIZE and saved as PNG (images already at that size
and in JPEG are copied byte for byte). Stems are kept and sorted the same way, so the same
``--seed``/``--split`` selects the same images in the copy as in the original. Used to ship a
compact training set to a remote GPU machine.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from segcore import cli
from segcore.data.layouts import FORMATS, Sample, find_samples, load_sample
from segcore.data.sources import DATASET_MARKER, dataset_name
from segcore.errors import ImageError
from segcore.inference.preprocess import resize_image, resize_mask

log = logging.getLogger(__name__)


def _pack_one(sample: Sample, dst: Path, size: int) -> str | None:
    try:
        image, mask = load_sample(sample)
    except ImageError as exc:
        return str(exc)
    stem = sample.name
    if image.shape[:2] == (size, size) and sample.image.suffix.lower() in (".jpg", ".jpeg"):
        shutil.copyfile(sample.image, dst / "images" / f"{stem}.jpg")
    else:
        Image.fromarray(resize_image(image, (size, size))).save(dst / "images" / f"{stem}.png")
    small = resize_mask(mask, (size, size)).astype(np.uint8) * 255
    Image.fromarray(small).save(dst / "masks" / f"{stem}.png")
    return None


def pack(src: Path, dst: Path, size: int, fmt: str = "auto") -> int:
    """Pack every readable pair of ``src`` into ``dst``; returns the number written."""
    fmt, samples = find_samples(src, fmt)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    (dst / "masks").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(4) as pool:
        errors = list(pool.map(lambda s: _pack_one(s, dst, size), samples))
    dataset = dataset_name(fmt, src)
    marker = {"dataset": dataset, "source": str(Path(src).resolve()), "size": size}
    (dst / DATASET_MARKER).write_text(json.dumps(marker))
    for e in filter(None, errors):
        log.warning("skipped %s", e)
    return sum(e is None for e in errors)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = cli.parser("python -m segcore.data.pack", __doc__.split("\n")[0])
    p.add_argument("src", type=Path, metavar="SRC", help="a dataset folder (any layout)")
    p.add_argument("dst", type=Path, metavar="DST", help="the folder of the packed copy")
    p.add_argument(
        "--img-size", dest="size", type=cli.positive_int, default=256, help="square size"
    )
    p.add_argument("--format", default="auto", choices=FORMATS, help="dataset layout")
    cli.setup_logging()

    def body() -> int:
        a = p.parse_args(argv)
        n = pack(a.src, a.dst, a.size, a.format)
        print(f"packed {n} pairs into {a.dst}")
        return 0

    return cli.run_command(body)


if __name__ == "__main__":
    sys.exit(main())
