"""Speed of `segcore.scoring.matching.overlap_table` (the core of every instance score and of the
decoding search) against the plain way of counting overlaps by sorting (`overlaps_by_sorting`,
what the module did before): ``python -m bench.matching [--data FOLDER ...] [--rounds 15]``.

Real label images: the bundled DSB samples (one id per nucleus) and, with ``--data``, any data
set folder (e.g. ``../shared/data/monuseg2018``, 1000x1000 tiles of several hundred nuclei). The
prediction is the truth shifted by 3 pixels, so objects overlap partly as a model's would. Both
ways run interleaved on the same images; the tables must be equal. Prints and appends to
``--out`` (default ``bench/results/matching.json``) the median milliseconds per image of each
way and their ratio.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from bench.data_pipeline import append_record
from export.table import RESULTS_DIR
from segcore.paths import REPO_ROOT
from segcore.scoring.matching import overlap_table

RESULTS = RESULTS_DIR / "matching.json"


def overlaps_by_sorting(truth: np.ndarray, pred: np.ndarray) -> list[np.ndarray]:
    """The overlap table the plain way: `np.unique` over ids and over pairs of ids (true areas,
    predicted areas, rows, columns, shared pixels)."""

    def ids(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, inverse, counts = np.unique(labels.ravel(), return_inverse=True, return_counts=True)
        if values.size and values[0] == 0:
            return counts[1:], inverse.ravel() - 1
        return counts, inverse.ravel()

    true_area, t = ids(truth)
    pred_area, p = ids(pred)
    both = (t >= 0) & (p >= 0)
    width = max(pred_area.size, 1)
    pairs, inter = np.unique(t[both] * width + p[both], return_counts=True)
    return [true_area, pred_area, pairs // width, pairs % width, inter]


def label_images(folders: list[Path]) -> list[tuple[str, np.ndarray]]:
    """(name, instance labels) of every sample of ``folders``."""
    from segcore.data import find_samples
    from segcore.data.layouts import load_labels

    out = []
    for folder in folders:
        _, samples = find_samples(folder)
        out += [(f"{folder.name}/{s.name}", load_labels(s)[1]) for s in samples]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, nargs="*", default=[], help="more data set folders")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out", type=Path, default=RESULTS)
    a = p.parse_args(argv)
    images = label_images([REPO_ROOT / "samples" / "dsb", *a.data])
    mine, plain = [], []
    for round_ in range(a.rounds):  # interleaved: the machine's drift hits both ways alike
        for name, truth in images:
            pred = np.roll(truth, 3, axis=1)
            start = time.perf_counter()
            table = overlap_table(truth, pred)
            mine.append(time.perf_counter() - start)
            start = time.perf_counter()
            reference = overlaps_by_sorting(truth, pred)
            plain.append(time.perf_counter() - start)
            got = [table.true_area, table.pred_area, table.rows, table.cols, table.inter]
            if round_ == 0 and not all(map(np.array_equal, got, reference)):
                raise SystemExit(f"error: {name}: the two ways disagree")
    pixels = [t.size for _, t in images]
    record = {
        "date": time.strftime("%Y-%m-%dT%H:%M"),
        "machine": platform.processor() or platform.machine(),
        "images": len(images),
        "sources": ["samples/dsb", *map(str, a.data)],
        "pixels_median": int(np.median(pixels)),
        "objects_median": int(np.median([int(t.max()) for _, t in images])),
        "rounds": a.rounds,
        "overlap_table_ms_median": round(1e3 * float(np.median(mine)), 3),
        "sorting_ms_median": round(1e3 * float(np.median(plain)), 3),
        "speedup_median": round(float(np.median(np.array(plain) / np.array(mine))), 2),
    }
    print(
        f"{record['images']} label images, median {record['pixels_median']} px and "
        f"{record['objects_median']} objects: overlap_table {record['overlap_table_ms_median']} ms, "
        f"sorting {record['sorting_ms_median']} ms, {record['speedup_median']}x (median per image)"
    )
    append_record(a.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
