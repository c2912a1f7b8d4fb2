"""The one catalog of exported models, used by ``segcore.commands.predict``, the app and napari.

A models folder holds ``<name>.onnx`` + its card ``<name>.json`` (+ ``<name>.history.csv``);
`list_models` finds every usable one, with one line per unusable one. The folder is
``$SEGCORE_MODELS_DIR`` when set, else the repository's ``models/`` (`segcore.paths.models_dir`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segcore.card import ModelCard
from segcore.errors import ModelError
from segcore.paths import models_dir


@dataclass(frozen=True)
class ModelEntry:
    """One exported model: its ONNX file, its card and (maybe) its training history."""

    name: str
    path: Path
    card: ModelCard
    history: Path | None

    @property
    def dataset(self) -> str:
        """The card's dataset name (``isic``, ``dsb``, ``plain``...) or ``"?"``."""
        return self.card.dataset or "?"

    @property
    def family(self) -> str:
        """The dataset family (``isic``, ``dsb``) the card's dataset name starts with, else the
        dataset name itself."""
        return self.card.family or "?"

    @property
    def test_dice(self) -> float | None:
        """Mean test Dice from the card, if recorded."""
        value = self.card.test_metrics.get("dice")
        return float(value) if isinstance(value, int | float) else None

    @property
    def version(self) -> int:
        """Modification time of the ONNX file (ns): part of every cache key, so a replaced
        model is reloaded."""
        return self.path.stat().st_mtime_ns

    def label(self) -> str:
        """One line for pickers: name, dataset, architecture and test Dice."""
        dice = f"Dice {self.test_dice:.3f}" if self.test_dice is not None else "Dice n/a"
        return f"{self.name} ({self.dataset}, {self.card.arch}, {dice})"


def list_models(folder: Path | None = None) -> tuple[list[ModelEntry], list[str]]:
    """Every usable model in ``folder`` (default `segcore.paths.models_dir`) sorted by file
    name, and one message per unusable one (its card missing or wrong)."""
    folder = models_dir() if folder is None else Path(folder)
    entries: list[ModelEntry] = []
    problems: list[str] = []
    if not folder.is_dir():
        return entries, problems
    for path in sorted(folder.glob("*.onnx")):
        try:
            card = ModelCard.read(path.with_suffix(".json"))
        except ModelError as exc:
            problems.append(str(exc))
            continue
        history = path.with_suffix(".history.csv")
        entries.append(
            ModelEntry(
                name=card.name,
                path=path,
                card=card,
                history=history if history.is_file() else None,
            )
        )
    return entries, problems


def by_name(entries: list[ModelEntry]) -> dict[str, ModelEntry]:
    """The entries by card name (the first of a name wins: entries are sorted by file name)."""
    named: dict[str, ModelEntry] = {}
    for entry in entries:
        named.setdefault(entry.name, entry)
    return named
