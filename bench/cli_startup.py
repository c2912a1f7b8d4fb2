"""How long each command takes to answer ``--help``, beside Python's own start.

    python -m bench.cli_startup [--repeats 7] [--out FILE]

Every command parses its flags before Keras, TensorFlow or onnxruntime load, so ``--help`` costs
the light imports only. Runs each ``python -m <command> --help`` in a fresh process, interleaved
with the others, and prints the median wall time and the median above ``python -c pass``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from bench.records import add_out_flag, write_records
from segcore.paths import REPO_ROOT

COMMANDS = (
    "segcore.commands.train",
    "segcore.commands.evaluate",
    "segcore.commands.instance_eval",
    "segcore.commands.predict",
    "export",
    "export.quantize",
)


def timed(args: list[str]) -> float:
    """Seconds one process takes to run ``python args``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=REPO_ROOT, capture_output=True, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Measure, print a table, write the records."""
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.cli_startup",
        description=__doc__.split("\n")[0],
    )
    p.add_argument("--repeats", type=int, default=7, help="runs per command (interleaved)")
    add_out_flag(p, "cli-startup")
    a = p.parse_args(argv)
    runs: dict[str, list[float]] = {"python": [], **{c: [] for c in COMMANDS}}
    for _ in range(a.repeats):
        runs["python"].append(timed(["-c", "pass"]))
        for command in COMMANDS:
            runs[command].append(timed(["-m", command, "--help"]))
    base = statistics.median(runs["python"])
    records = []
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        records.append(
            {
                "command": name,
                "median_s": round(median, 3),
                "above_python_s": round(median - base, 3),
            }
        )
        print(f"{name:<24} {median:6.3f} s  ({median - base:+.3f} s above python)")
    print(f"-> {write_records(a.out, records)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
