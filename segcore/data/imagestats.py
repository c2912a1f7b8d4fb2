"""Image statistics of a model's training data, and how far a new image lies from them.

A few colour and texture features per image (at a small fixed size), summarised over the training
split (each image and `CROPS_PER_IMAGE` random crops of it: a user may give part of an image),
are written into the model card as ``image_stats``. A training set often holds several kinds of
image (DSB: fluorescence, bright-field and H&E nuclei), so the features are grouped into
`COMPONENTS` clusters (k-means on standardised features), each described by its mean and a
covariance shrunk towards the whole set's (`SHRINK`: a cluster of a few dozen bright-field views
stays usable). A new image's Mahalanobis distance to its nearest cluster, against a threshold
that a set quantile of the training images stays under, says whether it looks like what the
model was trained on (a microscopy image under the skin-lesion model does not); `segcore.modelfit`
chooses among models by it and by the image's kind. The statistics also count the training
images of each kind (``kinds``, `segcore.kinds.training_kind`). Pure numpy + Pillow: the app
and the engine use it.

``python -m segcore.data.imagestats --data DIR CARD.json...`` fills ``image_stats`` into cards from the
training split their ``split`` and ``seed`` name (the same seeded split training made).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from segcore import cli
from segcore.atomic import write_json
from segcore.errors import UserError
from segcore.inference.preprocess import LUMA_WEIGHTS

#: Side of the square thumbnail the features are computed on.
THUMB = 64
FEATURES = (
    "mean_r",
    "mean_g",
    "mean_b",
    "std_luma",
    "mean_saturation",
    "dark_fraction",
    "bright_fraction",
    "edge_strength",
    "red_minus_blue",
    "hue_cos",
    "hue_sin",
    "blue_over_red_fraction",
    "centre_minus_border",
    "laplacian",
    "std_saturation",
)
#: The share of training images whose distance stays under the stored threshold.
QUANTILE = 0.995
#: The threshold is that quantile times this margin (room for photos taken elsewhere).
MARGIN = 1.25
STATS_VERSION = 2
#: Clusters per training set (fewer when a set is small) and the k-means restarts tried.
COMPONENTS = 5
#: Feature rows (images and their crops) per cluster at least (a smaller set gets fewer clusters, down to one).
PER_COMPONENT = 150
KMEANS_STARTS = 8
KMEANS_STEPS = 50
#: Random crops per training image added to the statistics, and their side (share of the image's).
CROPS_PER_IMAGE = 2
CROP_SHARE = (0.3, 0.7)
#: Weight, in images, of the whole set's covariance in each cluster's (shrinkage).
SHRINK = 5.0


def image_features(pixels: np.ndarray) -> np.ndarray:
    """The `FEATURES` of an HxWx3 uint8 RGB image (colour, brightness, hue, texture and the
    centre-to-border contrast, on a `THUMB`-pixel square thumbnail), as float64."""
    thumb = Image.fromarray(np.asarray(pixels, np.uint8)).resize(
        (THUMB, THUMB), Image.Resampling.BILINEAR
    )
    rgb = np.asarray(thumb, np.float64) / 255.0
    luma = rgb @ np.array(LUMA_WEIGHTS)
    top, bottom = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(top > 0, (top - bottom) / np.maximum(top, 1e-6), 0.0)
    hsv = np.asarray(thumb.convert("HSV"), np.float64) / 255.0
    hue, weight = hsv[..., 0] * 2 * np.pi, hsv[..., 1]
    gy, gx = np.gradient(luma)
    laplacian = np.abs(
        4 * luma[1:-1, 1:-1] - luma[:-2, 1:-1] - luma[2:, 1:-1] - luma[1:-1, :-2] - luma[1:-1, 2:]
    )
    yy, xx = np.mgrid[:THUMB, :THUMB]
    radius = np.hypot(yy - (THUMB - 1) / 2, xx - (THUMB - 1) / 2) / THUMB
    means = rgb.reshape(-1, 3).mean(axis=0)
    return np.array(
        [
            *means,
            luma.std(),
            saturation.mean(),
            (luma < 0.1).mean(),
            (luma > 0.9).mean(),
            np.hypot(gx, gy).mean(),
            means[0] - means[2],
            (weight * np.cos(hue)).mean(),
            (weight * np.sin(hue)).mean(),
            (rgb[..., 2] > rgb[..., 0]).mean(),
            luma[radius < 0.25].mean() - luma[radius > 0.44].mean(),
            laplacian.mean(),
            saturation.std(),
        ]
    )


def _inverse(cov: np.ndarray) -> np.ndarray:
    """A regularised inverse covariance (features that never vary in training stay usable)."""
    cov = np.asarray(cov, np.float64)
    return np.linalg.pinv(cov + np.eye(len(cov)) * 1e-4 * max(np.trace(cov) / len(cov), 1e-6))


def _distances(features: np.ndarray, mean: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    centred = np.atleast_2d(features) - mean
    return np.sqrt(np.einsum("ij,jk,ik->i", centred, inverse, centred).clip(min=0))


def _kmeans(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster index of each row of ``z`` (k-means++ start from ``seed``, `KMEANS_STEPS`)."""
    rng = np.random.default_rng(seed)
    centres = [z[rng.integers(len(z))]]
    for _ in range(k - 1):
        gap = np.min([((z - c) ** 2).sum(axis=1) for c in centres], axis=0)
        centres.append(z[rng.choice(len(z), p=gap / gap.sum())] if gap.sum() > 0 else z[0])
    centre = np.array(centres)
    for _ in range(KMEANS_STEPS):
        assign = np.argmin(((z[:, None] - centre[None]) ** 2).sum(axis=2), axis=1)
        centre = np.array(
            [z[assign == j].mean(0) if (assign == j).any() else centre[j] for j in range(k)]
        )
    return assign


def clusters(features: np.ndarray, k: int = COMPONENTS) -> np.ndarray:
    """Cluster index per training image: the tightest of `KMEANS_STARTS` seeded k-means runs on
    standardised features (deterministic)."""
    z = features / (features.std(axis=0) + 1e-9)
    best, best_spread = np.zeros(len(z), int), np.inf
    for seed in range(KMEANS_STARTS if k > 1 else 0):
        assign = _kmeans(z, k, seed)
        centre = np.array(
            [z[assign == j].mean(0) if (assign == j).any() else z[0] for j in range(k)]
        )
        spread = float(((z - centre[assign]) ** 2).sum())
        if spread < best_spread:
            best, best_spread = assign, spread
    return best


def _components(features: np.ndarray) -> list[dict]:
    """Mean, shrunk covariance and size of each cluster of two or more images."""
    whole = np.cov(features, rowvar=False)
    assign = clusters(features, max(1, min(COMPONENTS, len(features) // PER_COMPONENT)))
    out = []
    for j in np.unique(assign):
        rows = features[assign == j]
        if len(rows) < 2:
            continue
        cov = (len(rows) * np.cov(rows, rowvar=False) + SHRINK * whole) / (len(rows) + SHRINK)
        out.append({"n_images": len(rows), "mean": rows.mean(axis=0), "cov": cov})
    return out


def _nearest(features: np.ndarray, components: list[dict]) -> np.ndarray:
    """Each row's Mahalanobis distance to its nearest component."""
    return np.min(
        [
            _distances(features, np.asarray(c["mean"]), _inverse(np.asarray(c["cov"])))
            for c in components
        ],
        axis=0,
    )


def fit_stats(features: np.ndarray, source: str = "") -> dict:
    """The card's ``image_stats`` from an NxF feature matrix of training images."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[1] != len(FEATURES) or len(features) < 2:
        raise ValueError(f"need two or more rows of {len(FEATURES)} features")
    components = _components(features)
    inside = float(np.quantile(_nearest(features, components), QUANTILE))
    return {
        "version": STATS_VERSION,
        "features": list(FEATURES),
        "thumbnail": THUMB,
        "n_images": len(features),
        "source": source,
        "components": [
            {
                "n_images": c["n_images"],
                "mean": [round(float(v), 6) for v in c["mean"]],
                "cov": [[round(float(v), 8) for v in row] for row in c["cov"]],
            }
            for c in components
        ],
        "quantile": QUANTILE,
        "threshold": round(inside * MARGIN, 4),
    }


def usable(stats: object) -> bool:
    """True when ``stats`` is an ``image_stats`` entry this version can compare against."""
    return (
        isinstance(stats, dict)
        and stats.get("version") == STATS_VERSION
        and stats.get("features") == list(FEATURES)
        and isinstance(stats.get("components"), list)
        and bool(stats["components"])
        and "threshold" in stats
    )


def distance(stats: dict, pixels: np.ndarray) -> float:
    """How far an image lies from the training images, in units of the card's threshold
    (above 1: unlike the training data)."""
    d = _nearest(image_features(pixels)[None], stats["components"])
    return float(d[0] / float(stats["threshold"]))


def crops(image: np.ndarray, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``n`` random crops of an image, each side `CROP_SHARE` of the image's (a user may give a
    part of an image like the training ones)."""
    h, w = image.shape[:2]
    out = []
    for _ in range(n):
        share = rng.uniform(*CROP_SHARE)
        ch, cw = max(16, int(h * share)), max(16, int(w * share))
        top, left = rng.integers(0, max(1, h - ch + 1)), rng.integers(0, max(1, w - cw + 1))
        out.append(image[top : top + ch, left : left + cw])
    return out


def training_stats(
    images: Iterable[np.ndarray], source: str = "", dataset: str | None = None
) -> dict:
    """`fit_stats` over RGB uint8 images (e.g. a run's training split) and `CROPS_PER_IMAGE`
    seeded random crops of each, with the images of each kind (``kinds``; ``dataset`` says
    whether they are microscopy, `segcore.kinds.training_kind`)."""
    from segcore.kinds import training_kind

    rng = np.random.default_rng(0)
    rows: list[np.ndarray] = []
    kinds: Counter[str] = Counter()
    for image in images:
        rows += [image_features(v) for v in (image, *crops(image, CROPS_PER_IMAGE, rng))]
        kinds[training_kind(image, dataset)] += 1
    return fit_stats(np.stack(rows), source) | {
        "n_images": kinds.total(),
        "crops_per_image": CROPS_PER_IMAGE,
        "kinds": dict(sorted(kinds.items())),
    }


def run_image_stats(run_dir: Path) -> dict | None:
    """``image_stats`` of a run folder's training split (``split.json``), or None when its
    images cannot be read here (the card is then written without them)."""
    from segcore.data import read_split
    from segcore.errors import ImageError
    from segcore.inference.preprocess import load_image

    try:
        train = read_split(Path(run_dir) / "split.json")["train"]
        dataset = json.loads((Path(run_dir) / "config.json").read_text()).get("dataset")
        return training_stats((load_image(s.image) for s in train), "training split", dataset)
    except (OSError, ValueError, KeyError, ImageError):
        return None


def card_training_images(card: dict, data: Path) -> list[Path]:
    """The training-split image files of ``card`` (its ``split`` and ``seed``) under ``data``."""
    from segcore.data import find_samples, make_split
    from segcore.data.split import parse_fractions

    _, samples = find_samples(data, skip_unmatched=True)
    split = make_split(samples, parse_fractions(str(card["split"])), int(card["seed"]))
    return [s.image for s in split["train"]]


def main(argv: list[str] | None = None) -> int:
    """Fill ``image_stats`` into model cards from their training split under ``--data``."""
    parser = cli.parser("python -m segcore.data.imagestats", __doc__.split("\n\n")[0])
    parser.add_argument("cards", nargs="+", type=Path, help="model cards (models/<name>.json)")
    parser.add_argument("--data", type=Path, required=True, help="the data set the model used")
    cli.setup_logging()
    return cli.run_command(lambda: _fill(parser.parse_args(argv)))


def _fill(args: argparse.Namespace) -> int:
    from segcore.errors import DataError, ImageError
    from segcore.inference.preprocess import load_image

    for path in args.cards:
        try:
            card = json.loads(path.read_text())
            files = card_training_images(card, args.data)
            stats = training_stats(
                (load_image(f) for f in files),
                f"training split of {card['split']} seed {card['seed']}",
                card.get("dataset"),
            )
        except (OSError, ValueError, KeyError, DataError, ImageError) as exc:
            raise UserError(f"{path}: {exc}") from None
        card["image_stats"] = stats
        card["kinds"] = list(stats["kinds"])
        write_json(path, card)
        print(f"{path}: image_stats from {stats['n_images']} training images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
