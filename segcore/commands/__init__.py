"""The command-line entry points (``python -m segcore.train|predict|evaluate`` and the rest)."""
