"""ONNX export of a training run with its model card: ``python -m export RUN_DIR``.

Kept free of heavy imports so the command checks its arguments before TensorFlow loads.
"""

import argparse

from segcore.errors import UserError

#: The precisions ``--precision`` writes (`export.precision`).
PRECISIONS = ("fp32", "fp16", "int8")
#: Activation types ``--activations`` offers; "auto" lets `export.precision` choose by measured
#: speed and validation Dice (see `export.int8_speed`).
ACTIVATIONS = ("auto", "int8", "uint8")
#: onnxruntime graph formats ``--quant-format`` offers: QDQ (Quantize/Dequantize pairs around
#: float operators, fused by onnxruntime) or QOperator (QLinearConv in the file); "auto" chooses.
QUANT_FORMATS = ("auto", "QDQ", "QOperator")


class ExportError(UserError):
    """A run that cannot be exported, or a model that fails its checks; one-line message."""


def add_int8_flags(p: argparse.ArgumentParser) -> None:
    """``--activations`` and ``--quant-format``: the int8 forms tried ("auto": chosen by measured
    speed and validation Dice, `export.precision`)."""
    p.add_argument(
        "--activations",
        choices=ACTIVATIONS,
        default="auto",
        help="int8 activation type (auto: the fastest that keeps validation Dice)",
    )
    p.add_argument(
        "--quant-format",
        choices=QUANT_FORMATS,
        default="auto",
        help="onnxruntime int8 graph format (auto: the fastest that keeps validation Dice)",
    )
