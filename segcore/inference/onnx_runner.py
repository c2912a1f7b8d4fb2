"""The default model runner of the engine: one onnxruntime session over an exported ONNX model.

A runner maps an NHWC float32 batch to its NHWK output channels (`segcore.inference.engine.Runner`); the
engine wraps everything else (pre-processing, tiles, flips, post-processing, decoding) around it.
The session is thread-safe, so one runner serves every thread of the app.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from segcore.card import ModelCard
from segcore.errors import ModelError

OPTIMIZATION_LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


#: The CUDA driver library, by system: onnxruntime-gpu lists its CUDA provider on any machine,
#: and logs a red error when it then finds no driver.
CUDA_DRIVER = {"win32": "nvcuda.dll", "darwin": ""}.get(sys.platform, "libcuda.so.1")


def cuda_driver_present() -> bool:
    """True when the NVIDIA driver library loads (a GPU machine), checked without onnxruntime."""
    if not CUDA_DRIVER:
        return False
    try:
        ctypes.CDLL(CUDA_DRIVER)
    except OSError:
        return False
    return True


def default_providers() -> list[str]:
    """CUDA then CPU when this onnxruntime build has CUDA and the machine a CUDA driver, else
    CPU alone (so a CPU machine never sees onnxruntime's CUDA load error)."""
    if "CUDAExecutionProvider" in ort.get_available_providers() and cuda_driver_present():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def quiet_onnxruntime_logs() -> None:
    """Show only fatal onnxruntime messages in this process: for entry points, never on import.

    On a machine without a usable GPU, onnxruntime-gpu logs the CUDA provider's "failed to load,
    falling back to CPU" at error level through its process-wide default logger, which session
    options do not reach. Real failures still raise Python exceptions.
    """
    ort.set_default_logger_severity(4)


def session_options(level: str, threads: int | None = None) -> ort.SessionOptions:
    """The session settings the engine uses, at the card's graph optimisation ``level``.

    Measured by bench.session_options (bench/results/session-options-*.json): one thread per
    core, no spinning, sequential execution were fastest for a batch-1 call followed by
    full-size finishing, and as fast as any for batch 8; spinning workers steal the cores that
    decoding, resizing and clean-up need next. The card names the level whose parity with Keras
    export checked: ORT_ENABLE_ALL (NCHWc layouts, ~16% faster on CPU) moved one instance-norm
    U-Net by 8e-4, EXTENDED by 4e-6.
    """
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # no CPU arena: it keeps the largest activations between calls (a 2000x2000 nuclei image
    # peaked at 1.14 GB with it, 0.70 GB without; 47 s and 58 s on the shared 2-core VM, whose
    # timings vary that much from run to run)
    options.enable_cpu_mem_arena = False
    options.graph_optimization_level = OPTIMIZATION_LEVELS[level]
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    return options


class OnnxRunner:
    """Run an ONNX segmentation model: NHWC float32 batch -> NHWK output channels."""

    def __init__(
        self,
        model_path: str | Path,
        card: ModelCard,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        """Open ``model_path`` for ``card``; ModelError naming the file when it is unusable or its
        input channels or output channels disagree with the card."""
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"{path}: model file not found")
        try:
            self.session = ort.InferenceSession(
                str(path),
                session_options(card.ort_optimization, threads),
                providers=list(providers or default_providers()),
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: not a usable ONNX model ({exc})") from exc
        self.providers: list[str] = self.session.get_providers()
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        if isinstance(inp.shape[-1], int) and inp.shape[-1] != card.channels:
            raise ModelError(
                f"{path}: input has {inp.shape[-1]} channels, card says {card.channels}"
            )
        if isinstance(out.shape[-1], int) and out.shape[-1] < card.outputs:
            raise ModelError(
                f"{path}: the model has {out.shape[-1]} output channel(s); its card's instance "
                f"decoding needs {card.outputs} (marker and foreground)"
            )
        self._input, self._output = inp.name, out.name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """All output channels (N, H, W, K) of an NHWC float32 batch."""
        return self.session.run([self._output], {self._input: batch})[0]
