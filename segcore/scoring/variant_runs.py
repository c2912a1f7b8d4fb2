"""The variant comparison's files: one folder per (data set, architecture), read and cross-checked.

``python -m bench.architectures`` writes, under ``models/variants/<dataset>/<arch>/``:

- ``model.onnx`` + ``model.json``: the exported model and its card (test scores of the ONNX model
  through the engine, its ``precision``, and a ``variant`` block: the training budget, whether
  the run was a toy/smoke run, training images per second, GFLOPs per image);
- ``history.csv``: the training log (`segcore.history`), one row per epoch;
- ``test_per_image.csv``: ``image`` plus one column per score (`segcore.scoring.scores.SCORE_NAMES`),
  one row per test image, the images whose means the card's ``test_metrics`` hold.

Their CPU latency lives in ``bench/results/variants-cpu-<host>.json`` (`read_cpu_ms`).

`read_variant` loads one folder, `find_variants` every folder under a root, and `check_variant`
lists every way a folder's files disagree with each other. Light: no Keras.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segcore.card import ModelCard
from segcore.errors import ModelError
from segcore.history import read_history
from segcore.scoring.scores import SCORE_NAMES

MODEL_FILE = "model.onnx"
CARD_FILE = "model.json"
HISTORY_FILE = "history.csv"
PER_IMAGE_FILE = "test_per_image.csv"
FILES = (MODEL_FILE, CARD_FILE, HISTORY_FILE, PER_IMAGE_FILE)
#: A shipped model's per-image test scores: ``models/<name>`` + this (same columns).
SHIPPED_PER_IMAGE = ".test_per_image.csv"
#: The fewest logged epochs a comparison run may have.
MIN_EPOCHS = 10
#: Largest gap accepted between the card's mean test score and the per-image file's mean.
MEAN_TOLERANCE = 1e-4
#: Scores the per-image file must hold (the ones the page compares).
REQUIRED_SCORES = ("dice", "iou")


@dataclass(frozen=True)
class PerImage:
    """Per-image test scores: image names and one array per score, in the same order."""

    images: list[str]
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class VariantRun:
    """One comparison run's folder: its data set, architecture, card and files."""

    folder: Path
    dataset: str
    arch: str
    card: ModelCard

    @property
    def model_path(self) -> Path:
        """The exported ONNX model."""
        return self.folder / MODEL_FILE

    @property
    def history_path(self) -> Path:
        """The training log."""
        return self.folder / HISTORY_FILE

    @property
    def per_image_path(self) -> Path:
        """The per-image test scores."""
        return self.folder / PER_IMAGE_FILE

    @property
    def variant(self) -> dict:
        """The card's ``variant`` block (budget, toy flag, speeds), empty when absent."""
        block = self.card.get("variant")
        return block if isinstance(block, dict) else {}

    @property
    def toy(self) -> bool:
        """True for a toy/smoke run (tiny budget, to prove the pipeline, not to compare)."""
        return bool(self.variant.get("toy"))


def read_per_image(path: Path) -> PerImage:
    """A per-image scores CSV (``image`` + score columns); ValueError naming the file when it is
    unreadable, lacks a column, names an image twice or holds a value that is not a number."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{path}: unreadable per-image scores ({exc})") from exc
    columns = set(rows[0]) if rows else set()
    missing = [c for c in ("image", *REQUIRED_SCORES) if c not in columns]
    if missing:
        raise ValueError(f"{path}: no {', '.join(missing)} column")
    images = [r["image"] for r in rows]
    if len(set(images)) != len(images):
        raise ValueError(f"{path}: an image is listed twice")
    scores = {}
    for name in (n for n in SCORE_NAMES if n in columns):
        try:
            values = np.array([float(r[name]) for r in rows])
        except (TypeError, ValueError):
            raise ValueError(f"{path}: a {name} value is not a number") from None
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: a {name} value is not a finite number")
        scores[name] = values
    return PerImage(images, scores)


def per_image_text(images: list[str], rows: list[dict[str, float]]) -> str:
    """The CSV text of per-image scores (``image`` first, then `SCORE_NAMES` present)."""
    names = [n for n in SCORE_NAMES if rows and n in rows[0]]
    lines = [",".join(["image", *names])]
    for image, row in zip(images, rows, strict=True):
        if "," in image or '"' in image or "\n" in image:
            image = '"' + image.replace('"', '""') + '"'
        lines.append(",".join([image, *(repr(float(row[n])) for n in names)]))
    return "\n".join(lines) + "\n"


def read_variant(folder: Path) -> VariantRun:
    """The run in ``folder`` (``<root>/<dataset>/<arch>``); ModelError naming the card when it
    is missing or unreadable."""
    folder = Path(folder)
    card = ModelCard.read(folder / CARD_FILE)
    return VariantRun(folder, folder.parent.name, folder.name, card)


def find_variants(root: Path) -> tuple[list[VariantRun], list[str]]:
    """Every run under ``root/<dataset>/<arch>/`` (sorted), and one message per unreadable one."""
    runs: list[VariantRun] = []
    problems: list[str] = []
    if not Path(root).is_dir():
        return runs, problems
    for card in sorted(Path(root).glob(f"*/*/{CARD_FILE}")):
        try:
            runs.append(read_variant(card.parent))
        except ModelError as exc:
            problems.append(str(exc))
    return runs, problems


def check_variant(folder: Path, min_epochs: int = MIN_EPOCHS) -> list[str]:
    """Every disagreement between the files of one run folder (empty when they agree): files
    missing, the card's data set or architecture unlike the folder's, fewer than ``min_epochs``
    logged or a log shorter than the card's epochs, per-image means unlike the card's test
    scores, an ONNX model that does not load in the engine, or whose card says another size,
    precision or file size than the model has."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        return [f"{folder}: missing {', '.join(missing)}"]
    try:
        run = read_variant(folder)
    except ModelError as exc:
        return [str(exc)]
    return _history_problems(run, min_epochs) + _score_problems(run) + _model_problems(run)


def _history_problems(run: VariantRun, min_epochs: int) -> list[str]:
    path = run.history_path
    problems = []
    for key, found, expected in (
        ("dataset", run.card.family, run.dataset),
        ("arch", run.card.arch, run.arch),
    ):
        if found != expected:
            problems.append(f"{run.folder / CARD_FILE}: {key} {found!r}, the folder {expected!r}")
    try:
        rows = read_history(path)
    except ValueError as exc:
        return [*problems, str(exc)]
    epochs = len(rows)
    if epochs < min_epochs:
        problems.append(f"{path}: {epochs} epochs logged, fewer than {min_epochs}")
    card_epochs = run.card.get("epochs")
    if isinstance(card_epochs, int) and rows and rows[-1]["epoch"] != card_epochs:
        problems.append(
            f"{path}: last epoch {rows[-1]['epoch']}, the card says {card_epochs} epochs"
        )
    for column in ("loss", "val_loss", "dice", "val_dice", "iou", "val_iou"):
        if rows and column not in rows[-1]:
            problems.append(f"{path}: no {column} column")
    return problems


def _score_problems(run: VariantRun) -> list[str]:
    try:
        per_image = read_per_image(run.per_image_path)
    except ValueError as exc:
        return [str(exc)]
    metrics = run.card.test_metrics
    problems = []
    if metrics.get("n_images") != len(per_image):
        problems.append(
            f"{run.per_image_path}: {len(per_image)} images, the card's test scores "
            f"{metrics.get('n_images')}"
        )
    for name, values in per_image.scores.items():
        card_mean = metrics.get(name)
        if not isinstance(card_mean, int | float) or not math.isfinite(card_mean):
            continue
        if len(values) and abs(float(values.mean()) - card_mean) > MEAN_TOLERANCE:
            problems.append(
                f"{run.per_image_path}: mean {name} {values.mean():.4f}, the card's {card_mean:.4f}"
            )
    if not isinstance(metrics.get("dice"), int | float):
        problems.append(f"{run.folder / CARD_FILE}: no test Dice")
    return problems


def _model_problems(run: VariantRun) -> list[str]:
    """Load the model in the engine and run it once at the card's size."""
    from segcore.inference.engine import Engine

    path = run.model_path
    problems = []
    size = run.card.get("onnx_bytes")
    if isinstance(size, int) and size != path.stat().st_size:
        problems.append(f"{path}: {path.stat().st_size} bytes, the card says {size}")
    try:
        engine = Engine(path)
        x = np.zeros((1, run.card.input_size, run.card.input_size, run.card.channels), np.float32)
        shape = engine.probabilities(x).shape
    except Exception as exc:  # onnxruntime raises its own types for a model it refuses
        return [*problems, f"{path}: does not run with its card ({exc})".splitlines()[0]]
    if shape != x.shape[:3]:
        problems.append(f"{path}: output {shape} for a {x.shape} input")
    quantized = _has_quantize_nodes(path)
    precision = run.card.get("precision")
    if quantized != (precision == "int8"):
        problems.append(
            f"{path}: {'int8' if quantized else 'float'} graph, the card says {precision!r}"
        )
    return problems


def _has_quantize_nodes(path: Path) -> bool:
    """True when the ONNX graph holds int8 QuantizeLinear nodes."""
    import onnx

    graph = onnx.load(path, load_external_data=False).graph
    return any(node.op_type == "QuantizeLinear" for node in graph.node)


def read_cpu_ms(folder: Path) -> tuple[dict[tuple[str, str], dict], list[str]]:
    """Batch-1 CPU latency of the comparison's models from ``variants-cpu*.json`` in ``folder``:
    (dataset, arch) -> record (the newest file wins), and one message per unreadable file."""
    out: dict[tuple[str, str], dict] = {}
    problems = []
    for path in sorted(folder.glob("variants-cpu*.json"), key=lambda p: p.stat().st_mtime):
        try:
            records = json.loads(path.read_text())
            for r in records:
                out[(r["dataset"], r["arch"])] = {**r, "file": path.name}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}: unreadable ({exc})")
    return out, problems
