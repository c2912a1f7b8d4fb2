"""Inference benchmark: precisions against each other and the machine, onnxruntime vs Keras.

    python -m bench.inference [--models-dir models] [--repeats N] [--out FILE]

First the machine's own float32 matrix-multiply rate (numpy sgemm, `gemm_gflops`). Then for every
shipped model family (``<name>.onnx`` and the ``<name>_int8.onnx`` derived from it) it times, on
the same real inputs (``samples/<dataset>/`` images, else random pixels) in the same process, the
fp32 graph (weights restored from the file), the fp16-weight graph and the int8 model, their
calls interleaved so that load on a shared machine hits them alike:
- onnxruntime (`segcore.inference.engine.Engine`): median and p90 latency at batch 1, throughput at batch 8;
- effective GFLOP/s: 2 x the multiply-adds of the graph's Conv/ConvTranspose/MatMul nodes at the
  benchmark size (`export.graph.count_macs`) per second at the median (and the fastest) batch-1
  latency, and its fraction of `gemm_gflops` (the fastest sgemm call);
- Keras (``predict_on_batch``): the same, with the run's ``best.keras`` when the card's
  ``run_dir`` still exists, else the architecture rebuilt from the card's ``arch`` +
  ``arch_kwargs`` with random weights (same compute, so the same latency; ``keras_weights``
  says which);
- end to end through the Engine: a 3000x2000 JPEG (an upscaled sample) decoded, resized,
  segmented, resized back and post-processed.
Writes ``bench/results/inference-<tag>.json`` (tag = host name by default) for the app's
benchmark page, a list of records of two kinds:
- ``"record": "model"``: one per shipped ``.onnx`` file, onnxruntime vs Keras (keys ``ort_*``,
  ``keras_*``, ``e2e_*``);
- ``"record": "precision"``: one per model family and precision (keys ``batch1_ms_median``,
  ``batch1_ms_p90``, ``batch8_images_per_s``, ``e2e_photo_seconds_median``, ``gmac_per_image``,
  ``effective_gflops``, ``effective_gflops_best``, ``batch8_effective_gflops``, ``gemm_gflops``,
  ``gemm_fraction``, ``gemm_fraction_best``, ``speedup_over_fp32_batch1``).
and prints tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from bench.records import add_out_flag, cpu_name, write_records
from export.graph import count_macs, to_fp16, to_fp32
from segcore.card import ModelCard
from segcore.data import find_samples
from segcore.errors import DataError, ImageError
from segcore.inference.engine import Engine
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.inference.preprocess import load_image, prepare
from segcore.paths import REPO_ROOT

SAMPLES_DIR = REPO_ROOT / "samples"
PHOTO_SIZE = (3000, 2000)  # width, height
THROUGHPUT_BATCH = 8


def sample_images(dataset: str, count: int, samples_dir: Path = SAMPLES_DIR) -> tuple[list, str]:
    """Up to ``count`` real RGB images for ``dataset`` from ``samples/``, and where they came from.

    Falls back to any dataset under ``samples/``, then to random 512x512 pixels.
    """
    folders = [samples_dir / dataset] + sorted(p for p in samples_dir.glob("*") if p.is_dir())
    for folder in folders:
        try:
            _, samples = find_samples(folder)
        except DataError:
            continue
        images = []
        for sample in samples[:count]:
            try:
                images.append(load_image(sample.image))
            except ImageError:
                continue
        if images:
            return images, f"samples/{folder.name}"
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(count)], "random"


def timings(fn: Callable[[], object], repeats: int, warmup: int = 2) -> np.ndarray:
    """Wall-clock seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return np.array(out)


def speed(run_batch: Callable[[np.ndarray], object], x: np.ndarray, repeats: int) -> dict:
    """Median and p90 batch-1 latency (ms) and batch-8 throughput (images/s) of ``run_batch``."""
    one = timings(lambda: run_batch(x[:1]), repeats)
    eight = timings(lambda: run_batch(x[:THROUGHPUT_BATCH]), max(3, repeats // 4))
    return {
        "latency_ms_median": float(np.median(one) * 1e3),
        "latency_ms_p90": float(np.percentile(one, 90) * 1e3),
        "throughput_ips": float(THROUGHPUT_BATCH / np.median(eight)),
    }


def keras_model(card: ModelCard):
    """The Keras twin of an exported model: (model, "run_dir" | "rebuilt_random")."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from segcore.models import build, load_main_model, main_output_model

    best = Path(card.get("run_dir") or "") / "best.keras"
    if card.get("run_dir") and best.is_file():
        return load_main_model(best), "run_dir"
    kwargs = dict(card.get("arch_kwargs") or {})
    kwargs.setdefault("channels", card.channels)
    return main_output_model(build(card.arch, **kwargs)), "rebuilt_random"


def photo_jpeg(image: np.ndarray, size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    """A big JPEG (``size`` = width, height) made by upscaling ``image``."""
    buffer = io.BytesIO()
    Image.fromarray(image).resize(size, Image.BILINEAR).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def machine() -> dict:
    """Host, CPU and date facts recorded with every result."""
    return {
        "host": socket.gethostname(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def gemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    """This machine's float32 matrix-multiply rate: numpy sgemm on n x n matrices, GFLOP/s of the
    fastest of ``repeats`` calls (on a shared machine the median measures the neighbours)."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    seconds = timings(lambda: a @ b, repeats, warmup=1)
    return float(2 * n**3 / seconds.min() / 1e9)


@dataclass
class Family:
    """A shipped model and the precisions timed for it: engines on the same card and inputs."""

    name: str
    files: dict[str, Path]  # precision -> shipped .onnx file
    engines: dict[str, Engine]  # precision -> engine (fp32 and fp16 built from the file)
    macs: int
    x: np.ndarray
    photo: bytes
    inputs: str


def families(paths: list[Path], workdir: Path) -> list[Family]:
    """Group ``paths`` by the model they derive from and build their fp32/fp16/int8 engines."""
    cards = {p: ModelCard.read(p.with_suffix(".json")) for p in paths}
    out = []
    for path in paths:
        card = cards[path]
        if card.get("derived_from"):
            continue
        files = {card.get("precision", "fp32"): path}
        files |= {
            cards[p].get("precision", "fp32"): p
            for p in paths
            if cards[p].get("derived_from", "").split(" ")[0] == path.name
        }
        fp32 = to_fp32(onnx.load(path))
        graphs = {"fp32": fp32, "fp16": to_fp16(fp32)}
        engines = {}
        for precision, graph in graphs.items():
            model = workdir / f"{path.stem}_{precision}.onnx"
            onnx.save(graph, model)
            engines[precision] = Engine(model, path.with_suffix(".json"))
        engines |= {p: Engine(f) for p, f in files.items() if p not in graphs}
        size, channels = card.input_size, card.channels
        images, inputs = sample_images(card.get("dataset", ""), THROUGHPUT_BATCH)
        while len(images) < THROUGHPUT_BATCH:
            images += images
        x = np.stack([prepare(im, (size, size), channels) for im in images[:THROUGHPUT_BATCH]])
        macs = count_macs(fp32, (1, size, size, channels))
        out.append(Family(path.stem, files, engines, macs, x, photo_jpeg(images[0]), inputs))
    return out


def interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, np.ndarray]:
    """Seconds of ``repeats`` rounds, each calling every entry once (after one warm-up round)."""
    for fn in calls.values():
        fn()
    out: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(repeats):
        for key, fn in calls.items():
            start = time.perf_counter()
            fn()
            out[key].append(time.perf_counter() - start)
    return {k: np.array(v) for k, v in out.items()}


def bench_family(family: Family, repeats: int, gemm: float) -> list[dict]:
    """Precision records of one family: every engine timed on the same inputs, interleaved."""
    engines, x = family.engines, family.x
    one = interleaved(
        {p: (lambda e=e: e.probabilities(x[:1])) for p, e in engines.items()}, repeats
    )
    eight = interleaved(
        {p: (lambda e=e: e.probabilities(x)) for p, e in engines.items()}, max(3, repeats // 4)
    )
    e2e = interleaved(
        {p: (lambda e=e: e.predict(family.photo)) for p, e in engines.items()}, max(3, repeats // 2)
    )
    records = []
    for precision, engine in engines.items():
        median = float(np.median(one[precision]))
        flops = 2 * family.macs / median / 1e9
        records.append(
            {
                "record": "precision",
                "model": family.name,
                "precision": precision,
                "shipped_file": family.files[precision].name if precision in family.files else None,
                "dataset": engine.card.get("dataset"),
                "input_size": engine.input_size,
                "inputs": family.inputs,
                "ort_optimization": engine.card.get("ort_optimization", "extended"),
                "onnx_bytes": engine.model_path.stat().st_size,
                "batch1_ms_median": median * 1e3,
                "batch1_ms_p90": float(np.percentile(one[precision], 90) * 1e3),
                "batch8_images_per_s": float(THROUGHPUT_BATCH / np.median(eight[precision])),
                "e2e_photo": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG",
                "e2e_photo_seconds_median": float(np.median(e2e[precision])),
                "gmac_per_image": family.macs / 1e9,
                "effective_gflops": flops,
                "batch8_effective_gflops": 2
                * family.macs
                / 1e9
                * THROUGHPUT_BATCH
                / float(np.median(eight[precision])),
                "effective_gflops_best": 2 * family.macs / float(one[precision].min()) / 1e9,
                "gemm_gflops": gemm,
                "gemm_fraction": flops / gemm,
                "gemm_fraction_best": 2 * family.macs / float(one[precision].min()) / 1e9 / gemm,
                "providers": engine.providers,
                "repeats": repeats,
            }
        )
    base = float(np.median(one["fp32"]))
    for r in records:
        r["speedup_over_fp32_batch1"] = base / (r["batch1_ms_median"] / 1e3)
    return records


def model_record(family: Family, precision: str, timed: dict) -> dict:
    """The per-file onnxruntime record (the keys the benchmark page has always read)."""
    engine, card = family.engines[precision], family.engines[precision].card
    path = family.files[precision]
    return {
        "record": "model",
        "model": path.stem,
        "arch": card.get("arch"),
        "dataset": card.get("dataset"),
        "precision": precision,
        "input_size": engine.input_size,
        "channels": engine.channels,
        "params": card.get("params"),
        "onnx_bytes": path.stat().st_size,
        "inputs": family.inputs,
        "providers": engine.providers,
        "ort_latency_ms_median": timed["batch1_ms_median"],
        "ort_latency_ms_p90": timed["batch1_ms_p90"],
        "ort_throughput_ips": timed["batch8_images_per_s"],
        "e2e_photo": timed["e2e_photo"],
        "e2e_seconds_median": timed["e2e_photo_seconds_median"],
        "repeats": timed["repeats"],
    }


def bench_keras(card: dict, x: np.ndarray, repeats: int) -> dict:
    """Keras figures of the same model on the same inputs.

    ``predict_on_batch`` is Keras' leanest call; ``predict`` (what most code calls, with its
    per-call data-adapter overhead) is timed at batch 1 too.
    """
    from segcore.training.runinfo import device_description

    model, weights = keras_model(card)
    import keras  # loaded by keras_model with the backend it chose

    keras_speed = speed(model.predict_on_batch, x, repeats)
    predict_one = timings(lambda: model.predict(x[:1], verbose=0), repeats)
    return {
        "keras_weights": weights,
        "keras_backend": keras.backend.backend(),
        "keras_device": device_description(),
        **{f"keras_{k}": v for k, v in keras_speed.items()},
        "keras_predict_latency_ms_median": float(np.median(predict_one) * 1e3),
    }


def bench_models(paths: list[Path], repeats: int) -> list[dict]:
    """Every model family through onnxruntime first, then the shipped files' Keras twins.

    TensorFlow is imported only after all onnxruntime timings: its idle thread pools would
    otherwise compete with onnxruntime's threads for the same cores.
    """
    from segcore.training.runinfo import library_versions

    gemm = gemm_gflops()
    with tempfile.TemporaryDirectory(prefix="segcore-bench-") as tmp:
        timed = [(f, bench_family(f, repeats, gemm)) for f in families(paths, Path(tmp))]
    versions = library_versions()
    facts = {"onnxruntime": versions.get("onnxruntime"), **machine()}
    records: list[dict] = []
    keras_by_family: dict[str, dict] = {}
    for family, precision_records in timed:
        by_precision = {r["precision"]: r for r in precision_records}
        for precision in family.files:
            record = model_record(family, precision, by_precision[precision])
            if family.name not in keras_by_family:  # one Keras twin serves every precision
                keras_by_family[family.name] = bench_keras(
                    family.engines["fp32"].card, family.x, repeats
                )
            record.update(keras_by_family[family.name])
            ort_ms = record["ort_latency_ms_median"]
            record["ort_over_keras_latency"] = ort_ms / record["keras_latency_ms_median"]
            record["ort_over_keras_predict_latency"] = (
                ort_ms / record["keras_predict_latency_ms_median"]
            )
            record.update(tensorflow=library_versions().get("tensorflow"), **facts)
            records.append(record)
        records.extend(r | facts for r in precision_records)
    return records


def print_table(records: list[dict]) -> None:
    """Readable summary: precisions per family, then onnxruntime vs Keras per shipped file."""
    precision = [r for r in records if r.get("record") == "precision"]
    header = (
        f"{'model':<22}{'prec':>5}{'b1 ms':>8}{'p90':>8}{'b8 img/s':>10}{'x fp32':>8}"
        f"{'e2e s':>8}{'GMAC':>7}{'GFLOP/s':>9}{'of GEMM':>9}{'best':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in precision:
        print(
            f"{r['model']:<22}{r['precision']:>5}{r['batch1_ms_median']:>8.1f}"
            f"{r['batch1_ms_p90']:>8.1f}{r['batch8_images_per_s']:>10.1f}"
            f"{r['speedup_over_fp32_batch1']:>8.2f}{r['e2e_photo_seconds_median']:>8.3f}"
            f"{r['gmac_per_image']:>7.2f}{r['effective_gflops']:>9.1f}{r['gemm_fraction']:>9.2f}"
            f"{r['gemm_fraction_best']:>7.2f}"
        )
    if precision:
        gemm = precision[0]["gemm_gflops"]
        print(f"machine fp32 GEMM (numpy sgemm, fastest call): {gemm:.1f} GFLOP/s\n")
    shipped = [r for r in records if r.get("record") == "model"]
    header = (
        f"{'model':<28}{'ort ms':>9}{'p90':>8}{'img/s':>8}{'keras ms':>10}{'p90':>8}"
        f"{'img/s':>8}{'ort/keras':>11}{'predict ms':>12}{'ort/predict':>13}{'e2e s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in shipped:
        print(
            f"{r['model']:<28}{r['ort_latency_ms_median']:>9.1f}{r['ort_latency_ms_p90']:>8.1f}"
            f"{r['ort_throughput_ips']:>8.1f}{r['keras_latency_ms_median']:>10.1f}"
            f"{r['keras_latency_ms_p90']:>8.1f}{r['keras_throughput_ips']:>8.1f}"
            f"{r['ort_over_keras_latency']:>11.2f}{r['keras_predict_latency_ms_median']:>12.1f}"
            f"{r['ort_over_keras_predict_latency']:>13.2f}{r['e2e_seconds_median']:>8.3f}"
        )
    if shipped:
        r = shipped[0]
        print(f"\n{r['host']}: {r['cpu']} ({r['cores']} cores), onnxruntime on {r['providers'][0]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.inference",
        description=__doc__.split("\n")[0],
    )
    p.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models")
    p.add_argument("--repeats", type=int, default=20, help="timed batch-1 calls per model")
    add_out_flag(p, "inference")
    args = p.parse_args(argv)
    quiet_onnxruntime_logs()
    models = sorted(args.models_dir.glob("*.onnx"))
    if not models:
        print(f"error: no .onnx models in {args.models_dir}", file=sys.stderr)
        return 2
    records = bench_models(models, args.repeats)
    out = write_records(args.out, records)
    print_table(records)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
