"""onnxruntime session settings against each other: intra-op threads, spinning, execution mode.

    python -m bench.session_options [--model models/isic_improved_unet.onnx] [--repeats N]

Every combination gets its own session on the same model (the card's optimisation level) and
the same real inputs; batch-1 calls, then batch-8 calls, are interleaved across the sessions so
load on a shared machine hits them alike; a batch-1 call is followed by the engine's full-size
finishing of a 3000x2000 photo (so spinning threads that steal the next step's cores show).
Writes ``bench/results/session-options-<tag>.json`` and prints medians.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.inference import (
    PHOTO_SIZE,
    THROUGHPUT_BATCH,
    interleaved,
    machine,
    sample_images,
)
from bench.records import add_out_flag, write_records
from segcore.inference.engine import Engine, LoadedImage
from segcore.inference.onnx_runner import OPTIMIZATION_LEVELS, quiet_onnxruntime_logs
from segcore.inference.preprocess import prepare
from segcore.paths import REPO_ROOT


def settings_grid(cores: int) -> list[dict]:
    """Thread counts 1..cores x spinning off/on x sequential/parallel execution."""
    threads = sorted({1, cores})
    return [
        {"intra_op_threads": t, "allow_spinning": spin, "execution_mode": mode}
        for t, spin, mode in itertools.product(threads, (False, True), ("sequential", "parallel"))
    ]


def session(path: Path, level: ort.GraphOptimizationLevel, s: dict) -> ort.InferenceSession:
    """A CPU session of ``path`` with settings ``s``."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.intra_op_num_threads = s["intra_op_threads"]
    options.add_session_config_entry(
        "session.intra_op.allow_spinning", str(int(s["allow_spinning"]))
    )
    if s["execution_mode"] == "parallel":
        options.execution_mode = ort.ExecutionMode.ORT_PARALLEL
        options.inter_op_num_threads = s["intra_op_threads"]
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.session_options",
        description=__doc__.split("\n")[0],
    )
    p.add_argument("--model", type=Path, default=REPO_ROOT / "models" / "isic_improved_unet.onnx")
    p.add_argument("--repeats", type=int, default=20)
    add_out_flag(p, "session-options")
    args = p.parse_args(argv)
    quiet_onnxruntime_logs()
    engine = Engine(args.model)
    level = OPTIMIZATION_LEVELS[engine.card.get("ort_optimization", "extended")]
    size = (engine.input_size, engine.input_size)
    images, _ = sample_images(engine.card.get("dataset", ""), THROUGHPUT_BATCH)
    x = np.stack([prepare(im, size, engine.channels) for im in (images * THROUGHPUT_BATCH)[:8]])
    photo = LoadedImage(images[0], PHOTO_SIZE[0], PHOTO_SIZE[1], 0.0)
    grid = settings_grid(os.cpu_count() or 1)
    sessions = [session(args.model, level, s) for s in grid]
    name = sessions[0].get_inputs()[0].name

    def one(sess: ort.InferenceSession) -> None:
        prob = sess.run(None, {name: x[:1]})[0][0, ..., -1]
        engine.finish(photo, prob)

    b1 = interleaved({i: (lambda s=s: one(s)) for i, s in enumerate(sessions)}, args.repeats)
    b8 = interleaved(
        {i: (lambda s=s: s.run(None, {name: x})) for i, s in enumerate(sessions)},
        max(3, args.repeats // 4),
    )
    records = [
        s
        | {
            "model": args.model.stem,
            "batch1_with_finish_ms_median": float(np.median(b1[i]) * 1e3),
            "batch8_images_per_s": float(THROUGHPUT_BATCH / np.median(b8[i])),
        }
        for i, s in enumerate(grid)
    ]
    facts = machine()
    print(f"{'threads':>8}{'spin':>6}{'mode':>12}{'b1+finish ms':>14}{'b8 img/s':>10}")
    for r in records:
        r.update(facts)
        print(
            f"{r['intra_op_threads']:>8}{r['allow_spinning']!s:>6}{r['execution_mode']:>12}"
            f"{r['batch1_with_finish_ms_median']:>14.1f}{r['batch8_images_per_s']:>10.2f}"
        )
    out = write_records(args.out, records)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
