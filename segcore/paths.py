"""Where the project keeps its models, samples and benchmark results (overridable by env vars)."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository's root folder (the parent of the ``segcore`` package).
REPO_ROOT = Path(__file__).resolve().parents[1]


def _folder(variable: str, default: Path) -> Path:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser() if value else default


def models_dir() -> Path:
    """``$SEGCORE_MODELS_DIR``, else ``<repo>/models``."""
    return _folder("SEGCORE_MODELS_DIR", REPO_ROOT / "models")


def samples_dir() -> Path:
    """``$SEGCORE_SAMPLES_DIR``, else ``<repo>/samples``."""
    return _folder("SEGCORE_SAMPLES_DIR", REPO_ROOT / "samples")


def bench_dir() -> Path:
    """``$SEGCORE_BENCH_DIR``, else ``<repo>/bench/results``."""
    return _folder("SEGCORE_BENCH_DIR", REPO_ROOT / "bench" / "results")


def variants_dir() -> Path:
    """``$SEGCORE_VARIANTS_DIR``, else ``<models>/variants``: the variant comparison's runs
    (``<dataset>/<arch>/``, `segcore.scoring.variant_runs`)."""
    return _folder("SEGCORE_VARIANTS_DIR", models_dir() / "variants")
