"""Score and tune instance models on a run's splits (Keras model, tiled at native scale).

``python -m segcore.instance_eval RUN_DIR --tune`` predicts the validation split once, searches
the watershed decoding settings (`segcore.instances.DecodeSettings`) for the best mean DSB 2018
score there, and writes ``RUN_DIR/decode.json``; export copies it into the card's
``instances``. The test split is only scored (`evaluate_instances`, called by
`segcore.evaluate.evaluate_run`), never tuned on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segcore.data import Sample, read_split
from segcore.data.layouts import load_labels
from segcore.instances import DecodeSettings, decode
from segcore.matching import INSTANCE_SCORE_NAMES, instance_scores
from segcore.preprocess import ImageError, flip_views, merge_flips, to_model_input
from segcore.scores import SCORE_NAMES, binary_scores
from segcore.tiling import predict_tiled

DECODE_FILE = "decode.json"
#: The values searched on the validation split, in two stages: the two thresholds together (the
#: object filters at their defaults), then the two sizes and the peak filter together (thresholds
#: at the stage-1 best). The marker threshold is ``boundary`` or ``distance``, after the run's
#: marker channel.
DECODE_GRID = {
    "foreground": (0.4, 0.5, 0.6, 0.7),
    "boundary": (0.1, 0.2, 0.3, 0.4, 0.5),
    "distance": (0.3, 0.4, 0.5, 0.6, 0.7, 0.8),
    "min_marker_px": (2, 4, 8, 16),
    "min_size_px": (4, 8, 16, 32),
    "min_peak": (0.0, 0.9, 0.95, 0.97, 0.99),
}
DECODE_STAGES = (("foreground", "MARKER"), ("min_marker_px", "min_size_px", "min_peak"))
TUNE_SCORES = ("dsb_score", "f1_iou50", "count_error", "dice")  # recorded per trial


def tile_settings(config: dict, overrides: dict | None = None) -> tuple[int, float, int]:
    """(tile size, overlap, size multiple) for a run: its config, or the decode file's tile."""
    tile = (overrides or {}).get("tile") or config["tile"]
    return int(tile["size"]), float(tile["overlap"]), 2 ** int(config["arch_kwargs"]["depth"])


def read_decode(run_dir: Path) -> dict:
    """The run's decode.json ({"instances": ..., "tile": ..., "val": ...}), or {} before tuning."""
    path = Path(run_dir) / DECODE_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def run_settings(decoded: dict, config: dict) -> DecodeSettings:
    """A run's decoding from its `read_decode` dict and config: the tuned settings, else the
    defaults, for the run's marker channel."""
    tuned = decoded.get("instances", {})
    return DecodeSettings.from_json({**tuned, "markers": config.get("markers", "boundary")})


def keras_channels(
    model, image: np.ndarray, config: dict, tile: dict | None = None, tta: bool = False
) -> np.ndarray:
    """HxWxK output channels of an HxWx3 uint8 image from a Keras model, tiled at native scale."""
    size, overlap, multiple = tile_settings(config, {"tile": tile} if tile else None)

    def run(batch: np.ndarray) -> np.ndarray:
        if tta:
            return merge_flips([np.asarray(model(v, training=False)) for v in flip_views(batch)])
        return np.asarray(model(batch, training=False))

    return predict_tiled(
        to_model_input(image, int(config["channels"])), run, size, overlap, multiple
    )


def predicted_split(
    run_dir: Path, split: str, model, tile: dict | None = None, tta: bool = False
) -> Iterator[tuple[Sample, np.ndarray, np.ndarray, np.ndarray]]:
    """(sample, image, truth labels, output channels) for every readable image of a split."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    for sample in read_split(Path(run_dir) / "split.json")[split]:
        try:
            image, labels = load_labels(sample)
        except ImageError as exc:
            print(f"warning: skipping {exc}", file=sys.stderr)
            continue
        yield sample, image, labels, keras_channels(model, image, config, tile, tta)


def image_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Semantic and instance scores of one image's predicted labels against its truth labels."""
    return {**binary_scores(truth > 0, pred > 0), **instance_scores(truth, pred)}


def summarize_instances(rows: list[dict]) -> dict:
    """Mean and median of every semantic and instance score over per-image rows."""
    out: dict = {"n_images": len(rows)}
    for name in (*SCORE_NAMES, *INSTANCE_SCORE_NAMES):
        values = np.array([r[name] for r in rows], dtype=np.float64)
        out[name] = {"mean": float(values.mean()), "median": float(np.median(values))}
    return out


def evaluate_instances(run_dir: Path, model, tta: bool = False) -> tuple[list[dict], list]:
    """Per-image semantic + instance scores on the test split with the run's decode settings.

    Returns (rows, kept) where kept holds (sample, image, truth mask, predicted mask) per row.
    """
    found = read_decode(run_dir)
    config = json.loads((Path(run_dir) / "config.json").read_text())
    settings = run_settings(found, config)
    rows, kept = [], []
    for sample, image, labels, ch in predicted_split(
        run_dir, "test", model, found.get("tile"), tta
    ):
        pred = decode(ch[..., -1], ch[..., 0], settings)
        rows.append({"image": sample.name, **image_scores(labels, pred)})
        kept.append((sample, image, labels > 0, pred > 0))
    return rows, kept


def tune_decoding(
    run_dir: Path, model, tile: dict | None = None
) -> tuple[DecodeSettings, float, list[dict]]:
    """Best decoding settings on the validation split: (settings, mean DSB score, all trials).

    The validation images are predicted once; each stage of `DECODE_STAGES` then tries every
    combination of its keys' `DECODE_GRID` values, keeping the best settings so far for the rest.
    """
    cached = [(labels, ch) for _, _, labels, ch in predicted_split(run_dir, "val", model, tile)]
    config = json.loads((Path(run_dir) / "config.json").read_text())
    markers = config.get("markers", "boundary")
    trials: list[dict] = []
    best = DecodeSettings(markers=markers).to_json()
    for stage in DECODE_STAGES:
        keys = tuple(markers if k == "MARKER" else k for k in stage)
        for values in itertools.product(*(DECODE_GRID[k] for k in keys)):
            settings = DecodeSettings.from_json({**best, **dict(zip(keys, values, strict=True))})
            scores = [
                image_scores(labels, decode(ch[..., -1], ch[..., 0], settings))
                for labels, ch in cached
            ]
            trials.append(
                {
                    **settings.to_json(),
                    **{k: float(np.mean([s[k] for s in scores])) for k in TUNE_SCORES},
                }
            )
        top = max(trials, key=lambda t: t["dsb_score"])
        best = DecodeSettings.from_json(top).to_json()
    top = max(trials, key=lambda t: t["dsb_score"])
    return DecodeSettings.from_json(top), top["dsb_score"], trials


def main(argv: list[str] | None = None) -> int:
    """Command line: tune decoding on the validation split and write RUN_DIR/decode.json."""
    p = argparse.ArgumentParser(prog="python -m segcore.instance_eval", description=__doc__)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--tune", action="store_true", help="search decoding settings on val")
    p.add_argument("--tile", type=int, help="tile size for prediction (default: the run's)")
    p.add_argument("--overlap", type=float, help="tile overlap (default: the run's)")
    a = p.parse_args(argv)
    if not (a.run_dir / "best.keras").is_file():
        print(f"error: {a.run_dir}: no best.keras (not a finished run folder)", file=sys.stderr)
        return 2
    config = json.loads((a.run_dir / "config.json").read_text())
    if config.get("target") != "instance":
        print(f"error: {a.run_dir}: not an instance run (--target instance)", file=sys.stderr)
        return 2
    if not a.tune:
        p.print_usage(sys.stderr)
        return 2
    from segcore.evaluate import load_model

    model = load_model(a.run_dir)
    tile = dict(config["tile"])
    if a.tile:
        tile["size"] = a.tile
    if a.overlap is not None:
        tile["overlap"] = a.overlap
    multiple = tile_settings(config, {"tile": tile})[2]
    if tile["size"] % multiple or not 0.0 <= tile["overlap"] < 1.0:
        print(
            f"error: --tile must be a multiple of {multiple}, --overlap in [0, 1)", file=sys.stderr
        )
        return 2
    settings, score, trials = tune_decoding(a.run_dir, model, tile)
    best = max(trials, key=lambda t: t["dsb_score"])
    result = {
        "instances": settings.to_json(),
        "tile": tile,
        "val": {k: best[k] for k in TUNE_SCORES},
        "trials": trials,
    }
    tmp = a.run_dir / f"{DECODE_FILE}.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(a.run_dir / DECODE_FILE)
    print(
        f"{a.run_dir}: val DSB score {score:.4f} F1@0.5 {best['f1_iou50']:.4f} count error "
        f"{best['count_error']:.3f} with {settings.to_json()} (tile {tile})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
