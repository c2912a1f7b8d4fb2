"""ONNX export of a training run with its model card: ``python -m export RUN_DIR``.

Kept free of heavy imports so the command checks its arguments before TensorFlow loads.
"""

from segcore.errors import UserError

#: The precisions ``--precision`` writes (`export.precision`).
PRECISIONS = ("fp32", "fp16", "int8")
#: Activation types ``--activations`` offers: signed int8 (default) or unsigned. Measured with
#: onnxruntime 1.31's CPU provider: with int8 activations it fused DQ -> Conv -> Q into QLinearConv
#: for all 19 Conv nodes of the batch-norm U-Net (its 4 ConvTranspose stay float) but for only 6
#: of the instance-norm U-Net's 29 (those whose output feeds one node; no faster than fp32); with
#: uint8 activations for all 29.
ACTIVATIONS = ("int8", "uint8")


class ExportError(UserError):
    """A run that cannot be exported, or a model that fails its checks; one-line message."""
