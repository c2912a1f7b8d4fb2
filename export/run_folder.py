"""Read and check a training run folder (``python -m segcore.train`` output) for export."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from export import ExportError
from segcore.data import Sample, read_split
from segcore.data.sources import split_sources
from segcore.data.split import parse_fractions
from segcore.errors import DataError
from segcore.run_config import RunConfig

REQUIRED_CONFIG = ("arch", "dataset", "img_size", "channels")


@dataclass(frozen=True)
class RunFolder:
    """What export uses from a run: its config, data split and Keras test metrics."""

    path: Path
    config: RunConfig
    split: dict[str, list[Sample]]
    keras_test_metrics: dict | None

    @property
    def model_path(self) -> Path:
        """The best checkpoint, ``best.keras``."""
        return self.path / "best.keras"

    @property
    def history_path(self) -> Path:
        """The per-epoch log, ``history.csv``."""
        return self.path / "history.csv"

    def eval_split(self) -> tuple[str, list[Sample]]:
        """The split to score the export on: test, or val when the run kept no test images."""
        for name in ("test", "val"):
            if self.split.get(name):
                return name, self.split[name]
        raise ExportError(f"{self.path}/split.json: no test or val images to check the export on")


def read_run(path: str | Path) -> RunFolder:
    """Load a run folder's config.json, split.json and test_metrics.json; raises ExportError."""
    path = Path(path)
    if not path.is_dir():
        raise ExportError(f"{path}: run folder not found")
    if not (path / "best.keras").is_file():
        raise ExportError(
            f"{path}: no best.keras in the run folder (did training finish an epoch?)"
        )
    raw = _read_json(path / "config.json")
    missing = [k for k in REQUIRED_CONFIG if k not in raw]
    if missing:
        raise ExportError(f"{path}/config.json: missing {', '.join(missing)}")
    try:
        config = RunConfig.read(path)
    except DataError as exc:
        raise ExportError(str(exc)) from None
    if not (path / "split.json").is_file():
        raise ExportError(f"{path}: no split.json in the run folder")
    try:
        split = read_split(path / "split.json")
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{path}/split.json: unreadable ({exc})") from exc
    metrics_path = path / "test_metrics.json"
    metrics = _read_json(metrics_path) if metrics_path.is_file() else None
    return RunFolder(path, config, split, metrics)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ExportError(f"{path}: not found") from None
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: unreadable ({exc})") from exc


def add_data_flag(parser: argparse.ArgumentParser) -> None:
    """``--data``: the folder(s) a shipped model trained on, to re-create its split."""
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        action="append",
        help="the data folder the run trained on (repeat, in training's order, for several)",
    )


def split_from_card(card: dict, data_root: str | Path | list[Path]) -> dict[str, list[Sample]]:
    """Re-create a run's seeded train/val/test split from its card (``split``, ``seed``).

    For a shipped model whose run folder is gone: the same data folder(s), fractions and seed
    give the split training made (`segcore.data.sources.split_sources`: each folder split on its
    own, in the order training had them). Raises ExportError.
    """
    missing = [k for k in ("split", "seed") if card.get(k) is None]
    if missing:
        raise ExportError(f"model card lacks {', '.join(missing)}: cannot re-create the split")
    folders = [str(f) for f in data_root] if isinstance(data_root, list) else [str(data_root)]
    try:
        fractions = parse_fractions(card["split"])
        return split_sources(folders, "auto", False, fractions, int(card["seed"])).split
    except DataError as exc:
        raise ExportError(f"--data {' '.join(folders)}: {exc}") from exc


def shipped_split(card: dict, data_root: str | Path | list[Path], check_test: bool = True) -> dict:
    """`split_from_card` for a shipped model, checked against the card: the re-created test split
    must have as many images as the card's test scores (unless ``check_test`` is false).
    Raises ExportError."""
    split = split_from_card(card, data_root)
    expected = (card.get("test_metrics") or {}).get("n_images")
    if check_test and expected is not None and expected != len(split["test"]):
        raise ExportError(
            f"--data {data_root}: the re-created test split has {len(split['test'])} images, "
            f"the card {expected}; not the data this model trained on"
        )
    return split
