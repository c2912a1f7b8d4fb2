"""Atomic file writes: write to a temporary name beside the target, then rename over it.

A run killed at any moment leaves either the previous complete file or the new one, never a
partial file under the real name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """A temporary name in the target's folder that keeps its suffixes (Keras checks them)."""
    path = Path(path)
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to ``path``, else removed."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, obj: object) -> None:
    """Write ``obj`` as indented JSON (one-space indent, final newline) to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=1) + "\n")
