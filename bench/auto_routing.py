"""Where ``--model auto`` (and the app's Automatic) sends every kind of image: a confusion table.

    python -m bench.auto_routing [--dsb DSB_DIR] [--monuseg MONUSEG_DIR] [--isic ISIC_DIR]
        [--isic-count 300] [--synthetic 10] [--models models] [--out bench/results/auto_routing.json]

Every image is given to `segcore.modelfit` exactly as ``segcore.commands.predict --model auto`` gives it
(`fit_pixels`, `measure_fit` against every card of ``--models`` with ``image_stats``, `Fit.best`,
`Fit.mismatch`). The outcome of one image is what the chosen model segments (``lesion`` for a
model of skin-lesion photos, ``nuclei`` for any other), with ``+warning`` when the chosen model
does not fit the image (``--model auto`` and the app then say so). Groups: every DSB image by its kind (`segcore.kinds`), every
MoNuSeg tile, ``--isic-count`` ISIC photos (a seeded pick), and ``--synthetic`` images of each
kind that is none of these (`non_target_images`: smooth gradients, noise textures, screenshots,
synthetic landscape photos). Right: nuclei images to a nuclei model (warned or not), ISIC
photos to the lesion model without a warning, the rest warned. Prints the table and writes it (with the command and the commit) to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segcore.atomic import write_json
from segcore.commands.predict import folder_cards
from segcore.data.layouts import find_images
from segcore.kinds import image_kind
from segcore.modelfit import family, fit_pixels, measure_fit

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OUTCOMES = ("nuclei", "nuclei+warning", "lesion", "lesion+warning")
#: The outcomes that are right for each group.
EXPECTED = {
    "dsb": ("nuclei", "nuclei+warning"),
    "monuseg": ("nuclei", "nuclei+warning"),
    "isic": ("lesion",),
    "synthetic": ("nuclei+warning", "lesion+warning"),
}
SYNTHETIC_KINDS = ("gradient", "noise", "screenshot", "landscape")


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth two-colour gradient at a random angle."""
    yy, xx = np.mgrid[:size, :size] / size
    angle = rng.uniform(0, np.pi)
    t = np.cos(angle) * xx + np.sin(angle) * yy - min(0, np.cos(angle)) - min(0, np.sin(angle))
    t = t / t.max()
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return a + (b - a) * t[..., None]


def _noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """Coloured noise at a random grain, over a random mean colour."""
    grain = int(rng.integers(1, 16))
    small = rng.normal(0, rng.uniform(20, 80), (size // grain + 1, size // grain + 1, 3))
    texture = np.kron(small, np.ones((grain, grain, 1)))[:size, :size]
    return rng.uniform(40, 215, 3) + texture


def _screenshot(rng: np.random.Generator, size: int) -> np.ndarray:
    """A light window with a title bar, coloured buttons and lines of dark 'text'."""
    image = np.full((size, size, 3), rng.uniform(225, 255))
    image[: size // 12] = rng.uniform(30, 200, 3)
    for _ in range(int(rng.integers(2, 6))):
        y, x = rng.integers(size // 8, size - 20, 2)
        image[y : y + 12, x : x + int(rng.integers(20, 60))] = rng.uniform(0, 255, 3)
    for row in range(size // 6, size - 8, 9):
        start = int(rng.integers(8, 30))
        for x in range(start, size - int(rng.integers(8, 80)), 6):
            if rng.random() < 0.8:
                image[row : row + 4, x : x + 4] = rng.uniform(0, 70)
    return image


def _landscape(rng: np.random.Generator, size: int) -> np.ndarray:
    """A synthetic outdoor photo: a blue sky gradient over textured green-brown ground."""
    yy = np.mgrid[:size, :size][0] / size
    horizon = rng.uniform(0.35, 0.65)
    sky = np.array([110, 160, 230]) + np.array([80, 60, 20]) * (yy / horizon)[..., None]
    ground = np.array(rng.choice([[70, 120, 50], [120, 100, 60], [90, 140, 70]]), float)
    grass = ground + rng.normal(0, 25, (size, size, 3))
    return np.where((yy < horizon)[..., None], sky, grass)


def non_target_images(n: int, size: int = 256, seed: int = 0) -> Iterator[tuple[str, np.ndarray]]:
    """``n`` seeded images of each `SYNTHETIC_KINDS` kind, none of them microscopy or dermoscopy:
    (kind, HxWx3 uint8)."""
    rng = np.random.default_rng(seed)
    makers = {
        "gradient": _gradient,
        "noise": _noise,
        "screenshot": _screenshot,
        "landscape": _landscape,
    }
    for kind in SYNTHETIC_KINDS:
        for _ in range(n):
            yield kind, makers[kind](rng, size).clip(0, 255).astype(np.uint8)


def _folder_images(root: Path) -> list[Path]:
    """The images of a data-set folder, as training finds them."""
    return find_images(root)[1]


def images(args: argparse.Namespace) -> Iterator[tuple[str, str, np.ndarray]]:
    """(group, name, fit pixels) of every image checked."""
    if args.dsb.is_dir():
        for path in _folder_images(args.dsb):
            pixels = fit_pixels(path)
            yield f"dsb/{image_kind(pixels)}", path.name, pixels
    if args.monuseg.is_dir():
        for path in _folder_images(args.monuseg):
            pixels = fit_pixels(path)
            yield f"monuseg/{image_kind(pixels)}", path.name, pixels
    if args.isic.is_dir():
        paths = _folder_images(args.isic)
        picked = np.random.default_rng(0).permutation(len(paths))[: args.isic_count]
        for i in sorted(picked):
            yield "isic/lesion", paths[i].name, fit_pixels(paths[i])
    for i, (kind, pixels) in enumerate(non_target_images(args.synthetic)):
        yield f"synthetic/{kind}", f"{kind}-{i}", pixels


def outcome(pixels: np.ndarray, cards: dict) -> tuple[str, str | None]:
    """(one of `OUTCOMES`, the model chosen) for one image, as ``--model auto`` decides."""
    fit = measure_fit(pixels, cards)
    chosen = fit.best() or next(iter(cards))
    what = "lesion" if family(cards[chosen]) == "isic" else "nuclei"
    return what + ("+warning" if fit.mismatch(chosen)[0] else ""), chosen


def _commit() -> str:
    """The checkout's commit (with ``+dirty`` when it has changes), or ``?``."""
    try:
        run = dict(capture_output=True, text=True, check=True, cwd=Path(__file__).parent)
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], **run).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    """Route every image, print the confusion table and write it to ``--out``."""
    p = argparse.ArgumentParser(
        prog="python -m bench.auto_routing",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--dsb", type=Path, default=SHARED / "dsb2018" / "stage1_train")
    p.add_argument("--monuseg", type=Path, default=SHARED / "monuseg2018")
    p.add_argument("--isic", type=Path, default=SHARED / "isic2017-256")
    p.add_argument("--isic-count", type=int, default=300, help="ISIC photos checked (seeded)")
    p.add_argument("--synthetic", type=int, default=10, help="images per synthetic kind")
    p.add_argument("--models", type=Path, default=Path("models"), help="folder of models")
    p.add_argument("--out", type=Path, default=Path("bench/results/auto_routing.json"))
    args = p.parse_args(argv)
    cards = folder_cards(args.models)[0]
    if not cards:
        print(f"--models {args.models}: no model cards", file=sys.stderr)
        return 2
    table: dict[str, Counter] = {}
    wrong: list[dict] = []
    for group, name, pixels in images(args):
        result, chosen = outcome(pixels, cards)
        table.setdefault(group, Counter())[result] += 1
        if result not in EXPECTED[group.split("/")[0]]:
            wrong.append({"group": group, "image": name, "outcome": result, "model": chosen})
    print(f"{'group':<24}" + "".join(f"{o:>16}" for o in OUTCOMES) + f"{'right':>9}")
    rows = []
    for group, counts in table.items():
        right = sum(counts[o] for o in EXPECTED[group.split("/")[0]]) / sum(counts.values())
        print(f"{group:<24}" + "".join(f"{counts[o]:16d}" for o in OUTCOMES) + f"{right:9.1%}")
        rows.append({"group": group, **{o: counts[o] for o in OUTCOMES}, "right": right})
    write_json(
        args.out,
        {
            "command": "python -m bench.auto_routing " + " ".join(argv or sys.argv[1:]),
            "commit": _commit(),
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "models": sorted(cards),
            "expected": EXPECTED,
            "table": rows,
            "wrong": wrong,
        },
    )
    print(f"wrote {args.out} ({len(wrong)} images routed wrongly)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
