"""Tune the watershed decoding of an instance run on its validation split (Keras model).

The validation images are predicted once through the engine's tiled pipeline (a Keras runner,
`segcore.training.evaluation.run_engine`); `tune_decoding` then searches the decoding settings
(`segcore.inference.instances.DecodeSettings`) for the best mean DSB 2018 score and `write_decode` records
them in ``RUN_DIR/decode.json``; export copies them into the card's ``instances``. The test split
is only scored (`segcore.training.evaluation.evaluate_run`), never tuned on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from segcore.atomic import write_text
from segcore.card import TileSpec
from segcore.data import read_split
from segcore.data.layouts import readable
from segcore.inference.instances import DecodeSettings
from segcore.run_config import DECODE_FILE, RunConfig
from segcore.scoring.decode_search import TUNE_SCORES, search_decoding
from segcore.training.evaluation import run_engine


def validation_maps(run_dir: Path, model, tile: TileSpec) -> list[tuple[np.ndarray, np.ndarray]]:
    """(truth labels, output channels) of every readable validation image, tiled at ``tile``."""
    engine = run_engine(run_dir, model, tile)
    val = read_split(Path(run_dir) / "split.json")["val"]
    return [(labels, engine.tiled_channels(image)) for _, image, labels in readable(val, True)]


def tune_decoding(run_dir: Path, model, tile: TileSpec) -> tuple[DecodeSettings, float, list[dict]]:
    """Best decoding settings on the validation split: (settings, mean DSB score, all trials).

    The validation images are predicted once; `segcore.scoring.decode_search.search_decoding` then
    tries the grid, stage by stage, keeping the best settings so far for the rest.
    """
    cached = validation_maps(run_dir, model, tile)
    markers = RunConfig.read(run_dir).settings.markers
    best, trials = search_decoding(cached, DecodeSettings(markers=markers))
    return best, max(t["dsb_score"] for t in trials), trials


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
