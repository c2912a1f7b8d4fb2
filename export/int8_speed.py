"""How fast an int8 model runs here, and why: interleaved batch-1 timing against float32 with plain
onnxruntime sessions, the operators onnxruntime runs after optimising the graph (integer vs float
convolutions, the Quantize/Dequantize nodes left between them), and the CPU's integer features.

Used by `export.precision` (to choose the int8 form by speed as well as Dice) and
``python -m bench.int8``. Timings of one interleaved run are compared as ratios only: on a shared
machine the load hits every model alike, the absolute times do not hold.
"""

from __future__ import annotations

import collections
import functools
import platform
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from segcore.inference.onnx_runner import session_options

#: Graph optimisation level timed (the shipped cards' ``ort_optimization``).
LEVEL = "all"
#: Operators that run a convolution on integers, after onnxruntime's optimisation.
INTEGER_CONVS = ("QLinearConv", "ConvInteger", "NhwcQLinearConv", "QLinearConvTranspose")
#: Operators that run a convolution on floats, after onnxruntime's optimisation.
FLOAT_CONVS = ("Conv", "FusedConv", "NhwcFusedConv", "ConvTranspose")
#: CPU flags that decide onnxruntime's int8 kernels on x86 (VNNI/AMX: 4x int8 multiply-adds per
#: instruction over AVX2's 16-bit pairs, which saturate and are emulated more slowly).
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16")


@dataclass(frozen=True)
class Form:
    """One way to quantize: onnxruntime's QDQ or QOperator format, and the activation type."""

    format: str  # "QDQ" or "QOperator"
    activations: str  # "int8" or "uint8"

    @property
    def label(self) -> str:
        """``QDQ/uint8`` and the like."""
        return f"{self.format}/{self.activations}"


#: The int8 forms `export.precision` tries, in the order a tie is broken (the first wins).
FORMS = (
    Form("QDQ", "uint8"),
    Form("QDQ", "int8"),
    Form("QOperator", "uint8"),
    Form("QOperator", "int8"),
)


def forms_for(quant_format: str, activations: str) -> tuple[Form, ...]:
    """The `FORMS` a ``--quant-format`` and ``--activations`` choice allows ("auto": any)."""
    return tuple(
        f
        for f in FORMS
        if quant_format in ("auto", f.format) and activations in ("auto", f.activations)
    )


def cpu_facts() -> dict:
    """The CPU model, its int8-relevant flags, core count and onnxruntime's version."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    names = re.findall(r"^model name\s*:\s*(.+)$", text, flags=re.M)
    flags_line = re.findall(r"^flags\s*:\s*(.+)$", text, flags=re.M)
    flags = set(flags_line[0].split()) if flags_line else set()
    return {
        "cpu": names[0] if names else platform.processor() or platform.machine(),
        "int8_flags": {f: f in flags for f in INT8_FLAGS},
        "onnxruntime": ort.__version__,
        "providers": ["CPUExecutionProvider"],
    }


def session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A plain CPU onnxruntime session at `LEVEL`, with the engine's other settings."""
    return ort.InferenceSession(
        str(path), session_options(LEVEL, threads), providers=["CPUExecutionProvider"]
    )


def optimized_ops(path: Path) -> dict[str, int]:
    """Operator counts of the graph onnxruntime runs for ``path`` after optimising it."""
    options = session_options(LEVEL)
    options.log_severity_level = 3  # the "hardware specific" notice on saving an NCHWc graph
    with tempfile.TemporaryDirectory(prefix="segcore-ops-") as tmp:
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    return dict(collections.Counter(n.op_type for n in graph.node).most_common())


def kernels(path: Path) -> dict:
    """Which graph ``path`` holds (QDQ or QOperator) and which kernels onnxruntime runs for it:
    integer and float convolutions and the Quantize/Dequantize nodes left, after optimisation."""
    stored = collections.Counter(n.op_type for n in onnx.load(path).graph.node)
    ops = optimized_ops(path)
    qdq = stored["QuantizeLinear"] + stored["DequantizeLinear"]
    stored_format = "QOperator" if stored["QLinearConv"] else ("QDQ" if qdq else "float")
    return {
        "stored_format": stored_format,
        "stored_convs": {
            k: stored[k] for k in ("Conv", "ConvTranspose", "QLinearConv") if k in stored
        },
        "integer_convs": sum(ops.get(k, 0) for k in INTEGER_CONVS),
        "float_convs": sum(ops.get(k, 0) for k in FLOAT_CONVS),
        "quantize_nodes": ops.get("QuantizeLinear", 0),
        "dequantize_nodes": ops.get("DequantizeLinear", 0),
        "transposes": ops.get("Transpose", 0),
        "optimized_ops": ops,
    }


def interleaved_ms(
    calls: Mapping[str, Callable[[], object]], repeats: int
) -> dict[str, dict[str, float]]:
    """Median and p90 milliseconds of ``repeats`` rounds, each calling every entry once in turn
    (after one untimed warm-up round), so that load on a shared machine hits them alike."""
    for fn in calls.values():
        fn()
    seconds: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            start = time.perf_counter()
            fn()
            seconds[key].append(time.perf_counter() - start)
    return {
        k: {"median_ms": float(np.median(v) * 1e3), "p90_ms": float(np.percentile(v, 90) * 1e3)}
        for k, v in seconds.items()
    }


def batch1_ms(models: Mapping[str, Path], x: np.ndarray, repeats: int) -> dict[str, dict]:
    """Interleaved batch-1 timings (`interleaved_ms`) of plain sessions of ``models`` on ``x``
    (1xHxWxC float32)."""
    sessions = {k: session(p) for k, p in models.items()}
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    return interleaved_ms(
        {k: functools.partial(s.run, None, feeds[k]) for k, s in sessions.items()}, repeats
    )
