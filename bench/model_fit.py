"""How often the automatic model choice picks the model of the right kind of image.

    python -m bench.model_fit --dsb DSB_DIR --isic ISIC_DIR [--split val] [--models models]

Each data set's images of one split (the seeded split the shipped cards name: their ``split``
and ``seed``) are given to `segcore.modelfit` exactly as ``segcore.commands.predict --model auto`` and the
app's "Automatic" give them (`fit_pixels`, `measure_fit`, `Fit.best`) against every card in
``--models``. A DSB image is right when a ``dsb`` model is chosen, an ISIC image when an ``isic``
one is. DSB images are sorted into kinds by colour (H&E and other stains: saturated;
bright-field: grey and light; fluorescence: grey and dark). Each image is also given as
``--crops`` seeded random crops (a third to two thirds of each side: a user may give a part of
an image), counted apart. Prints the images and errors per kind, and each wrong image with its
distances.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from segcore.data import find_samples, make_split
from segcore.data.imagestats import crops
from segcore.data.split import parse_fractions
from segcore.modelfit import family, fit_pixels, measure_fit

#: Mean saturation above which a nuclei image is stained (H&E and the like).
STAINED = 0.1
#: Mean brightness above which an unstained nuclei image is bright-field.
BRIGHT = 0.5


def kind(pixels: np.ndarray, data_family: str) -> str:
    """The kind of one image: ``lesion``, or for nuclei ``stained``/``bright-field``/
    ``fluorescence``."""
    if data_family == "isic":
        return "lesion"
    rgb = pixels.astype(np.float64) / 255.0
    top, bottom = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(top > 0, (top - bottom) / np.maximum(top, 1e-6), 0.0).mean()
    if saturation > STAINED:
        return "stained"
    return "bright-field" if rgb.mean() > BRIGHT else "fluorescence"


def check(
    root: Path, data_family: str, cards: dict[str, dict], split: str, n_crops: int
) -> Counter:
    """Images and errors per kind for one data set's ``split`` and crops of its images; prints
    each wrong one."""
    card = next(c for c in cards.values() if family(c) == data_family)
    _, samples = find_samples(root, skip_unmatched=True)
    part = make_split(samples, parse_fractions(str(card["split"])), int(card["seed"]))[split]
    rng = np.random.default_rng(1)
    counts: Counter = Counter()
    for sample in part:
        pixels = fit_pixels(sample.image)
        what = kind(pixels, data_family)
        views = [("", pixels), *((" crop", c) for c in crops(pixels, n_crops, rng))]
        for suffix, view in views:
            fit = measure_fit(view, cards)
            chosen = fit.best() or ""
            counts[(what + suffix, "images")] += 1
            if family(cards[chosen]) != data_family:
                counts[(what + suffix, "wrong")] += 1
                print(f"  wrong: {sample.image.name}{suffix} ({what}) -> {chosen}")
    return counts


def main(argv: list[str] | None = None) -> int:
    """Print the automatic choice's errors per kind of image."""
    p = argparse.ArgumentParser(prog="python -m bench.model_fit", description=__doc__)
    p.add_argument("--dsb", type=Path, required=True, help="DSB stage1_train folder")
    p.add_argument("--isic", type=Path, required=True, help="ISIC images/ + masks/ folder")
    p.add_argument("--split", default="val", choices=("train", "val", "test"))
    p.add_argument("--models", type=Path, default=Path("models"), help="folder of model cards")
    p.add_argument("--crops", type=int, default=2, help="random crops per image also checked")
    args = p.parse_args(argv)
    cards = {c.stem: json.loads(c.read_text()) for c in sorted(args.models.glob("*.json"))}
    cards = {n: c for n, c in cards.items() if "image_stats" in c}
    total: Counter = Counter()
    for root, data_family in ((args.dsb, "dsb"), (args.isic, "isic")):
        total += check(root, data_family, cards, args.split, args.crops)
    for what in sorted({k for k, _ in total}):
        wrong, images = total[(what, "wrong")], total[(what, "images")]
        print(f"{args.split} {what:18s} {wrong:3d} wrong of {images}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
