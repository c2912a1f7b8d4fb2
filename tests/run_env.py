"""Environments for the tests' child processes (``python -m segcore.train`` and friends).

`FAST_XLA` turns off XLA's expensive CPU optimisations: a tiny model under JAX then compiles in
a fraction of the time (the smoke of `bench.gpu_job` went from about 450 s to 120 s on a loaded
2-core machine), and what the tests check (files, shapes, exit codes) does not depend on them.
Its last flag, XLA's older loop code for fused operations instead of its fusion emitters, took a
tiny 1-epoch training child from 13.2-13.7 to 8.9-9.2 s of CPU with an empty compilation cache
(the state of a fresh clone; two runs each, timed by hand with ``/usr/bin/time``).
JAX children also share a persistent compilation cache (`JAX_CACHE`, under ``.pytest_cache/``):
a process that compiles what an earlier one did (a resumed run, a second test session) loads it
instead (a tiny 2-epoch run here: 14.2 s of CPU cold, 8.8 s warm, timed by hand with
``/usr/bin/time``).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAST_XLA = (
    "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true "
    "--xla_cpu_use_fusion_emitters=false"
)
JAX_CACHE = REPO / ".pytest_cache" / "jax-compilation-cache"


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
        env["JAX_COMPILATION_CACHE_DIR"] = str(JAX_CACHE)
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"  # FAST_XLA compiles are quick
        env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    env.update(extra)
    return env
