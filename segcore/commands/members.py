"""Train ensemble members in one command: ``python -m segcore.train ... --seeds 1,2,3``.

Each seed S trains one member, with the same flags, into the sibling run folder
``<out>-seed<S>``: the split comes from ``--seed`` (the same for every member, so they share
their validation and test images) and the weights and augmentation from ``--init-seed S``.
Members run as separate ``python -m segcore.train`` processes, ``--parallel N`` at a time (on
one GPU several small members fit at once). ``python -m export --ensemble RUN...`` then merges
them into one ONNX model. Ends with one line per member and a non-zero exit if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from segcore.errors import DataError


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` -> [1, 2, 3]; DataError naming --seeds for a bad or repeated list."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise DataError(f"--seeds {text}: give integers separated by commas, e.g. 1,2,3") from None
    if len(set(seeds)) != len(seeds) or len(seeds) < 2:
        raise DataError(f"--seeds {text}: give at least two different seeds")
    return seeds


def plan(argv: list[str]) -> tuple[list[tuple[int, Path, list[str]]], int]:
    """([(seed, run folder, train flags)] per member, processes at once) from the command line."""
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # --seed is not --seeds
    p.add_argument("--seeds", required=True)
    p.add_argument("--out")
    p.add_argument("--parallel", type=int, default=1)
    p.add_argument("--init-seed")
    p.add_argument("--resume")
    a, rest = p.parse_known_args(argv)
    seeds = parse_seeds(a.seeds)
    if a.init_seed is not None or a.resume is not None:
        flag = "--init-seed" if a.init_seed is not None else "--resume"
        raise DataError(f"{flag}: not with --seeds (each member gets its own; resume one run)")
    if not a.out:
        raise DataError("--out: required with --seeds (members go to <out>-seed<S>)")
    if a.parallel < 1:
        raise DataError(f"--parallel {a.parallel}: must be at least 1")
    members = []
    for seed in seeds:
        out = Path(f"{a.out}-seed{seed}")
        members.append((seed, out, [*rest, "--out", str(out), "--init-seed", str(seed)]))
    return members, a.parallel


def _train(flags: list[str]) -> int:
    """Run one member's training in its own process; its exit status."""
    return subprocess.run([sys.executable, "-m", "segcore.train", *flags], check=False).returncode


def main(argv: list[str]) -> int:
    """Train every member; 0 when all finished, else the first failure's status (2: bad input)."""
    try:
        members, parallel = plan(argv)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        codes = list(pool.map(_train, [flags for _, _, flags in members]))
    for (seed, out, _), code in zip(members, codes, strict=True):
        print(f"member seed {seed}: {out} " + ("done" if code == 0 else f"failed (exit {code})"))
    failed = [c for c in codes if c]
    print(f"{len(members) - len(failed)} of {len(members)} members trained")
    return failed[0] if failed else 0
