"""Training on several devices or processes with the engine the user runs.

- ``data-parallel``: Keras' distribution API (``keras.distribution.DataParallel``) under the JAX
  backend, over every local device; over several processes or hosts when Keras' own variables
  ``KERAS_DISTRIBUTION_JOB_ADDRESSES``, ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and
  ``KERAS_DISTRIBUTION_PROCESS_ID`` are set (read by ``keras.distribution.initialize()``).
- ``mirrored``: TensorFlow's ``MirroredStrategy`` over the local GPUs (TensorFlow backend).

The batch size is global: each process feeds its own slice of every global batch.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from segcore.errors import DataError

STRATEGIES = ("none", "mirrored", "data-parallel")
PROCESS_VARIABLES = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)
BACKEND_OF = {"mirrored": "tensorflow", "data-parallel": "jax"}


@dataclass(frozen=True)
class Topology:
    """Where a run computes: devices in all, processes, this process' index, and the TF strategy
    or Keras distribution to build and fit the model under."""

    devices: int = 1
    processes: int = 1
    process_id: int = 0
    strategy: Any = None
    distribution: Any = None

    @property
    def is_chief(self) -> bool:
        """True in the process that writes the run folder (process 0)."""
        return self.process_id == 0

    def scope(self) -> AbstractContextManager:
        """The context to build and fit the model in (outside it, code runs on one device)."""
        if self.strategy is not None:
            return self.strategy.scope()
        return self.distribution.scope() if self.distribution is not None else nullcontext()

    def agree(self, flag: bool) -> bool:
        """Process 0's value of ``flag`` in every process, so that all stop at the same epoch."""
        if self.processes == 1:
            return flag
        from jax.experimental import multihost_utils

        return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def check_backend(name: str) -> None:
    """Raise DataError (one line naming the alternative) when the backend cannot run ``name``."""
    import keras

    backend = keras.backend.backend()
    needed = BACKEND_OF.get(name)
    if needed is None or needed == backend:
        return
    other = next((s for s, b in BACKEND_OF.items() if b == backend), None)
    hint = f"; under {backend} use --distribute {other}" if other else ""
    raise DataError(f"--distribute {name} needs KERAS_BACKEND={needed}{hint}")


def setup(name: str) -> Topology:
    """Start the strategy ``name`` (see the module docstring); call before any computation."""
    import keras

    check_backend(name)
    if name == "mirrored":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        return Topology(devices=strategy.num_replicas_in_sync, strategy=strategy)
    if name != "data-parallel":
        return Topology()
    if any(os.environ.get(v) for v in PROCESS_VARIABLES):
        missing = [v for v in PROCESS_VARIABLES if not os.environ.get(v)]
        if missing:
            raise DataError(f"--distribute data-parallel: set {', '.join(missing)} as well")
        keras.distribution.initialize()
    import jax

    devices = keras.distribution.list_devices()
    return Topology(
        devices=len(devices),
        processes=jax.process_count(),
        process_id=jax.process_index(),
        distribution=keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False),
    )


def global_batch_size(batch_size: int, n: int, topology: Topology) -> int:
    """The largest global batch <= ``batch_size`` (and <= ``n`` images, when more than the
    devices) that splits evenly over the devices."""
    d = topology.devices
    if d <= 1:
        return batch_size
    return max(d, min(batch_size, n) // d * d)
