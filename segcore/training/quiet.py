"""Keep TensorFlow's start-up notices off the terminal unless the user asks (``--verbose``).

On a machine without a GPU, importing TensorFlow prints CUDA and oneDNN lines ("Could not find
cuda drivers", "failed call to cuInit", "oneDNN custom operations are on", ...) before its own
log settings apply; they are harmless but alarming. `quiet_tensorflow` imports TensorFlow and
starts its devices with the process' stderr pointed at the null device, then restores it, and
keeps TensorFlow's later C++ info and warning lines out. Errors still show: an exception raised
by the import surfaces after stderr is back.

Under JAX (or torch) TensorFlow is not needed at all, but Keras asks whether it is installed, to
seed it (``set_random_seed``) and to recognise its types when saving a model, and asking imports
it. `tensorflow_left_unloaded` answers "no" while TensorFlow is not loaded, which is true of every
object in such a process (a tiny one-epoch JAX training run, timed by hand with
``/usr/bin/time``: 15.6 -> 10.8 s of CPU and 1.1 -> 0.6 GB peak memory).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def uses_tensorflow() -> bool:
    """True when this process' Keras backend is TensorFlow (decided without importing Keras)."""
    backend = os.environ.get("KERAS_BACKEND")
    if not backend and "keras" in sys.modules:
        backend = sys.modules["keras"].backend.backend()
    if not backend:
        config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
        try:
            backend = json.loads(config.read_text()).get("backend")
        except (OSError, ValueError):
            backend = None
    return (backend or "tensorflow") == "tensorflow"


def quiet_tensorflow(verbose: bool = False, force: bool = False) -> None:
    """Import TensorFlow with its start-up notices hidden (shown when ``verbose``).

    Does nothing when TensorFlow is already imported, not installed, or not the Keras backend
    (unless ``force``, for code that needs TensorFlow whatever the backend, such as export).
    """
    if verbose or "tensorflow" in sys.modules:
        return
    if not (force or uses_tensorflow()) or importlib.util.find_spec("tensorflow") is None:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # later C++ info and warning lines
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # device start-up prints the CUDA lines
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@contextmanager
def tensorflow_left_unloaded() -> Iterator[None]:
    """Within the block, Keras under another backend does not import TensorFlow.

    Keras' ``set_random_seed`` seeds TensorFlow, and its saving code checks objects for
    TensorFlow types, whenever TensorFlow is *installed*, importing it to find out (~5 s of CPU,
    ~0.5 GB). While it is not loaded no TensorFlow object or random stream exists, so both are
    skipped. Does nothing under the TensorFlow backend or once TensorFlow is loaded; Keras asks
    afresh after the block.

    Keras offers no public switch for this: the answer is the cached ``_available`` of its lazy
    ``tensorflow`` module (``keras.src.utils.module_utils``, private). Where a Keras release
    lacks it, the block changes nothing (TensorFlow gets imported, as before);
    ``tests/training/test_quiet.py`` fails then, so the change is seen.
    """
    import keras

    lazy = _lazy_tensorflow()
    if lazy is None or keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        yield
        return
    saved = lazy._available
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = saved


def _lazy_tensorflow() -> Any:
    """Keras' lazy ``tensorflow`` module, if this Keras has one with a cached ``_available``."""
    try:
        from keras.src.utils import module_utils
    except ImportError:
        return None
    lazy = getattr(module_utils, "tensorflow", None)
    return lazy if hasattr(lazy, "_available") else None
