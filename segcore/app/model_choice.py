"""The app's side of the model catalog (`segcore.catalog`, shared with ``predict`` and
napari): which model a picker preselects, and what to say when there is none."""

from __future__ import annotations

from segcore.catalog import ModelEntry, list_models

__all__ = ["EXPORT_HINT", "ModelEntry", "default_model", "list_models"]

EXPORT_HINT = (
    "Train a model with `python -m segcore.train --data DIR` and export it with "
    "`python -m export RUN_DIR`; it lands in `models/` as `<name>.onnx` + `<name>.json`."
)


def default_model(entries: list[ModelEntry], family: str | None = None) -> int:
    """Index of the model to preselect: the best test Dice, within ``family`` when it has one."""
    candidates = [i for i, e in enumerate(entries) if e.family == family] or range(len(entries))
    return max(candidates, key=lambda i: entries[i].test_dice or -1.0)
