"""What every command shares: argparse value types, help that shows defaults, logging, the
one-line failure.

- Types (`positive_int`, `non_negative_int`, `probability`, `overlap`, `shard`) refuse a bad value
  while parsing, so the command stops before any work with argparse's one line and exit 2.
- `parser` makes an ArgumentParser whose ``--help`` shows every default.
- `setup_logging` sends messages (``INFO`` text, ``warning: ...``) to stderr through tqdm, so a
  warning never breaks a progress bar; warnings of every module go through `logging`.
- `run_command` calls a command's body and turns a `segcore.errors.UserError` into
  ``error: <message>`` and exit 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from collections.abc import Callable

from segcore.errors import UserError

#: Exit status of a command whose input or flags were unusable (argparse uses it too).
EXIT_USAGE = 2


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help with the defaults shown and the description's line breaks kept; a help text that
    says its default in words ("(default: the card's)") is not given argparse's "(default: None)"
    as well."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help and "(default:" in action.help:
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are `UserError`s (``--flag value: what``), which
    `run_command` prints as one line with exit status 2."""

    def error(self, message: str):
        """argparse's hook for a bad command line: raise instead of printing usage."""
        raise UserError(re.sub(r"^argument ([^:]+?)(?:/[^:]+)?: ", r"\1 ", message))


def parser(prog: str, description: str, show_defaults: bool = True) -> argparse.ArgumentParser:
    """An ArgumentParser for ``python -m prog`` whose --help shows every default (appended by
    argparse; with ``show_defaults`` False the help texts say the defaults themselves, for
    commands whose flags default to None to tell a given flag apart) and whose errors are one
    line."""
    formatter = _Formatter if show_defaults else argparse.RawDescriptionHelpFormatter
    return _Parser(prog=prog, description=description, formatter_class=formatter)


def positive_int(text: str) -> int:
    """A whole number >= 1 (argparse type)."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (argparse type)."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{text}: must be at least {low}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number")
    return value


def probability(text: str) -> float:
    """A number from 0 to 1 (argparse type); NaN and infinities are refused."""
    value = _finite(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 1")
    return value


def overlap(text: str) -> float:
    """A tile overlap: a number from 0 to 0.9 (argparse type)."""
    value = _finite(text)
    if not 0.0 <= value <= 0.9:
        raise argparse.ArgumentTypeError(f"{text}: must be between 0 and 0.9")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (argparse type)."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be above 0")
    return value


def shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N (argparse type)."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"must be K/N, such as 1/4, not {text!r}")
    k, n = int(match[1]), int(match[2])
    if n < 1 or not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"{text}: K must be 1 to N and N at least 1")
    return k, n


class _TqdmHandler(logging.Handler):
    """Write log records with ``tqdm.write``, so they appear above a progress bar, not inside."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging's own contract: a failing handler must not raise
            self.handleError(record)


class _Format(logging.Formatter):
    """``INFO`` messages as plain text, others as ``warning: ...`` / ``error: ...``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno <= logging.INFO:
            return message
        return f"{record.levelname.lower()}: {message}"


#: The loggers whose messages a command shows: the project's own (a library's warnings, such as
#: TensorFlow's retracing notes, stay out of the user's terminal).
OWN_LOGGERS = ("segcore", "export", "bench")


def setup_logging(verbose: bool = False) -> None:
    """Route the project's messages to stderr (through tqdm); DEBUG too with ``verbose``."""
    handler = _TqdmHandler()
    handler.setFormatter(_Format())
    for name in OWN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [h for h in logger.handlers if not isinstance(h, _TqdmHandler)]
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    # tifffile logs each damaged tag or page it skips; the command's own line names the file
    logging.getLogger("tifffile").setLevel(logging.DEBUG if verbose else logging.CRITICAL)


def fail(message: str) -> int:
    """Print ``error: message`` on stderr; returns the usage exit status (2)."""
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_command(body: Callable[[], int]) -> int:
    """Run a command's body; a `UserError` becomes one ``error:`` line and exit 2."""
    try:
        return body()
    except UserError as exc:
        return fail(str(exc))
