"""Where the benchmarks keep what they measured: ``bench/results/<kind>-<host>.json`` by default,
or the file ``--out`` names."""

from __future__ import annotations

import argparse
import json
import platform
import re
import socket
from pathlib import Path

from export.table import RESULTS_DIR
from segcore.atomic import write_text


def default_path(kind: str) -> Path:
    """``RESULTS_DIR/<kind>-<host>.json`` (the host name made safe for a file name)."""
    host = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())
    return RESULTS_DIR / f"{kind}-{host}.json"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.M)
        if names:
            return names[0]
    return platform.processor() or platform.machine()


def add_out_flag(parser: argparse.ArgumentParser, kind: str) -> None:
    """``--out FILE`` (default `default_path`), and the old ``--tag NAME`` (the file's suffix)."""
    parser.add_argument(
        "--out", type=Path, default=default_path(kind), help="results file (JSON) to write"
    )
    parser.add_argument(
        "--tag",
        type=lambda tag: RESULTS_DIR / f"{kind}-{re.sub(r'[^A-Za-z0-9_.-]', '_', tag)}.json",
        dest="out",
        help=argparse.SUPPRESS,
    )


def write_records(path: Path, records: list[dict]) -> Path:
    """Write ``records`` atomically to ``path`` (creating its folder); return that path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(records, indent=1) + "\n")
    return path
