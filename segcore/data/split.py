"""Deterministic train/val/test split by seed and fractions, stored as split.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from segcore.atomic import write_text
from segcore.data.layouts import Sample
from segcore.errors import DataError

SPLIT_NAMES = ("train", "val", "test")


def parse_fractions(text: str) -> tuple[float, float, float]:
    """Parse '0.8,0.1,0.1' into three fractions summing to 1 (raises DataError otherwise)."""
    try:
        parts = tuple(float(x) for x in text.split(","))
    except ValueError as exc:
        raise DataError(f"--split {text!r}: expected three numbers like 0.8,0.1,0.1") from exc
    if len(parts) != 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise DataError(f"--split {text!r}: expected three non-negative fractions summing to 1")
    return parts[0], parts[1], parts[2]


def make_split(
    samples: list[Sample], fractions: tuple[float, float, float], seed: int
) -> dict[str, list[Sample]]:
    """Shuffle with ``seed`` and cut into train/val/test by ``fractions`` (val, test >= 1 if > 0)."""
    n = len(samples)
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(fractions[1] * n)) if fractions[1] > 0 else 0
    n_test = max(1, round(fractions[2] * n)) if fractions[2] > 0 else 0
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"{n} samples are too few for split {fractions}")
    picked = [samples[i] for i in order]
    return {
        "train": picked[:n_train],
        "val": picked[n_train : n_train + n_val],
        "test": picked[n_train + n_val :],
    }


def write_split(path: Path, split: dict[str, list[Sample]], root: Path, meta: dict) -> None:
    """Write split.json (atomically): the data root, settings and the exact file lists."""
    obj = {"root": str(Path(root).resolve()), **meta}
    obj.update({k: [s.to_json(Path(root)) for s in split[k]] for k in SPLIT_NAMES})
    write_text(Path(path), json.dumps(obj, indent=1))


def read_split(path: Path, root: Path | None = None) -> dict[str, list[Sample]]:
    """Read split.json back into Samples (``root`` overrides the stored data root)."""
    obj = json.loads(Path(path).read_text())
    base = Path(root) if root is not None else Path(obj["root"])
    return {k: [Sample.from_json(s, base) for s in obj[k]] for k in SPLIT_NAMES}
