"""Where the benchmarks keep what they measured: ``bench/results/<kind>-<tag>.json``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from export.table import RESULTS_DIR
from segcore.atomic import write_text


def write_records(kind: str, tag: str, records: list[dict]) -> Path:
    """Write ``records`` atomically to ``RESULTS_DIR/<kind>-<tag>.json``; return that path.

    The tag (a host name by default) is made safe for a file name.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{re.sub(r'[^A-Za-z0-9_.-]', '_', tag)}.json"
    write_text(path, json.dumps(records, indent=1) + "\n")
    return path
