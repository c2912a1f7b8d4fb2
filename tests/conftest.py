"""Shared fixtures: a tiny dataset, a tiny trained run folder, exported and hand-made ONNX models.

- `tiny_dataset_dir`: 12 plain-layout 32x32 PNG images (a bright disk on a dark noisy
  background) with their disk masks.
- `tiny_run_dir`: a run folder in ``segcore.commands.train``'s format (best.keras from a U-Net with
  base_filters 4 and depth 2 trained a few epochs, config.json, split.json, history.csv,
  test_metrics.json).
- `tiny_models_dir`: ``models/`` holding ``tiny_unet.onnx`` + card + history, exported from it.
- `disk_image`: a function drawing bright disks on a dark background, with their mask.
- `bright_models_dir`: ``models/`` with hand-made ONNX models (no TensorFlow needed) whose
  probability is sigmoid(20 * (mean pixel - 0.5)): ``bright`` (RGB, ``plain``) and
  ``bright_gray`` (1 channel, ``isic`` so its card keeps the largest component).
  Their masks are known exactly, which the engine and predict tests rely on.

TensorFlow is imported inside the fixtures that need it, never at collection time.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import synthetic_images
from handmade_models import save_conv1x1_sigmoid_model
from PIL import Image

from segcore.data import find_samples, load_sample, make_split, write_split
from segcore.scoring.scores import binary_scores, summarize

#: Fixtures that train a Keras model (directly or through another fixture): a test that needs one
#: is marked ``slow`` automatically (`pytest -m "not slow"` is the quick inner loop).
TRAINING_FIXTURES = frozenset({"tiny_run_dir", "tiny_models_dir"})
TINY_SIZE = 32
TINY_IMAGES = 12
BRIGHT_SIZE = 32


#: The longest test files (30-130 s each on 2 cores), longest first. pytest-xdist hands whole
#: files to its workers in collection order (``--dist loadfile --no-loadscope-reorder``), so
#: these start first and the many short files fill in around them: no worker is left alone at
#: the end with a long file (11 s of one idle core, measured, when xdist put the files with most
#: tests first). The rest keep pytest's order. A file missing here only runs later.
LONG_FILES = (
    "tests/browser/test_app_browser.py",
    "tests/training/test_train_distributed.py",
    "tests/training/test_train_instance.py",
    "tests/test_variant_runs.py",
    "tests/test_gpu_job.py",
    "tests/training/test_train.py",
    "tests/export/test_bioimageio.py",
    "tests/models/test_model_architectures.py",
    "tests/napari_plugin/test_napari_plugin.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a trained model (`TRAINING_FIXTURES`) as slow; put the
    `LONG_FILES` first."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(LONG_FILES)))


@pytest.fixture(scope="session")
def disk_image():
    """`synthetic_images.disk_image`: (height, width, [(cy, cx, r), ...], seed) -> (image, mask)."""
    return synthetic_images.disk_image


def shared_folder(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]
) -> Path:
    """``name``, a folder ``build`` fills once per test session, whichever pytest-xdist worker
    asks first (under a file lock; the others wait, then read it). For read-only fixtures: a
    test that changes one copies it first. Saves each extra worker a training run and an
    export (~9 s of CPU) and keeps every worker's paths the same."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    folder, complete = root / name, root / f"{name}.complete"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not complete.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed part way
            folder.mkdir()
            build(folder)
            complete.touch()
    return folder


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain images/ + masks/ dataset of 12 32x32 disk images."""
    return shared_folder(tmp_path_factory, "tiny_data", write_tiny_dataset)


def write_tiny_dataset(root: Path) -> None:
    """The images/ and masks/ of `tiny_dataset_dir` into ``root``."""
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(TINY_IMAGES):
        r = int(rng.integers(5, 11))
        cy, cx = (int(v) for v in rng.integers(r, TINY_SIZE - r, size=2))
        image, mask = synthetic_images.disk_image(TINY_SIZE, TINY_SIZE, [(cy, cx, r)], seed=i)
        Image.fromarray(image).save(root / "images" / f"img{i:02d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "masks" / f"img{i:02d}.png")


@pytest.fixture(scope="session")
def tiny_run_dir(tiny_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder like ``python -m segcore.train`` writes, from a tiny U-Net trained briefly."""
    return shared_folder(
        tmp_path_factory, "tiny_run", lambda run: write_tiny_run(run, tiny_dataset_dir)
    )


def write_tiny_run(run: Path, tiny_dataset_dir: Path) -> None:
    """Train the tiny U-Net on ``tiny_dataset_dir`` and write `tiny_run_dir`'s files in ``run``."""
    import keras

    from segcore.inference.preprocess import prepare, resize_probabilities
    from segcore.models import build
    from segcore.training.loop import build_state

    fmt, samples = find_samples(tiny_dataset_dir)
    split = make_split(samples, (0.6, 0.2, 0.2), seed=0)
    write_split(
        run / "split.json", split, tiny_dataset_dir, {"fractions": [0.6, 0.2, 0.2], "seed": 0}
    )

    def arrays(part: str) -> tuple[np.ndarray, np.ndarray, list]:
        pairs = [load_sample(s) for s in split[part]]
        x = np.stack([prepare(img, (TINY_SIZE, TINY_SIZE), 3) for img, _ in pairs])
        y = np.stack([m[..., None].astype(np.float32) for _, m in pairs])
        return x, y, pairs

    keras.utils.set_random_seed(0)
    arch_kwargs = {"channels": 3, "base_filters": 4, "depth": 2}
    model = build("unet", **arch_kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    x, y, _ = arrays("train")
    build_state(model, (x, y))  # as segcore.train does: the train step is traced once
    fit = model.fit(x, y, epochs=8, batch_size=4, verbose=0, validation_data=arrays("val")[:2])
    model.save(run / "best.keras")

    with open(run / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "loss", "val_loss", "lr", "seconds"])
        for epoch, (loss, val) in enumerate(
            zip(fit.history["loss"], fit.history["val_loss"], strict=True), start=1
        ):
            writer.writerow([epoch, f"{loss:.5f}", f"{val:.5f}", "0.01", "0.1"])

    xt, _, pairs = arrays("test")
    probs = np.asarray(model.predict(xt, verbose=0))[..., -1]
    rows = [
        binary_scores(truth, resize_probabilities(p, truth.shape) > 0.5)
        for (_, truth), p in zip(pairs, probs, strict=True)
    ]
    (run / "test_metrics.json").write_text(json.dumps({"n_images": len(rows), **summarize(rows)}))
    config = {
        "arch": "unet",
        "arch_kwargs": arch_kwargs,
        "dataset": "plain",
        "data": str(tiny_dataset_dir),
        "format": fmt,
        "img_size": TINY_SIZE,
        "channels": 3,
        "epochs": 8,
        "epochs_completed": 8,
        "best_epoch": 8,
        "batch_size": 4,
        "lr": 1e-2,
        "loss": "bce",
        "split": "0.6,0.2,0.2",
        "seed": 0,
        "normalization": "divide_by_255",
        "threshold": 0.5,
        "params": int(model.count_params()),
        "backend": keras.backend.backend(),
        "device": "cpu",
        "library_versions": {"keras": keras.__version__},
        "train_seconds": 1.0,
    }
    (run / "config.json").write_text(json.dumps(config, indent=1))


@pytest.fixture(scope="session")
def tiny_models_dir(tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``models/`` with ``tiny_unet.onnx``, ``tiny_unet.json`` and ``tiny_unet.history.csv``."""
    from export.pipeline import export_run
    from export.run_folder import read_run

    def export(folder: Path) -> None:
        export_run(read_run(tiny_run_dir), folder / "models", name="tiny_unet")

    return shared_folder(tmp_path_factory, "tiny_export", export) / "models"


def write_bright_model(folder: Path, name: str, channels: int, dataset: str) -> Path:
    """Write a hand-made ONNX model: probability = sigmoid(20 * (mean pixel - 0.5)), and its card."""
    path = save_conv1x1_sigmoid_model(
        folder / f"{name}.onnx", channels, [20.0 / channels] * channels, [-10.0]
    )
    card = {
        "name": name,
        "arch": "handmade",
        "dataset": dataset,
        "input_size": BRIGHT_SIZE,
        "channels": channels,
        "normalization": "divide_by_255",
        "threshold": 0.5,
        "postprocess": {"keep_largest": dataset == "isic", "fill_holes": True},
    }
    (folder / f"{name}.json").write_text(json.dumps(card))
    return path


@pytest.fixture(scope="session")
def bright_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``models/`` with the hand-made ``bright`` (RGB, plain) and ``bright_gray`` (1 ch, isic)."""
    folder = tmp_path_factory.mktemp("bright") / "models"
    folder.mkdir()
    write_bright_model(folder, "bright", 3, "plain")
    write_bright_model(folder, "bright_gray", 1, "isic")
    return folder
