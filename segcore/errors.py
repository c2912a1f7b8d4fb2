"""User errors versus bugs: one exception family for everything a user can fix.

A `UserError` is a bad flag, file, folder or model; its message is one line naming it. Command-line
entry points (`segcore.cli.run_command`) print it as ``error: <message>`` and exit with status 2,
without a traceback. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Something the user gave that cannot be used; the message is one line naming it."""


class DataError(UserError):
    """A dataset folder, split or run folder that cannot be used."""


class ImageError(UserError):
    """An input file that cannot be used as an image or mask; the message names the file."""


class ModelError(UserError):
    """A model file or card that cannot be used; the message names the file."""


def reason(exc: BaseException) -> str:
    """An exception as a short phrase for a one-line message: its type and first line."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


class ClusterError(UserError):
    """A Dask scheduler that cannot be used or was lost; ends the whole run (blocks saved so far
    stay for the resume)."""
