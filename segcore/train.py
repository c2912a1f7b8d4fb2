"""Train a U-Net variant on an images/masks dataset: ``python -m segcore.train --data DIR ...``.

Writes a run folder: best.keras (best val_dice), history.csv, config.json, split.json,
checkpoint/ (for --resume), test_metrics.json and test_per_image.csv. With no arguments it
trains a small model on the real samples bundled in samples/isic, so a new user sees it work.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples" / "isic"
SCHEDULES = ("plateau", "cosine")
TARGETS = ("mask", "instance")  # semantic mask, or nuclei as objects (segcore.instances)
TILE_OVERLAP = 0.25  # tiled (native-scale) prediction of instance models: overlap between tiles
DATASET_MARKER = "dataset.json"  # written by segcore.data.pack: the packed copy's original dataset
DEMO_SIZING = {
    "base_filters": 8,
    "depth": 3,
    "img_size": 96,
    "epochs": 40,
    "batch_size": 8,
    "lr": 3e-3,
    "schedule": "cosine",
}
log = logging.getLogger("segcore.train")


@dataclass
class TrainConfig:
    """Every setting of a run; written to config.json and read back by --resume."""

    data: str = str(SAMPLES_DIR)
    format: str = "auto"
    arch: str = "unet_bn"
    base_filters: int | None = None
    depth: int = 4
    img_size: int = 128
    channels: int = 3
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    loss: str = "bce_dice"
    schedule: str = "plateau"
    patience: int = 15
    split: str = "0.8,0.1,0.1"
    seed: int = 42
    out: str = ""
    mixed_precision: bool = False
    tensorboard: bool = False
    distribute: str = "none"
    augment: bool = True
    skip_unmatched: bool = False
    workers: int = 0
    time_limit: float = 0.0
    target: str = "mask"
    arch_kwargs: dict = field(default_factory=dict)


def parse_args(argv: list[str]) -> tuple[TrainConfig, str | None]:
    """Parse command-line flags into a TrainConfig (and the run folder to resume, if any)."""
    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m segcore.train", description=__doc__.split("\n")[0])
    p.add_argument(
        "--data", default=None, help="dataset folder (default: the bundled samples/isic demo)"
    )
    p.add_argument("--format", default=d.format, choices=["auto", "isic", "dsb", "plain"])
    p.add_argument(
        "--arch", default=d.arch, help="unet, unet_bn, improved_unet, unetpp, attention_unet"
    )
    p.add_argument("--base-filters", type=int, default=None, help="filters at the first level")
    p.add_argument(
        "--depth", type=int, default=None, help=f"down-sampling steps (default {d.depth})"
    )
    p.add_argument(
        "--img-size", type=int, default=None, help=f"square training size (default {d.img_size})"
    )
    p.add_argument("--channels", type=int, default=d.channels, choices=[1, 3], help="1 = grayscale")
    p.add_argument("--epochs", type=int, default=None, help=f"(default {d.epochs})")
    p.add_argument(
        "--batch-size", type=int, default=None, help=f"global batch size (default {d.batch_size})"
    )
    p.add_argument(
        "--lr", type=float, default=None, help=f"initial Adam learning rate (default {d.lr})"
    )
    p.add_argument(
        "--loss", default=d.loss, choices=["bce", "dice", "bce_dice", "focal", "tversky"]
    )
    p.add_argument(
        "--schedule", default=None, choices=SCHEDULES, help="LR: ReduceLROnPlateau or cosine"
    )
    p.add_argument(
        "--patience", type=int, default=d.patience, help="early-stopping patience (epochs)"
    )
    p.add_argument("--split", default=d.split, help="train,val,test fractions")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default="", help="run folder (default runs/<arch>-<dataset>-<time>)")
    p.add_argument("--resume", default=None, metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument(
        "--mixed-precision", action="store_true", help="bfloat16 compute, float32 weights"
    )
    p.add_argument(
        "--tensorboard", action="store_true", help="write TensorBoard logs to RUN_DIR/tb"
    )
    p.add_argument(
        "--distribute", default="none", choices=["none", "mirrored"], help="multi-device (TF)"
    )
    p.add_argument("--no-augment", dest="augment", action="store_false")
    p.add_argument("--skip-unmatched", action="store_true", help="leave out images without a mask")
    p.add_argument("--workers", type=int, default=0, help="data worker threads (0 = auto)")
    p.add_argument(
        "--time-limit",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="stop after the last epoch that fits in this many minutes (0 = none)",
    )
    p.add_argument("--deep-supervision", choices=["on", "off"], default=None, help="unetpp only")
    p.add_argument(
        "--target",
        default=d.target,
        choices=TARGETS,
        help="mask: resized semantic mask; instance: boundary + foreground on native-scale crops "
        "of --img-size (nuclei as objects)",
    )
    a = p.parse_args(argv)
    # without --data: the bundled demo, small enough for a laptop CPU (explicit flags still win)
    sizing = DEMO_SIZING if a.data is None else {}
    for key in ("base_filters", "depth", "img_size", "epochs", "batch_size", "lr", "schedule"):
        if getattr(a, key) is None:
            setattr(a, key, sizing.get(key, getattr(d, key)))
    a.data = a.data or d.data
    arch_kwargs = {}
    if a.deep_supervision is not None:
        arch_kwargs["deep_supervision"] = a.deep_supervision == "on"
    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(
        **{k: v for k, v in vars(a).items() if k in fields and k != "arch_kwargs"},
        arch_kwargs=arch_kwargs,
    )
    return cfg, a.resume


def _strategy(cfg: TrainConfig):
    if cfg.distribute == "none":
        return None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("error: --distribute mirrored needs KERAS_BACKEND=tensorflow")
    import tensorflow as tf

    return tf.distribute.MirroredStrategy()


def _lr_callback(cfg: TrainConfig):
    import keras

    if cfg.schedule == "cosine":
        warm = max(1, cfg.epochs // 20)

        def cosine(epoch: int, _lr: float) -> float:
            if epoch < warm:
                return cfg.lr * (epoch + 1) / warm
            t = (epoch - warm) / max(1, cfg.epochs - warm)
            return 1e-2 * cfg.lr + (cfg.lr - 1e-2 * cfg.lr) * 0.5 * (1 + math.cos(math.pi * t))

        return keras.callbacks.LearningRateScheduler(cosine)
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_dice", mode="max", factor=0.5, patience=max(2, cfg.patience // 3), min_lr=1e-6
    )


def replica_batch_size(batch_size: int, n: int, replicas: int) -> int:
    """A batch size whose first batch splits evenly over the replicas (Keras reduces it to build).

    Keras' TF trainer averages the first batch across replicas, which fails when they get
    unequal shares; later partial batches are fine.
    """
    if replicas <= 1:
        return batch_size
    return max(replicas, min(batch_size, n) // replicas * replicas)


def arch_kwargs(cfg: TrainConfig) -> dict:
    """Keyword arguments for `segcore.models.build` (recorded in config.json and the card)."""
    kwargs = dict(cfg.arch_kwargs, channels=cfg.channels, depth=cfg.depth)
    if cfg.target == "instance":
        from segcore.instances import TARGET_CHANNELS

        kwargs["out_channels"] = len(TARGET_CHANNELS)
    if cfg.base_filters:
        kwargs["base_filters"] = cfg.base_filters
    return kwargs


def build_model(cfg: TrainConfig):
    """Build and compile the model named in the config (call inside the strategy scope if any)."""
    import keras

    from segcore.instances import TARGET_CHANNELS
    from segcore.losses import get_instance_loss, get_loss
    from segcore.metrics import get_metrics
    from segcore.models import build

    model = build(cfg.arch, **arch_kwargs(cfg))
    instance = cfg.target == "instance"
    model.compile(
        optimizer=keras.optimizers.Adam(cfg.lr),
        loss=get_instance_loss(cfg.loss, len(TARGET_CHANNELS)) if instance else get_loss(cfg.loss),
        metrics=get_metrics(),
    )
    return model


def _default_out(cfg: TrainConfig, dataset: str) -> Path:
    return Path("runs") / f"{cfg.arch}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def dataset_name(fmt: str, data: str) -> str:
    """'isic' or 'dsb' for the two known layouts (or a packed copy of one), else the folder's name."""
    marker = Path(data) / DATASET_MARKER
    if marker.is_file():
        return json.loads(marker.read_text())["dataset"]
    return fmt if fmt in ("isic", "dsb") else Path(data).resolve().name


def train(cfg: TrainConfig, resume_dir: Path | None = None) -> Path:
    """Run training (or resume it) and evaluation; returns the run folder."""
    import keras

    from segcore.callbacks import HistoryLogger, ResumeCheckpoint, TimeLimit, read_state, restore
    from segcore.data import find_samples, make_split, read_split, write_split
    from segcore.data.augment import AugmentConfig
    from segcore.data.batches import CachedBatches
    from segcore.data.cache import build_cache
    from segcore.data.split import parse_fractions
    from segcore.evaluate import evaluate_run
    from segcore.runinfo import device_description, library_versions

    keras.utils.set_random_seed(cfg.seed)
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        split = read_split(run_dir / "split.json")
        fmt = json.loads((run_dir / "config.json").read_text())["format"]
    else:
        fmt, samples = find_samples(cfg.data, cfg.format, cfg.skip_unmatched)
        split = make_split(samples, parse_fractions(cfg.split), cfg.seed)
        run_dir = Path(cfg.out) if cfg.out else _default_out(cfg, dataset_name(fmt, cfg.data))
        if (run_dir / "checkpoint" / "state.json").exists():
            raise SystemExit(
                f"error: {run_dir} already holds a run; use --resume {run_dir} or another --out"
            )
        run_dir.mkdir(parents=True, exist_ok=True)
        write_split(
            run_dir / "split.json",
            split,
            Path(cfg.data),
            {"seed": cfg.seed, "fractions": cfg.split},
        )

    t0 = time.perf_counter()
    workers = cfg.workers or min(8, os.cpu_count() or 1)
    if cfg.target == "instance":
        from segcore.data.crops import build_instance_cache

        train_cache = build_instance_cache(split["train"], workers)
        val_cache = build_instance_cache(split["val"], workers)
    else:
        train_cache = build_cache(split["train"], cfg.img_size, workers)
        val_cache = build_cache(split["val"], cfg.img_size, workers)
    if len(train_cache) == 0:
        raise SystemExit("error: no readable training images")
    log.info(
        "cached %d train / %d val images in %.1f s",
        len(train_cache),
        len(val_cache),
        time.perf_counter() - t0,
    )

    strategy = _strategy(cfg)
    replicas = 1
    if strategy is not None:
        replicas = strategy.num_replicas_in_sync
        log.info("distributing over %d replicas", replicas)
        with strategy.scope():
            model = build_model(cfg)
    else:
        model = build_model(cfg)

    state = {"epoch": 0, "best": None}
    if resume_dir is not None and read_state(run_dir) is not None:
        state.update(restore(model, run_dir))
        log.info("resuming %s after epoch %d", run_dir, state["epoch"])

    config = asdict(cfg) | {
        "dataset": dataset_name(fmt, cfg.data),
        "format": fmt,
        "normalization": "divide_by_255",
        "threshold": 0.5,
        "params": int(model.count_params()),
        "backend": keras.backend.backend(),
        "device": device_description(),
        "library_versions": library_versions(),
        "n_train": len(train_cache),
        "n_val": len(val_cache),
        "arch_kwargs": arch_kwargs(cfg),
    }
    if cfg.target == "instance":
        from segcore.instances import TARGET_CHANNELS

        config.update(
            mode="tiled",
            tile={"size": cfg.img_size, "overlap": TILE_OVERLAP},
            target_channels=list(TARGET_CHANNELS),
        )
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))

    if cfg.target == "instance":
        from segcore.data.crops import NativeCrops

        train_data = NativeCrops(
            train_cache,
            cfg.img_size,
            cfg.batch_size,
            cfg.channels,
            augment=AugmentConfig() if cfg.augment else None,
            seed=cfg.seed,
            epoch=state["epoch"],
            workers=workers,
            max_queue_size=16,
        )
        val_data = NativeCrops(val_cache, cfg.img_size, cfg.batch_size, cfg.channels, train=False)
    else:
        train_data = CachedBatches(
            train_cache.images,
            train_cache.masks,
            replica_batch_size(cfg.batch_size, len(train_cache), replicas),
            cfg.channels,
            augment=AugmentConfig() if cfg.augment else None,
            shuffle=True,
            seed=cfg.seed,
            epoch=state["epoch"],
            drop_remainder=True,
            workers=workers,
            max_queue_size=16,
        )
        val_data = CachedBatches(
            val_cache.images,
            val_cache.masks,
            replica_batch_size(cfg.batch_size, len(val_cache), replicas),
            cfg.channels,
        )
    best = keras.callbacks.ModelCheckpoint(
        run_dir / "checkpoint" / "best.weights.h5",
        monitor="val_dice",
        mode="max",
        save_best_only=True,
        save_weights_only=True,
    )
    if state["best"] is not None:
        best.best = state["best"]
    callbacks = [
        best,
        HistoryLogger(run_dir / "history.csv"),
        _lr_callback(cfg),
        keras.callbacks.EarlyStopping(monitor="val_dice", mode="max", patience=cfg.patience),
        ResumeCheckpoint(run_dir, best),
    ]
    if cfg.time_limit > 0:
        callbacks.append(TimeLimit(cfg.time_limit * 60.0))
    if cfg.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tb")))
    if state["epoch"] < cfg.epochs:
        model.fit(
            train_data,
            validation_data=val_data,
            epochs=cfg.epochs,
            initial_epoch=state["epoch"],
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    save_best_model(cfg, run_dir)
    _finish_config(run_dir)
    evaluate_run(run_dir)
    return run_dir


def save_best_model(cfg: TrainConfig, run_dir: Path) -> Path:
    """Write best.keras: the best epoch's weights in a fresh float32 model, without optimizer state."""
    import keras

    from segcore.models import build

    keras.mixed_precision.set_global_policy("float32")
    model = build(cfg.arch, **arch_kwargs(cfg))
    model.load_weights(run_dir / "checkpoint" / "best.weights.h5")
    model.save(run_dir / "best.keras")
    return run_dir / "best.keras"


def _finish_config(run_dir: Path) -> None:
    from segcore.history import read_history

    config = json.loads((run_dir / "config.json").read_text())
    rows = read_history(run_dir / "history.csv")
    best_row = max(rows, key=lambda r: r.get("val_dice", -1.0)) if rows else {}
    config.update(
        train_seconds=round(sum(r["seconds"] for r in rows), 2),
        epochs_completed=len(rows),
        best_epoch=best_row.get("epoch"),
        best_val_dice=best_row.get("val_dice"),
        seconds_to_best=round(
            sum(r["seconds"] for r in rows if r["epoch"] <= best_row.get("epoch", 0)), 2
        ),
    )
    (run_dir / "config.json").write_text(json.dumps(config, indent=1))


def _config_for_resume(run_dir: Path, epochs: int) -> TrainConfig:
    """The saved config of a run; a larger --epochs than saved extends the run."""
    saved = json.loads((Path(run_dir) / "config.json").read_text())
    known = {k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}
    known["arch_kwargs"] = {
        k: v
        for k, v in saved["arch_kwargs"].items()
        if k not in ("channels", "depth", "base_filters")
    }
    known["epochs"] = max(epochs, saved["epochs"])
    return TrainConfig(**known)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 for bad input, no traceback)."""
    from segcore.data import DataError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    cfg, resume = parse_args(argv)
    try:
        if resume:
            if not (Path(resume) / "config.json").exists():
                raise DataError(f"{resume}: not a run folder (no config.json)")
            cfg = _config_for_resume(Path(resume), cfg.epochs if "--epochs" in argv else 0)
        run_dir = train(cfg, Path(resume) if resume else None)
    except (DataError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    print(
        f"run folder: {run_dir}  test dice {metrics['dice']['mean']:.4f} on {metrics['n_images']} images"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
