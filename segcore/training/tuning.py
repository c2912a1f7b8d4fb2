"""Tune the watershed decoding of an instance run on its validation split (Keras model).

The validation images are predicted once through the engine's tiled pipeline (a Keras runner,
`segcore.training.evaluate.run_engine`); `tune_decoding` then searches the decoding settings
(`segcore.instances.DecodeSettings`) for the best mean DSB 2018 score and `write_decode` records
them in ``RUN_DIR/decode.json``; export copies them into the card's ``instances``. The test split
is only scored (`segcore.training.evaluate.evaluate_run`), never tuned on.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from segcore.atomic import write_text
from segcore.card import TileSpec
from segcore.data import read_split
from segcore.data.layouts import readable
from segcore.instances import DecodeSettings, decode
from segcore.training.config import DECODE_FILE, RunConfig
from segcore.training.evaluate import image_scores, run_engine

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


def validation_maps(run_dir: Path, model, tile: TileSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """(truth labels, output channels) of every readable validation image, tiled at ``tile``."""
    engine = run_engine(run_dir, model, tile)
    val = read_split(Path(run_dir) / "split.json")["val"]
    return [(labels, engine.tiled_channels(image)) for _, image, labels in readable(val, True)]


def tune_decoding(run_dir: Path, model, tile: TileSpec) -> tuple[DecodeSettings, float, list[dict]]:
    """Best decoding settings on the validation split: (settings, mean DSB score, all trials).

    The validation images are predicted once; each stage of `DECODE_STAGES` then tries every
    combination of its keys' `DECODE_GRID` values, keeping the best settings so far for the rest.
    """
    cached = validation_maps(run_dir, model, tile)
    markers = RunConfig.read(run_dir).settings.markers
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


def write_decode(
    run_dir: Path, settings: DecodeSettings, tile: TileSpec, trials: list[dict]
) -> dict:
    """Record the chosen settings, tile, their validation scores and every trial in decode.json."""
    best = max(trials, key=lambda t: t["dsb_score"])
    result = {
        "instances": settings.to_json(),
        "tile": tile.to_json(),
        "val": {k: best[k] for k in TUNE_SCORES},
        "trials": trials,
    }
    write_text(Path(run_dir) / DECODE_FILE, json.dumps(result, indent=1))
    return result
