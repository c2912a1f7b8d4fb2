"""Everything that imports Keras, TensorFlow or JAX: the training loop and what it needs.

The loop (`loop`), its callbacks, distribution over devices and processes, losses, metrics, the
Keras batch feeders, evaluation of a run (`evaluate`) and the tuning of instance decoding
(`tuning`). Importing this package itself is light; its modules are not. The rest of segcore
(pre-processing, the onnxruntime engine, prediction, the app) never imports them, except the
command-line entry points `segcore.commands.train`, `segcore.commands.evaluate` and `segcore.commands.instance_eval`, which
parse their flags first.
"""
