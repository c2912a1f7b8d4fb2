"""Training throughput benchmark: ``python -m bench.train --arch unet --img-size 256 --batch-size 32``.

Measures end-to-end training images/s (input pipeline with augmentation included) with
``model.fit`` on real data (--data) or on random in-memory data, epochs after the first (which
includes compilation). Also reports the input pipeline alone and the model alone on in-memory
batches, so an input-bound run shows. ``--distribute data-parallel`` (JAX) or ``mirrored`` (TF)
trains as ``segcore.commands.train`` does over all local devices (the batch size is global). Appends a
record to ``--out`` (default bench/results/train.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.data_pipeline import append_record
from export.table import RESULTS_DIR
from segcore.errors import DataError
from segcore.training.distribute import STRATEGIES
from segcore.training.quiet import quiet_tensorflow

if TYPE_CHECKING:
    import keras

    from segcore.training.feeders import CachedBatches

RESULTS = RESULTS_DIR / "train.json"


def epoch_timer() -> tuple[keras.callbacks.Callback, list[float]]:
    """A callback appending every epoch's wall-clock seconds to the returned list."""
    import keras

    seconds: list[float] = []
    start = [0.0]
    return (
        keras.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: start.__setitem__(0, time.perf_counter()),
            on_epoch_end=lambda epoch, logs: seconds.append(time.perf_counter() - start[0]),
        ),
        seconds,
    )


def load_arrays(data: str | None, size: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and masks: decoded from a dataset folder, or random when data is None."""
    if data is None:
        rng = np.random.default_rng(0)
        return (
            rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            (rng.random((n, size, size, 1)) > 0.5).astype(np.uint8),
        )
    from segcore.data import find_samples
    from segcore.data.cache import build_cache

    _, samples = find_samples(data)
    cache = build_cache(samples[:n], size)
    return cache.images, cache.masks


def pipeline_rate(ds: CachedBatches, batches: int) -> float:
    """Images/s the input pipeline alone delivers (main thread, no model)."""
    t = time.perf_counter()
    count = sum(len(ds[i % len(ds)][0]) for i in range(batches))
    return count / (time.perf_counter() - t)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        prog="python -m bench.train",
        description=__doc__.split("\n")[0],
    )
    p.add_argument("--arch", default="unet", help="an architecture of segcore.models")
    p.add_argument("--base-filters", type=int, default=None)
    p.add_argument("--img-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--images", type=int, default=1024, help="images per epoch")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs = epochs - 1")
    p.add_argument("--data", default=None, help="dataset folder (default: random data)")
    p.add_argument("--mixed-precision", action="store_true")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument(
        "--distribute", default="none", choices=STRATEGIES, help="as segcore.commands.train"
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="JSON file to append the record to")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up notices")
    return p


def measure(a: argparse.Namespace, topology, ds, batch_size: int) -> tuple[object, float, float]:
    """(model, end-to-end img/s over the timed epochs, model-only img/s on one cached batch)."""
    import keras

    from segcore.models import build
    from segcore.training.loop import build_state
    from segcore.training.losses import get_loss

    kwargs = {"base_filters": a.base_filters} if a.base_filters else {}
    with topology.scope():
        model = build(a.arch, **kwargs)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss("bce_dice"))
        build_state(model, ds[0])  # as segcore.train does: TensorFlow traces the step once
        timer, seconds = epoch_timer()
        model.fit(ds, epochs=a.epochs, callbacks=[timer], verbose=0)
        e2e = len(ds) * batch_size / float(np.median(seconds[1:]))
        x, y = ds[0]
        model.train_on_batch(x, y)
        t = time.perf_counter()
        steps = max(5, len(ds) // 2)
        for _ in range(steps):
            model.train_on_batch(x, y)
        keras.ops.convert_to_numpy(model.trainable_variables[0])
        compute = steps * batch_size / (time.perf_counter() - t)
    return model, e2e, compute


def train_record(
    a: argparse.Namespace,
    model,
    rates: tuple[float, float, float],
    batch_size: int,
    workers: int,
    topology,
) -> dict:
    """The results record: settings, (end-to-end, model-only, pipeline) img/s and the machine."""
    import keras

    from segcore.training.runinfo import device_description, library_versions

    return {
        "arch": a.arch,
        "params": int(model.count_params()),
        "img_size": a.img_size,
        "batch_size": batch_size,
        "distribute": a.distribute,
        "devices": topology.devices,
        "precision": "bf16" if a.mixed_precision else "fp32",
        "data": "real" if a.data else "random",
        "augment": a.augment,
        "workers": workers,
        "train_img_s": round(rates[0], 1),
        "model_only_img_s": round(rates[1], 1),
        "pipeline_img_s": round(rates[2], 1),
        "device": device_description(),
        "backend": keras.backend.backend(),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "library_versions": library_versions(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one line per measurement."""
    p = _parser()
    a = p.parse_args(argv)
    quiet_tensorflow(a.verbose)

    import keras

    from segcore.data.augment import AugmentConfig
    from segcore.data.cache import default_workers
    from segcore.models import ARCHITECTURES
    from segcore.training.distribute import global_batch_size, setup
    from segcore.training.feeders import CachedBatches

    if a.arch not in ARCHITECTURES:
        p.error(f"--arch {a.arch}: choose one of {', '.join(ARCHITECTURES)}")
    try:
        topology = setup(a.distribute)
    except DataError as exc:
        p.error(str(exc))
    if a.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    workers = a.workers or default_workers()
    images, masks = load_arrays(a.data, a.img_size, a.images)
    batch_size = global_batch_size(a.batch_size, len(images), topology)
    ds = CachedBatches(
        images,
        masks,
        batch_size,
        augment=AugmentConfig() if a.augment else None,
        shuffle=True,
        drop_remainder=True,
        workers=workers,
        max_queue_size=32,
    )
    pipe = pipeline_rate(ds, 8)
    model, e2e, compute = measure(a, topology, ds, batch_size)
    record = train_record(a, model, (e2e, compute, pipe), batch_size, workers, topology)
    print(json.dumps(record))
    append_record(a.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
