"""Inference benchmark: onnxruntime vs Keras per exported model, and end-to-end photo latency.

    python -m bench.inference [--models-dir models] [--repeats N] [--tag NAME]

For every ``<name>.onnx`` (with its card) in the models folder it times, on the same real inputs
(``samples/<dataset>/`` images, else random pixels) in the same process:
- onnxruntime (`segcore.infer.Engine`): median and p90 latency at batch 1, throughput at batch 8;
- Keras (``predict_on_batch``): the same, with the run's ``best.keras`` when the card's
  ``run_dir`` still exists, else the architecture rebuilt from the card's ``arch`` +
  ``arch_kwargs`` with random weights (same compute, so the same latency; ``keras_weights``
  says which);
- end to end through the Engine: a 3000x2000 JPEG (an upscaled sample) decoded, resized,
  segmented, resized back and post-processed.
Writes ``bench/results/inference-<tag>.json`` (a list of per-model records, tag = host name by
default) for the app's benchmark page, and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from segcore.data import DataError, find_samples
from segcore.infer import Engine
from segcore.preprocess import ImageError, load_image, prepare

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
SAMPLES_DIR = ROOT / "samples"
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


def keras_model(card: dict):
    """The Keras twin of an exported model: (model, "run_dir" | "rebuilt_random")."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from segcore.models import build, main_output_model

    best = Path(card.get("run_dir") or "") / "best.keras"
    if card.get("run_dir") and best.is_file():
        return main_output_model(keras.saving.load_model(best, compile=False)), "run_dir"
    kwargs = dict(card.get("arch_kwargs") or {})
    kwargs.setdefault("channels", card["channels"])
    return main_output_model(build(card["arch"], **kwargs)), "rebuilt_random"


def photo_jpeg(image: np.ndarray, size: tuple[int, int] = PHOTO_SIZE) -> bytes:
    """A big JPEG (``size`` = width, height) made by upscaling ``image``."""
    buffer = io.BytesIO()
    Image.fromarray(image).resize(size, Image.BILINEAR).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def machine() -> dict:
    """Host, CPU and date facts recorded with every result."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = re.findall(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), flags=re.M)
        cpu = names[0] if names else cpu
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def bench_onnx(path: Path, repeats: int) -> tuple[dict, np.ndarray]:
    """onnxruntime figures of one exported model: (partial record, the model inputs used)."""
    engine = Engine(path)
    card = engine.card
    size, channels = engine.input_size, engine.channels
    images, inputs = sample_images(card.get("dataset", ""), THROUGHPUT_BATCH)
    while len(images) < THROUGHPUT_BATCH:
        images += images
    x = np.stack([prepare(im, (size, size), channels) for im in images[:THROUGHPUT_BATCH]])
    ort_speed = speed(engine.probabilities, x, repeats)
    photo = photo_jpeg(images[0])
    e2e = timings(lambda: engine.predict(photo), max(3, repeats // 2), warmup=1)
    record = {
        "model": engine.name,
        "arch": card.get("arch"),
        "dataset": card.get("dataset"),
        "precision": card.get("precision", "fp32"),
        "input_size": size,
        "channels": channels,
        "params": card.get("params"),
        "onnx_bytes": path.stat().st_size,
        "inputs": inputs,
        "providers": engine.providers,
        **{f"ort_{k}": v for k, v in ort_speed.items()},
        "e2e_photo": f"{PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEG",
        "e2e_seconds_median": float(np.median(e2e)),
        "repeats": repeats,
    }
    return record, x


def bench_keras(card: dict, x: np.ndarray, repeats: int) -> dict:
    """Keras figures of the same model on the same inputs.

    ``predict_on_batch`` is Keras' leanest call; ``predict`` (what most code calls, with its
    per-call data-adapter overhead) is timed at batch 1 too.
    """
    from segcore.runinfo import device_description

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
    """Every model through onnxruntime first, then through Keras.

    TensorFlow is imported only after all onnxruntime timings: its idle thread pools would
    otherwise compete with onnxruntime's threads for the same cores.
    """
    from segcore.runinfo import library_versions

    onnx_runs = [bench_onnx(path, repeats) for path in paths]
    records = []
    for path, (record, x) in zip(paths, onnx_runs, strict=True):
        record.update(bench_keras(Engine(path).card, x, repeats))
        ort_ms = record["ort_latency_ms_median"]
        record["ort_over_keras_latency"] = ort_ms / record["keras_latency_ms_median"]
        record["ort_over_keras_predict_latency"] = (
            ort_ms / record["keras_predict_latency_ms_median"]
        )
        versions = library_versions()
        record.update(
            onnxruntime=versions.get("onnxruntime"),
            tensorflow=versions.get("tensorflow"),
            **machine(),
        )
        records.append(record)
    return records


def print_table(records: list[dict]) -> None:
    """Readable summary: one row per model (Keras = predict_on_batch unless labelled predict)."""
    header = (
        f"{'model':<28}{'ort ms':>9}{'p90':>8}{'img/s':>8}{'keras ms':>10}{'p90':>8}"
        f"{'img/s':>8}{'ort/keras':>11}{'predict ms':>12}{'ort/predict':>13}{'e2e s':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in records:
        print(
            f"{r['model']:<28}{r['ort_latency_ms_median']:>9.1f}{r['ort_latency_ms_p90']:>8.1f}"
            f"{r['ort_throughput_ips']:>8.1f}{r['keras_latency_ms_median']:>10.1f}"
            f"{r['keras_latency_ms_p90']:>8.1f}{r['keras_throughput_ips']:>8.1f}"
            f"{r['ort_over_keras_latency']:>11.2f}{r['keras_predict_latency_ms_median']:>12.1f}"
            f"{r['ort_over_keras_predict_latency']:>13.2f}{r['e2e_seconds_median']:>8.3f}"
        )
    if records:
        r = records[0]
        print(f"\n{r['host']}: {r['cpu']} ({r['cores']} cores), onnxruntime on {r['providers'][0]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    p = argparse.ArgumentParser(
        prog="python -m bench.inference", description=__doc__.split("\n")[0]
    )
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--repeats", type=int, default=20, help="timed batch-1 calls per model")
    p.add_argument("--tag", default=socket.gethostname(), help="result file suffix (default: host)")
    args = p.parse_args(argv)
    models = sorted(args.models_dir.glob("*.onnx"))
    if not models:
        print(f"error: no .onnx models in {args.models_dir}", file=sys.stderr)
        return 2
    records = bench_models(models, args.repeats)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"inference-{re.sub(r'[^A-Za-z0-9_.-]', '_', args.tag)}.json"
    out.write_text(json.dumps(records, indent=1) + "\n")
    print_table(records)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
