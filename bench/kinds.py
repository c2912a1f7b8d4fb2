"""Check the image-kind rule (`segcore.kinds`) on a DSB-layout data set: counts, ranges, confusion.

    python -m bench.kinds --data DSB_DIR [--truth bench/results/dsb2018-kinds.csv]

Prints, per kind the rule gives, the number of images and the range of its two statistics
(median luma, colour); with ``--truth`` (a CSV of ``image,kind`` set by looking at the images)
it prints the confusion table, truth in rows and the rule's kind in columns.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from segcore.data import find_samples
from segcore.inference.preprocess import load_image
from segcore.kinds import KINDS, image_kind, kind_statistics


def classify(data: Path) -> dict[str, tuple[str, float, float]]:
    """{image name: (kind, background, colour)} for every image of a DSB-layout folder."""
    _, samples = find_samples(data, "dsb")
    out = {}
    for sample in samples:
        pixels = load_image(sample.image)
        out[sample.name] = (image_kind(pixels), *kind_statistics(pixels))
    return out


def confusion(found: dict[str, tuple], truth: dict[str, str]) -> dict[tuple[str, str], int]:
    """{(true kind, rule's kind): count} over the images present in both."""
    table = {(t, k): 0 for t in KINDS for k in KINDS}
    for name, kind in truth.items():
        if name in found:
            table[(kind, found[name][0])] += 1
    return table


def main(argv: list[str] | None = None) -> int:
    """Command line; prints the counts, the statistics' ranges and the confusion table."""
    p = argparse.ArgumentParser(prog="python -m bench.kinds", description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, required=True, help="DSB stage1_train (or its parent)")
    p.add_argument("--truth", type=Path, help="CSV image,kind of the true kinds")
    a = p.parse_args(argv)
    found = classify(a.data)
    print(f"{'kind':<14} {'images':>6} {'median luma':>15} {'colour':>15}")
    for kind in KINDS:
        stats = [(b, c) for k, b, c in found.values() if k == kind]
        if stats:
            bs, cs = [s[0] for s in stats], [s[1] for s in stats]
            print(
                f"{kind:<14} {len(stats):6d} {min(bs):7.3f}-{max(bs):.3f} "
                f"{min(cs):7.3f}-{max(cs):.3f}"
            )
    if a.truth:
        with open(a.truth, newline="") as f:
            truth = {r["image"]: r["kind"] for r in csv.DictReader(f)}
        table = confusion(found, truth)
        print("\ntruth \\ rule  " + " ".join(f"{k:>12}" for k in KINDS))
        for t in KINDS:
            print(f"{t:<13} " + " ".join(f"{table[(t, k)]:12d}" for k in KINDS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
