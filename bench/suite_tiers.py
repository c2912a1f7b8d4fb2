"""How long each tier of the test suite takes on this machine, as CI runs it.

    python -m bench.suite_tiers [--tier everything|quick|browser ...] [--runs N] [--clone]
                                [--out FILE]

Runs each tier's pytest command the way ``.ci/run`` does (``QT_QPA_PLATFORM=offscreen``, under
``xvfb-run -a`` where it is installed), ``--runs`` times, and appends one record per run to
``bench/results/test-tiers-<host>.json``: the pytest summary and its counts, pytest's own seconds
and the wall seconds, the peak memory of the largest process, and how busy the whole machine was
(``/proc/stat`` sampled each second: the core-seconds every process used, Chromium's renderers
and the tests' child processes included, which ``time`` does not see).

Before and after each run it times a fixed single-core loop (`reference_s`, the median of three):
this machine's speed drifts by a third within an hour, and the same suite's seconds with it, so a
run's time means little without the speed it ran at.

``--clone`` runs each time in a fresh ``git clone`` of the committed tree (no ``.pytest_cache``,
no JAX compilation cache, no test artifacts), as CI does; it uses this Python and its packages.
The tiers:

- ``everything``: ``python -m pytest`` (the README's test command),
- ``quick``: ``python -m pytest -m "not slow and not browser"`` (the inner loop),
- ``browser``: ``python -m pytest -n0 tests/browser`` (the real-browser tests alone, one process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from bench.records import add_out_flag, cpu_name, write_records
from segcore.paths import REPO_ROOT

TIERS = {
    "everything": [],
    "quick": ["-m", "not slow and not browser"],
    "browser": ["-n0", "tests/browser"],
}
#: The counts of pytest's last line ("853 passed, 1 skipped, 2 warnings in 338.42s (0:05:38)").
COUNTS = ("passed", "failed", "skipped", "errors", "error", "xfailed", "xpassed")
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed|skipped|errors?|deselected).* in [\d.]+s.*?)=*$")


def parse_summary(output: str) -> dict:
    """pytest's final summary line of ``output``, its counts and its seconds ({} without one)."""
    lines = [m.group(1).strip() for m in map(SUMMARY.match, output.splitlines()) if m]
    if not lines:
        return {}
    line = lines[-1]
    found = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", line.split(" in ")[0])}
    counts = {k: found.get(k, 0) for k in ("passed", "failed", "skipped")}
    counts["errors"] = found.get("errors", 0) + found.get("error", 0)
    seconds = float(re.search(r" in ([\d.]+)s", line).group(1))
    return {"pytest_summary": line, **counts, "pytest_s": seconds}


class BusySampler:
    """The share of all cores in use, read from ``/proc/stat`` once a second on a thread; the
    core-seconds used while it ran (None where ``/proc/stat`` is missing)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        return sum(values), values[3] + values[4]  # all jiffies, idle + iowait

    def _run(self) -> None:
        last = self._read()
        while last is not None and not self._stop.wait(1.0):
            now = self._read()
            if now is None:
                return
            total, idle = now[0] - last[0], now[1] - last[1]
            self.samples.append(1.0 - idle / total if total > 0 else 0.0)
            last = now

    def __enter__(self) -> BusySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> dict:
        if not self.samples:
            return {"core_s": None, "busy": None}
        cores = os.cpu_count() or 1
        return {
            "core_s": round(sum(self.samples) * cores, 1),
            "busy": round(sum(self.samples) / len(self.samples), 3),
        }


REFERENCE = "s = 0\nfor i in range(5_000_000):\n    s += i * i % 7"


def reference_seconds(repeats: int = 3) -> float:
    """CPU seconds of a fixed pure-Python loop in this process (median of ``repeats``): how fast
    one core of this machine runs now."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        exec(REFERENCE, {})
        times.append(time.process_time() - start)
    return round(sorted(times)[len(times) // 2], 3)


def tier_command(tier: str) -> list[str]:
    """The tier's command as ``.ci/run`` runs it (under ``xvfb-run -a`` where installed)."""
    command = [sys.executable, "-m", "pytest", "-q", *TIERS[tier]]
    xvfb = shutil.which("xvfb-run")
    return [xvfb, "-a", *command] if xvfb else command


def shown(command: list[str]) -> str:
    """``command`` as a person types it (``python`` for this interpreter, arguments quoted)."""
    words = [
        "python" if w == sys.executable else Path(w).name if w.startswith("/") else w
        for w in command
    ]
    return " ".join(f'"{w}"' if " " in w else w for w in words)


#: Runs argv[2:] and writes the peak resident memory (KB) of the largest process it waited for
#: (pytest, its workers and their children; Chromium is the browser driver's) to argv[1].
PEAK = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def run_tier(command: list[str], cwd: Path) -> dict:
    """Run ``command`` in ``cwd``; its summary, exit code, seconds, peak memory and busy share."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        with BusySampler() as busy:
            proc = subprocess.run(
                [sys.executable, "-c", PEAK, str(peak_file), *command],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
            )
        wall = time.perf_counter() - start
        peak = int(peak_file.read_text()) if peak_file.is_file() else None
    return {
        **parse_summary(proc.stdout),
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        **busy.summary(),
        "peak_rss_kb": peak,
        "output_tail": proc.stdout.splitlines()[-3:] if proc.returncode else None,
    }


def git(*args: str, cwd: Path = REPO_ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


def read_records(path: Path) -> list[dict]:
    """The records already in ``path`` (none when it is missing)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return []


def main(argv: list[str] | None = None) -> int:
    """Run the tiers, print one line per run, append the records."""
    p = argparse.ArgumentParser(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        prog="python -m bench.suite_tiers",
        description=__doc__.split("\n")[0],
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument("--tier", choices=list(TIERS), action="append", help="default: everything")
    p.add_argument("--runs", type=int, default=1, help="runs of each tier")
    p.add_argument("--clone", action="store_true", help="each run in a fresh clone of HEAD")
    add_out_flag(p, "test-tiers")
    a = p.parse_args(argv)
    commit = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=no").splitlines()
    dirty = any(not line[3:].startswith("bench/results/") for line in changed)  # but its records
    if a.clone and dirty:
        print("note: --clone runs the committed tree; uncommitted changes are not in it")
    records = read_records(a.out)
    failed = 0
    for tier in a.tier or ["everything"]:
        command = tier_command(tier)
        for _ in range(a.runs):
            with tempfile.TemporaryDirectory(prefix="suite-tiers-") as tmp:
                cwd = REPO_ROOT
                if a.clone:
                    cwd = Path(tmp) / "clone"
                    git("clone", "--quiet", str(REPO_ROOT), str(cwd))
                started = datetime.now().isoformat(timespec="minutes")
                before = reference_seconds()
                result = run_tier(command, cwd)
                speed = {"reference_s": [before, reference_seconds()]}
            record = {
                "tier": tier,
                "command": shown(command),
                "where": f"fresh clone at {commit}"
                if a.clone
                else f"working tree at {commit}" + (" with uncommitted changes" if dirty else ""),
                **result,
                **speed,
                "cpus": os.cpu_count(),
                "cpu": cpu_name(),
                "python": platform.python_version(),
                "date": started,
            }
            records.append({k: v for k, v in record.items() if v is not None})
            write_records(a.out, records)
            failed += result["exit_code"] != 0
            print(
                f"{tier:<10} {record['where']}: {result.get('pytest_summary', 'no summary')}; "
                f"wall {result['wall_s']:.0f} s, {result['core_s']} core-s; "
                f"reference loop {speed['reference_s']} s"
            )
    print(f"-> {a.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
