"""A 16-bit OME-TIFF mosaic of real DSB fluorescence images: does it score as its images do?

    python -m bench.mosaic [--data /work/shared/data/dsb2018/stage1_train] [--rule percentile]
        [--block-size N] [--gap 32] [--subset val|test] [--border 24] [--training-percentiles]

The ``--subset`` split (``test`` by default; choose settings on ``val``) of the shipped
instance model (its card's ``split`` and ``seed``) gives the fluorescence images (grey: R = G =
B); they are placed in a grid with ``--gap`` black pixels between them, scaled to 16 bits
(x 257), and written as one tiled OME-TIFF. The mosaic is segmented block by block
(`segcore.large.largeimage`); each image's cell is cut out of the labels and scored against its
truth (DSB 2018 score, count error) next to the same image segmented alone (PNG,
``divide_by_255``), over all nuclei and over the interior ones: nuclei (true and found) with no
pixel within ``--border`` pixels of the image's edge, where the mosaic's unrelated neighbours and
black gaps cannot reach. ``--training-percentiles`` prints the training images' 1st and 99.8th
intensity percentiles that the ``percentile`` rule maps to. Writes bench/results/mosaic-*.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from segcore.data.layouts import find_samples, load_labels
from segcore.data.split import make_split, parse_fractions
from segcore.inference.engine import Engine
from segcore.inference.instances import remove_small
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.io.labels_zarr import read_labels
from segcore.large.largeimage import ImageSpec, segment_large
from segcore.scoring.matching import instance_scores

MODEL = Path("models/nuclei_instance_unet_bn.onnx")
DATA = Path("/work/shared/data/dsb2018/stage1_train")
RESULTS = Path(__file__).resolve().parent / "results"
COLUMNS = 7


def is_fluorescence(image: np.ndarray) -> bool:
    """Grey (R = G = B) images: the fluorescence part of DSB 2018."""
    return bool(
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 1], image[..., 2])
    )


def split_samples(card: dict, data: Path) -> dict:
    """The model's train/val/test split of ``data`` (its card's split and seed)."""
    _, samples = find_samples(data)
    return make_split(samples, parse_fractions(card.get("split")), int(card.get("seed")))


def training_percentiles(
    samples: list, low: float = 1.0, high: float = 99.8
) -> tuple[float, float]:
    """Median over fluorescence training images of their luma percentiles (/255)."""
    lows, highs = [], []
    for sample in samples:
        image, _ = load_labels(sample)
        if is_fluorescence(image):
            lo, hi = np.percentile(image[..., 0], [low, high])
            lows.append(lo / 255.0)
            highs.append(hi / 255.0)
    return float(np.median(lows)), float(np.median(highs))


def build_mosaic(images: list[np.ndarray], gap: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A uint16 grid of the grey images (x 257) with ``gap`` black pixels around each; origins."""
    rows = [images[i : i + COLUMNS] for i in range(0, len(images), COLUMNS)]
    heights = [max(im.shape[0] for im in row) + gap for row in rows]
    width = max(sum(im.shape[1] + gap for im in row) for row in rows) + gap
    mosaic = np.zeros((sum(heights) + gap, width), dtype=np.uint16)
    origins = []
    y = gap
    for row, h in zip(rows, heights, strict=True):
        x = gap
        for im in row:
            mosaic[y : y + im.shape[0], x : x + im.shape[1]] = im[..., 0].astype(np.uint16) * 257
            origins.append((y, x))
            x += im.shape[1] + gap
        y += h
    return mosaic, origins


def interior(labels: np.ndarray, border: int) -> np.ndarray:
    """``labels`` without the objects that have a pixel within ``border`` of the edge."""
    edge = np.ones(labels.shape, bool)
    edge[border:-border, border:-border] = False
    touching = np.unique(labels[edge])
    return remove_small(np.where(np.isin(labels, touching[touching > 0]), 0, labels), 1)


def mean_scores(rows: list[dict]) -> dict:
    """Mean DSB score, F1 and count error over images."""
    return {
        k: round(float(np.mean([r[k] for r in rows])), 4)
        for k in ("dsb_score", "f1_iou50", "count_error")
    }


def main(argv: list[str] | None = None) -> int:
    """Build, segment and score the mosaic; print and write the numbers."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--rule", default="bit_depth", help="intensity rule for the 16-bit mosaic")
    p.add_argument("--block-size", type=int, default=0, help="0: the model's default")
    p.add_argument("--gap", type=int, default=32)
    p.add_argument("--subset", choices=["val", "test"], default="test")
    p.add_argument("--border", type=int, default=24, help="interior: this far from the edge")
    p.add_argument("--training-percentiles", action="store_true")
    args = p.parse_args(argv)
    quiet_onnxruntime_logs()
    engine = Engine(MODEL)
    split = split_samples(engine.card, args.data)
    if args.training_percentiles:
        print("training p1, p99.8 (median, /255):", training_percentiles(split["train"]))
        return 0
    engine.card.raw["intensity"] = {**engine.card.get("intensity", {}), "rule": args.rule}
    pairs = [load_labels(s) for s in split[args.subset]]
    pairs = [(im, lab) for im, lab in pairs if is_fluorescence(im)]
    alone_labels = [engine.predict(im).labels for im, _ in pairs]
    alone = [instance_scores(lab, a) for (_, lab), a in zip(pairs, alone_labels, strict=True)]
    b = args.border
    alone_inner = [
        instance_scores(interior(lab, b), interior(a, b))
        for (_, lab), a in zip(pairs, alone_labels, strict=True)
    ]
    mosaic, origins = build_mosaic([im for im, _ in pairs], args.gap)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mosaic.ome.tif"
        tifffile.imwrite(path, mosaic, tile=(512, 512), metadata={"axes": "YX"}, compression="zlib")
        result = segment_large(
            engine, ImageSpec(str(path)), Path(tmp), "mosaic", block_size=args.block_size or None
        )
        labels = read_labels(Path(tmp) / "mosaic_labels.ome.zarr").astype(np.int32)
    together, together_inner = [], []
    for (im, lab), (y, x) in zip(pairs, origins, strict=True):
        cell = remove_small(labels[y : y + im.shape[0], x : x + im.shape[1]], 1)
        together.append(instance_scores(lab, cell))
        together_inner.append(instance_scores(interior(lab, b), interior(cell, b)))
    report = {
        "images": len(pairs),
        "subset": args.subset,
        "mosaic": f"{mosaic.shape[1]}x{mosaic.shape[0]} uint16, gap {args.gap}",
        "rule": result.mapping.to_json(),
        "block_size": args.block_size or "default",
        "blocks": result.blocks,
        "dropped_doubles": result.dropped,
        "one_by_one": mean_scores(alone),
        "mosaic_scores": mean_scores(together),
        "border": b,
        "one_by_one_interior": mean_scores(alone_inner),
        "mosaic_interior": mean_scores(together_inner),
        "mosaic_seconds": round(result.seconds, 1),
    }
    print(json.dumps(report, indent=1))
    RESULTS.mkdir(exist_ok=True)
    name = f"mosaic-{args.rule}-b{args.block_size or 'default'}-g{args.gap}"
    name += "" if args.subset == "test" else f"-{args.subset}"
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
