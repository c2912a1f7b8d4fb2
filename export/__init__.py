"""ONNX export of a training run with its model card: ``python -m export RUN_DIR``.

Kept free of heavy imports so the command checks its arguments before TensorFlow loads.
"""

from segcore.errors import UserError


class ExportError(UserError):
    """A run that cannot be exported, or a model that fails its checks; one-line message."""
