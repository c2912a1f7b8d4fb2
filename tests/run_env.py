"""Environments for the tests' child processes (``python -m segcore.train`` and friends).

`FAST_XLA` turns off XLA's expensive CPU optimisations: a tiny model under JAX then compiles in
a fraction of the time (the smoke of `bench.gpu_job` went from about 450 s to 120 s on a loaded
2-core machine), and what the tests check (files, shapes, exit codes) does not depend on them.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def child_env(backend: str | None = None, **extra: str) -> dict[str, str]:
    """``os.environ`` for a child process: the repo importable, TensorFlow quiet, the Keras
    ``backend`` chosen (None: the default, whatever the parent was given), and under JAX the
    fast XLA flags (ahead of any ``XLA_FLAGS`` in ``extra``, which are kept)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    env.pop("KERAS_BACKEND", None)
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    if backend == "jax":
        env["XLA_FLAGS"] = f"{FAST_XLA} {extra.pop('XLA_FLAGS', '')}".strip()
    env.update(extra)
    return env
