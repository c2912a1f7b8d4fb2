"""int8 against float at batch 1, every shipped int8 model, one interleaved run.

    python -m bench.int8 [--models-dir models] [--repeats 20] [--out FILE]

For every shipped ``<name>_int8.onnx`` and the ``<name>.onnx`` it derives from (its card's
``derived_from``), plain onnxruntime CPU sessions (`export.int8_speed.session`: the engine's
settings, graph optimisation "all") of
- ``fp32``: the float32 graph (weights restored from the fp16-weight file),
- ``fp16``: the shipped fp16-weight file (float32 compute),
- ``int8``: the shipped int8 file,
- ``form:<format>/<activations>``: the float32 graph re-quantized here in each of
  `export.int8_speed.FORMS` (no float layers), calibrated on the ``samples/<dataset>`` images:
  which form onnxruntime runs fastest on this CPU (their Dice is `export.precision`'s business),
are called in turn on the same sample image, ``--repeats`` rounds; medians, p90 and the speed
ratio over fp32 are recorded with what onnxruntime runs for each file after optimising it
(integer vs float convolutions, the Quantize/Dequantize nodes left, QDQ or QOperator stored)
and the CPU (model, VNNI/AMX flags), onnxruntime's version and the load average. Writes
``bench/results/int8-<date>.json`` and prints a table. The ratios hold on a loaded machine
(every model sees the same load); the milliseconds do not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx

from bench.inference import sample_images
from bench.records import write_records
from export.graph import to_fp32
from export.int8_speed import FORMS, batch1_ms, cpu_facts, kernels
from export.precision import quantize
from export.table import RESULTS_DIR
from segcore.card import ModelCard
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.inference.preprocess import prepare
from segcore.paths import REPO_ROOT

#: Interleaved rounds per model family.
REPEATS = 20
#: Sample images the re-quantized forms are calibrated on.
CALIBRATION_SAMPLES = 8


def pairs(models_dir: Path) -> list[tuple[Path, Path]]:
    """(int8 file, the file it derives from) for every shipped int8 model in ``models_dir``."""
    out = []
    for path in sorted(models_dir.glob("*.onnx")):
        card = ModelCard.read(path.with_suffix(".json"))
        parent = models_dir / str(card.get("derived_from") or "").split(" ")[0]
        if card.get("precision") == "int8" and parent.suffix == ".onnx" and parent.is_file():
            out.append((path, parent))
    return out


def bench_pair(int8: Path, parent: Path, repeats: int, workdir: Path) -> dict:
    """One family's record: timings, ratios over fp32 and kernels of every variant."""
    card = ModelCard.read(parent.with_suffix(".json"))
    size = (card.input_size, card.input_size)
    images, inputs = sample_images(card.get("dataset", ""), CALIBRATION_SAMPLES)
    calibration = [prepare(im, size, card.channels) for im in images]
    fp32 = to_fp32(onnx.load(parent))
    files = {"fp32": workdir / f"{parent.stem}_fp32.onnx", "fp16": parent, "int8": int8}
    onnx.save(fp32, files["fp32"])
    cache = workdir / f"{parent.stem}_calibration.json"
    for form in FORMS:
        path = workdir / f"{parent.stem}_{form.format}_{form.activations}.onnx"
        files[f"form:{form.label}"] = quantize(fp32, calibration, [], path, cache, form)
    timed = batch1_ms(files, calibration[0][None], repeats)
    base = timed["fp32"]["median_ms"]
    variants = {
        key: {
            "file": path.name if key in ("fp16", "int8") else None,
            **timed[key],
            "speedup_over_fp32": base / timed[key]["median_ms"],
            **kernels(path),
        }
        for key, path in files.items()
    }
    return {
        "model": int8.stem,
        "derived_from": parent.name,
        "shipped_quantization": ModelCard.read(int8.with_suffix(".json")).get("quantization"),
        "input": f"1x{size[0]}x{size[1]}x{card.channels} ({inputs} image)",
        "calibration_images_for_forms": len(calibration),
        "repeats": repeats,
        "variants": variants,
    }


def print_table(records: list[dict]) -> None:
    """Median ms, ratio over fp32 and integer/float convolutions of every variant."""
    print(f"{'model':28} {'variant':22} {'ms':>8} {'x fp32':>7} {'int/float conv':>15} {'Q+DQ':>6}")
    for rec in records:
        for key, v in rec["variants"].items():
            convs = f"{v['integer_convs']}/{v['float_convs']}"
            qdq = v["quantize_nodes"] + v["dequantize_nodes"]
            print(
                f"{rec['model']:28} {key:22} {v['median_ms']:8.1f} "
                f"{v['speedup_over_fp32']:7.2f} {convs:>15} {qdq:>6}"
            )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(prog="python -m bench.int8", description=__doc__.split("\n")[0])
    p.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models", help="shipped models")
    p.add_argument("--repeats", type=int, default=REPEATS, help="interleaved rounds per family")
    today = dt.date.today().isoformat()
    p.add_argument(
        "--out", type=Path, default=RESULTS_DIR / f"int8-{today}.json", help="results file"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    quiet_onnxruntime_logs()
    found = pairs(args.models_dir)
    if not found:
        print(f"--models-dir {args.models_dir}: no int8 model with its parent", file=sys.stderr)
        return 2
    facts = cpu_facts() | {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory(prefix="segcore-bench-int8-") as tmp:
        records = [bench_pair(i, p, args.repeats, Path(tmp)) for i, p in found]
    facts["load_average_at_end"] = list(os.getloadavg())
    print_table(records)
    path = write_records(args.out, [{"record": "machine", **facts}, *records])
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
