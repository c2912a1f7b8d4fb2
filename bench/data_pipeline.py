"""Input-pipeline benchmark: ``python -m bench.data_pipeline [--data DIR] [--img-size 128] ...``.

Decodes real pairs into the in-memory cache (default: the bundled ``samples/isic``, tiled to
``--images`` when the set is smaller), then iterates `CachedBatches` with augmentation for
``--epochs`` epochs two ways: in the main thread, and through Keras' PyDataset worker threads
(the path ``model.fit`` takes, here driven by ``model.predict`` of a one-layer pooling model, so
the host-to-device copy is counted and the compute is negligible). Prints images/s for every
epoch after the first and their median, and appends a record to ``--out``
(default ``bench/results/data_pipeline.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from export.table import RESULTS_DIR
from segcore.atomic import write_text
from segcore.data import find_samples
from segcore.data.augment import AugmentConfig
from segcore.data.cache import build_cache, default_workers
from segcore.data.layouts import FORMATS
from segcore.paths import REPO_ROOT
from segcore.training.quiet import quiet_tensorflow

if TYPE_CHECKING:
    import keras

    from segcore.training.feeders import CachedBatches

RESULTS = RESULTS_DIR / "data_pipeline.json"


def display_path(path: Path) -> str:
    """The path relative to the repository when inside it (results stay comparable)."""
    path = path.resolve()
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


def tile(array: np.ndarray, n: int) -> np.ndarray:
    """Repeat the rows of ``array`` until it has at least ``n`` (then cut to ``n``)."""
    if len(array) >= n:
        return array
    return np.concatenate([array] * math.ceil(n / len(array)))[:n]


def main_thread_epoch(ds: CachedBatches) -> int:
    """Iterate one epoch in the calling thread; returns the number of images."""
    count = sum(len(ds[i][0]) for i in range(len(ds)))
    ds.on_epoch_end()
    return count


def pooling_model(channels: int) -> keras.Model:
    """A model that only averages its input: ``predict`` then costs the input pipeline alone."""
    import keras

    inputs = keras.Input((None, None, channels))
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))


def worker_epoch(ds: CachedBatches, model: keras.Model) -> int:
    """Iterate one epoch through Keras' PyDataset worker threads; returns the number of images."""
    count = len(model.predict(ds, verbose=0))
    ds.on_epoch_end()
    return count


def timed_epochs(run_epoch: Callable[[], int], epochs: int, label: str) -> list[float]:
    """Images/s of each epoch after the first (which warms caches and threads up), printed."""
    rates = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        count = run_epoch()
        rate = count / (time.perf_counter() - start)
        if epoch > 1 or epochs == 1:
            rates.append(rate)
            print(f"{label:<14} epoch {epoch}: {rate:8.1f} img/s")
    print(f"{label:<14} median : {float(np.median(rates)):8.1f} img/s")
    return rates


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.data_pipeline",
        description=__doc__.split("\n")[0],
    )
    p.add_argument(
        "--data", type=Path, default=REPO_ROOT / "samples" / "isic", help="dataset folder"
    )
    p.add_argument("--format", default="auto", choices=FORMATS)
    p.add_argument("--img-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3, choices=[1, 3])
    p.add_argument("--epochs", type=int, default=3, help="timed epochs = epochs - 1")
    p.add_argument("--images", type=int, default=1000, help="tile a smaller set up to this many")
    p.add_argument("--workers", type=int, default=0, help="worker threads (0 = as training)")
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON file to append the record to")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up notices")
    return p


def append_record(path: Path, record: dict) -> None:
    """Append ``record`` to the JSON list in ``path`` (atomically; created when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(path.read_text()) if path.exists() else []
    write_text(path, json.dumps(old + [record], indent=1))


def measure(
    a: argparse.Namespace, images: np.ndarray, masks: np.ndarray, workers: int
) -> tuple[list[float], list[float]]:
    """img/s per timed epoch: batches made in the main thread, and by ``workers`` threads feeding
    a small model as Keras' fit would."""
    from segcore.training.feeders import CachedBatches

    aug = AugmentConfig() if a.augment else None

    def dataset(**kwargs) -> CachedBatches:
        return CachedBatches(
            images,
            masks,
            a.batch_size,
            a.channels,
            augment=aug,
            shuffle=True,
            drop_remainder=True,
            **kwargs,
        )

    serial_ds = dataset()
    serial = timed_epochs(lambda: main_thread_epoch(serial_ds), a.epochs, "main thread")
    threaded_ds, model = dataset(workers=workers, max_queue_size=16), pooling_model(a.channels)
    threaded = timed_epochs(
        lambda: worker_epoch(threaded_ds, model), a.epochs, f"{workers} workers"
    )
    return serial, threaded


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print images/s, append the record to the results file."""
    a = _parser().parse_args(argv)
    quiet_tensorflow(a.verbose)

    import keras

    from segcore.training.runinfo import library_versions

    workers = a.workers or default_workers()

    fmt, samples = find_samples(a.data, a.format)
    start = time.perf_counter()
    cache = build_cache(samples, a.img_size, workers)
    cache_seconds = time.perf_counter() - start
    print(
        f"cached {len(cache)} {fmt} pairs at {a.img_size}px in {cache_seconds:.2f} s "
        f"({len(cache) / cache_seconds:.1f} img/s decode+resize, {workers} threads)"
    )
    images, masks = tile(cache.images, a.images), tile(cache.masks, a.images)
    print(f"{len(images)} images, batch {a.batch_size}, augment {a.augment}")
    serial, threaded = measure(a, images, masks, workers)

    record = {
        "data": display_path(a.data),
        "format": fmt,
        "source_images": len(cache),
        "images": len(images),
        "img_size": a.img_size,
        "batch_size": a.batch_size,
        "channels": a.channels,
        "augment": a.augment,
        "workers": workers,
        "cache_img_s": round(len(cache) / cache_seconds, 1),
        "main_thread_img_s": [round(r, 1) for r in serial],
        "main_thread_median_img_s": round(float(np.median(serial)), 1),
        "workers_img_s": [round(r, 1) for r in threaded],
        "workers_median_img_s": round(float(np.median(threaded)), 1),
        "backend": keras.backend.backend(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "library_versions": library_versions(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    append_record(a.out, record)
    print(f"appended to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
