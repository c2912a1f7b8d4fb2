"""Train a U-Net variant on an images/masks dataset: ``python -m segcore.train --data DIR ...``.

Writes a run folder: best.keras (best val_dice), history.csv, config.json, split.json,
checkpoint/ (for --resume), test_metrics.json and test_per_image.csv; every file atomically.
With no arguments it trains a small model on the real samples bundled in samples/isic, so a new
user sees it work. ``--distribute`` spreads training over devices and processes (see
`segcore.distribute`); process 0 alone writes the run folder.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from segcore.atomic import replacing, write_text
from segcore.data import DataError
from segcore.preprocess import DEFAULT_THRESHOLD, NORMALIZATION

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
RESUMABLE = ("epochs", "time_limit", "patience", "workers", "distribute")  # may change on resume
FEW_TEST_IMAGES = 10  # below this, the end of a run says the test score is noisy
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
    markers: str = "boundary"
    init_from: str = ""
    arch_kwargs: dict = field(default_factory=dict)


def _parser() -> argparse.ArgumentParser:
    """The flags; every default is None so that a flag the user gave can be told apart."""
    from segcore.distribute import STRATEGIES
    from segcore.instances import MARKERS
    from segcore.losses import LOSSES
    from segcore.models import ARCHITECTURES

    d = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m segcore.train", description=__doc__.split("\n")[0])
    p.add_argument("--data", help="dataset folder (default: the bundled samples/isic demo)")
    p.add_argument("--format", choices=["auto", "isic", "dsb", "plain"], help="(default auto)")
    p.add_argument("--arch", choices=list(ARCHITECTURES), help=f"(default {d.arch})")
    p.add_argument("--base-filters", type=int, help="filters at the first level")
    p.add_argument("--depth", type=int, help=f"down-sampling steps (default {d.depth})")
    p.add_argument("--img-size", type=int, help=f"square training size (default {d.img_size})")
    p.add_argument("--channels", type=int, choices=[1, 3], help="1 = grayscale (default 3)")
    p.add_argument("--epochs", type=int, help=f"(default {d.epochs})")
    p.add_argument("--batch-size", type=int, help=f"global batch size (default {d.batch_size})")
    p.add_argument("--lr", type=float, help=f"initial Adam learning rate (default {d.lr})")
    p.add_argument("--loss", choices=LOSSES)
    p.add_argument("--schedule", choices=SCHEDULES, help="LR: ReduceLROnPlateau or cosine")
    p.add_argument("--patience", type=int, help=f"early-stopping patience (default {d.patience})")
    p.add_argument("--split", help=f"train,val,test fractions (default {d.split})")
    p.add_argument("--seed", type=int, help=f"(default {d.seed})")
    p.add_argument("--out", help="run folder (default runs/<arch>-<dataset>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--mixed-precision", action="store_true", default=None, help="bfloat16 compute")
    p.add_argument(
        "--tensorboard", action="store_true", default=None, help="TensorBoard logs in RUN_DIR/tb"
    )
    p.add_argument(
        "--distribute",
        choices=STRATEGIES,
        help="data-parallel: Keras DataParallel (JAX), all devices and processes; "
        "mirrored: TensorFlow MirroredStrategy, local GPUs (default none)",
    )
    p.add_argument("--no-augment", dest="augment", action="store_false", default=None)
    p.add_argument(
        "--skip-unmatched", action="store_true", default=None, help="leave out unmatched images"
    )
    p.add_argument("--workers", type=int, help="data worker threads (0 = auto)")
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="MINUTES",
        help="stop after the last epoch that fits in this many minutes (0 = none)",
    )
    p.add_argument("--deep-supervision", choices=["on", "off"], help="unetpp only")
    p.add_argument(
        "--target",
        choices=TARGETS,
        help="mask: resized semantic mask (default); instance: boundary + foreground on "
        "native-scale crops of --img-size (nuclei as objects)",
    )
    p.add_argument(
        "--markers",
        choices=MARKERS,
        help="with --target instance: the channel that separates touching nuclei, their inner "
        "boundary ring (default) or a distance-to-edge map",
    )
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="fine-tune: start from the weights of a trained model of the same architecture and "
        "outputs (a .keras file, or a run folder's best.keras); use a lower --lr",
    )
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up notices")
    return p


def parse_args(argv: list[str]) -> tuple[TrainConfig, str | None]:
    """Parse flags into a TrainConfig (and the run folder to resume, if any).

    Without --data the bundled demo's sizing applies (explicit flags still win). With --resume
    the run's config.json is read back and only RESUMABLE settings may change; raises DataError
    (one line naming the flag or file) for a bad value.
    """
    a = _parser().parse_args(argv)
    fields = TrainConfig.__dataclass_fields__
    given = {k: v for k, v in vars(a).items() if k in fields and v is not None}
    if a.deep_supervision is not None:
        given["arch_kwargs"] = {"deep_supervision": a.deep_supervision == "on"}
    if a.resume is not None:
        return config_for_resume(Path(a.resume), given), a.resume
    if a.markers is not None and a.target != "instance":
        raise DataError(f"--markers {a.markers}: only with --target instance")
    cfg = TrainConfig(**((DEMO_SIZING if a.data is None else {}) | given))
    check_config(cfg)
    if cfg.init_from:
        init_path(cfg.init_from)  # a typo fails now, before the data are read
    return cfg, None


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def check_config(cfg: TrainConfig) -> None:
    """Raise DataError (one line naming the flag) for a setting training cannot use."""
    from segcore.data.split import parse_fractions

    at_least = {"epochs": 1, "batch_size": 1, "depth": 1, "patience": 1, "workers": 0}
    for key, low in at_least.items():
        if getattr(cfg, key) < low:
            raise DataError(f"{_flag(key)} {getattr(cfg, key)}: must be at least {low}")
    if cfg.base_filters is not None and cfg.base_filters < 1:
        raise DataError(f"--base-filters {cfg.base_filters}: must be at least 1")
    if not cfg.lr > 0:
        raise DataError(f"--lr {cfg.lr}: must be positive")
    if cfg.time_limit < 0:
        raise DataError(f"--time-limit {cfg.time_limit}: must be 0 (none) or positive")
    step = 2**cfg.depth
    if cfg.img_size < step or cfg.img_size % step:
        raise DataError(
            f"--img-size {cfg.img_size}: must be a multiple of {step} (2**depth, --depth "
            f"{cfg.depth}), e.g. {max(step, round(cfg.img_size / step) * step)}"
        )
    fractions = parse_fractions(cfg.split)
    if fractions[1] <= 0 or fractions[2] <= 0:
        raise DataError(
            f"--split {cfg.split}: validation and test fractions must be above 0 "
            "(the best epoch is chosen on validation and scored on test)"
        )


def config_for_resume(run_dir: Path, given: dict) -> TrainConfig:
    """The saved config of a run with the RESUMABLE flags the user gave; DataError otherwise."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise DataError(f"{run_dir}: not a run folder (no config.json)")
    try:
        saved = json.loads(path.read_text())
        known = {k: saved[k] for k in TrainConfig.__dataclass_fields__ if k in saved}
        known["arch_kwargs"] = {
            k: v
            for k, v in saved["arch_kwargs"].items()
            if k not in ("channels", "depth", "base_filters")
        }
        cfg = TrainConfig(**known)
        check_config(cfg)
    except (ValueError, KeyError, TypeError, AttributeError, DataError) as exc:
        raise DataError(f"{path}: not a usable run config ({type(exc).__name__}: {exc})") from None
    changed = [k for k, v in given.items() if k not in RESUMABLE and v != getattr(cfg, k)]
    if changed:
        k = changed[0]
        raise DataError(
            f"{_flag(k)} cannot change on resume (the run has {getattr(cfg, k)!r}); only "
            f"{', '.join(_flag(r) for r in RESUMABLE)} can; start a new run with --out"
        )
    cfg = TrainConfig(**(asdict(cfg) | {k: given[k] for k in RESUMABLE if k in given}))
    check_config(cfg)
    return cfg


def learning_rate(cfg: TrainConfig, steps_per_epoch: int):
    """Adam's learning rate: a constant (ReduceLROnPlateau lowers it) or Keras' CosineDecay with
    a linear warm-up over the first 5% of the epochs (at least one), decaying to 1% of --lr."""
    import keras

    if cfg.schedule != "cosine":
        return cfg.lr
    warm = max(1, cfg.epochs // 20) * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr / warm,
        decay_steps=max(1, cfg.epochs * steps_per_epoch - warm),
        alpha=0.01,
        warmup_target=cfg.lr,
        warmup_steps=warm,
    )


def arch_kwargs(cfg: TrainConfig) -> dict:
    """Keyword arguments for `segcore.models.build` (recorded in config.json and the card)."""
    kwargs = dict(cfg.arch_kwargs, channels=cfg.channels, depth=cfg.depth)
    if cfg.target == "instance":
        from segcore.instances import target_channels

        kwargs["out_channels"] = len(target_channels(cfg.markers))
    if cfg.base_filters:
        kwargs["base_filters"] = cfg.base_filters
    return kwargs


def build_model(cfg: TrainConfig, steps_per_epoch: int = 1):
    """Build and compile the model named in the config (call inside the strategy scope if any)."""
    import keras

    from segcore.instances import target_channels
    from segcore.losses import get_instance_loss, get_loss
    from segcore.metrics import get_metrics
    from segcore.models import build

    model = build(cfg.arch, **arch_kwargs(cfg))
    instance = cfg.target == "instance"
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(cfg, steps_per_epoch)),
        loss=(
            get_instance_loss(cfg.loss, len(target_channels(cfg.markers)))
            if instance
            else get_loss(cfg.loss)
        ),
        metrics=get_metrics(),
    )
    return model


def init_path(source: str) -> Path:
    """The model file --init-from names (a .keras file, or a run folder's best.keras)."""
    path = Path(source)
    if path.is_dir():
        path = path / "best.keras"
    if not path.is_file():
        raise DataError(f"--init-from {source}: no such model (a .keras file or a run folder)")
    return path


def init_weights(model, source: str) -> Path:
    """Load the weights of a saved model (a .keras file or a run folder) into ``model``, the
    fine-tuning start; DataError (one line naming the file) when it is unreadable or its layers
    differ. Returns the file read."""
    import keras

    from segcore.callbacks import fits, reason

    path = init_path(source)
    try:
        weights = keras.saving.load_model(path, compile=False).get_weights()
    except Exception as exc:  # Keras raises many types for a damaged or foreign file
        raise DataError(f"{path}: not a readable Keras model ({reason(exc)})") from None
    if not fits(model, weights):
        raise DataError(
            f"{path}: another architecture or output than this run's (--arch, --base-filters, "
            "--depth, --channels, --target must match the saved model)"
        )
    model.set_weights(weights)
    return path


def _default_out(cfg: TrainConfig, dataset: str) -> Path:
    return Path("runs") / f"{cfg.arch}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def dataset_name(fmt: str, data: str) -> str:
    """'isic' or 'dsb' for the two known layouts (or a packed copy of one), else the folder's name."""
    marker = Path(data) / DATASET_MARKER
    if marker.is_file():
        return json.loads(marker.read_text())["dataset"]
    return fmt if fmt in ("isic", "dsb") else Path(data).resolve().name


def prepare_run_dir(run_dir: Path) -> None:
    """Create a new run folder; DataError naming --out when it holds a run or cannot be written."""
    if (run_dir / "config.json").exists() or (run_dir / "checkpoint").exists():
        raise DataError(
            f"--out {run_dir}: already holds a run; use --resume {run_dir} or another --out"
        )
    if run_dir.exists() and not run_dir.is_dir():
        raise DataError(f"--out {run_dir}: is a file, not a folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"--out {run_dir}: cannot create the folder ({exc.strerror})") from None
    if not os.access(run_dir, os.W_OK):
        raise DataError(f"--out {run_dir}: the folder is not writable")


def _announce(cfg: TrainConfig, fmt: str, split: dict, run_dir: Path, demo: bool) -> None:
    counts = "/".join(str(len(split[k])) for k in ("train", "val", "test"))
    what = (
        f"training {cfg.arch} ({cfg.img_size} px, {cfg.epochs} epochs, batch {cfg.batch_size}) "
        f"on {sum(len(v) for v in split.values())} {fmt} pairs from {cfg.data} "
        f"(train/val/test {counts}); results go to {run_dir}"
    )
    if demo:
        what = (
            f"demo (no --data): {what}. This is a small model on the bundled samples, sized for "
            "a CPU; with --data DIR the full defaults apply (see the README)"
        )
    log.info(what)


def _plateau(cfg: TrainConfig):
    import keras

    from segcore.callbacks import monitor_for

    monitor, mode = monitor_for(cfg.target)
    return keras.callbacks.ReduceLROnPlateau(
        monitor=monitor, mode=mode, factor=0.5, patience=max(2, cfg.patience // 3), min_lr=1e-6
    )


def train(cfg: TrainConfig, resume_dir: Path | None = None) -> Path | None:
    """Run training (or resume it) and evaluation; returns the run folder (None in processes
    other than process 0, which writes nothing)."""
    from segcore.distribute import global_batch_size, setup

    topology = setup(cfg.distribute)  # before any computation (starts the processes' link)
    if cfg.target == "instance" and topology.processes > 1:
        raise DataError(
            "--target instance trains in one process (several local devices work); "
            "unset the KERAS_DISTRIBUTION_* variables"
        )

    import keras

    from segcore.callbacks import (
        BestWeights,
        HistoryLogger,
        ResumeCheckpoint,
        TimeLimit,
        monitor_for,
        read_best_weights,
        read_state,
        restore,
    )
    from segcore.data import find_samples, make_split, read_split, write_split
    from segcore.data.augment import AugmentConfig
    from segcore.data.batches import CachedBatches
    from segcore.data.cache import build_cache, default_workers
    from segcore.data.split import parse_fractions
    from segcore.evaluate import evaluate_run
    from segcore.runinfo import device_description, library_versions

    keras.utils.set_random_seed(cfg.seed)
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    monitor, mode = monitor_for(cfg.target)
    state = {"epoch": 0, "best": None}
    if resume_dir is not None:
        run_dir, fmt = Path(resume_dir), cfg.format  # config.json holds the detected layout
        try:
            split = read_split(run_dir / "split.json")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{run_dir / 'split.json'}: unreadable ({type(exc).__name__})"
            ) from None
        state = read_state(run_dir) or state
    else:
        fmt, samples = find_samples(cfg.data, cfg.format, bool(cfg.skip_unmatched))
        split = make_split(samples, parse_fractions(cfg.split), cfg.seed)
        run_dir = Path(cfg.out) if cfg.out else _default_out(cfg, dataset_name(fmt, cfg.data))
        if topology.is_chief:
            prepare_run_dir(run_dir)
            write_split(
                run_dir / "split.json",
                split,
                Path(cfg.data),
                {"seed": cfg.seed, "fractions": cfg.split},
            )
    if topology.is_chief:
        _announce(
            cfg, fmt, split, run_dir, demo=resume_dir is None and cfg.data == str(SAMPLES_DIR)
        )

    t0 = time.perf_counter()
    workers = cfg.workers or default_workers()
    if cfg.target == "instance":
        from segcore.data.crops import build_instance_cache

        train_cache = build_instance_cache(split["train"], workers, cfg.markers)
        val_cache = build_instance_cache(split["val"], workers, cfg.markers)
    else:
        train_cache = build_cache(split["train"], cfg.img_size, workers)
        val_cache = build_cache(split["val"], cfg.img_size, workers)
    if len(train_cache) == 0:
        raise DataError("no readable training images")
    log.info(
        "cached %d train / %d val images in %.1f s",
        len(train_cache),
        len(val_cache),
        time.perf_counter() - t0,
    )
    batch_size = global_batch_size(cfg.batch_size, len(train_cache), topology)
    n_val = len(val_cache)
    if topology.strategy is None and topology.devices > 1:
        n_val = n_val // topology.devices * topology.devices  # every batch splits over devices
        if n_val == 0:
            raise DataError(
                f"{len(val_cache)} validation images: fewer than the {topology.devices} devices"
            )
        if n_val < len(val_cache):
            log.warning(
                "validating on %d of %d images (a multiple of %d devices)",
                n_val,
                len(val_cache),
                topology.devices,
            )
    if topology.devices > 1:
        log.info(
            "distributing over %d devices in %d process(es); global batch %d",
            topology.devices,
            topology.processes,
            batch_size,
        )
    shard = (topology.process_id, topology.processes)
    if cfg.target == "instance":
        from segcore.data.crops import NativeCrops

        train_data = NativeCrops(
            train_cache,
            cfg.img_size,
            batch_size,
            cfg.channels,
            augment=AugmentConfig() if cfg.augment else None,
            seed=cfg.seed,
            epoch=state["epoch"],
            workers=workers,
            max_queue_size=16,
        )
        val_data = NativeCrops(val_cache, cfg.img_size, batch_size, cfg.channels, train=False)
    else:
        train_data = CachedBatches(
            train_cache.images,
            train_cache.masks,
            batch_size,
            cfg.channels,
            augment=AugmentConfig() if cfg.augment else None,
            shuffle=True,
            seed=cfg.seed,
            epoch=state["epoch"],
            drop_remainder=True,
            shard=shard,
            workers=workers,
            max_queue_size=16,
        )
        val_data = CachedBatches(
            val_cache.images[:n_val],
            val_cache.masks[:n_val],
            global_batch_size(cfg.batch_size, n_val, topology),
            cfg.channels,
            shard=shard,
        )

    with topology.scope():
        model = build_model(cfg, len(train_data))
        if resume_dir is not None and read_state(run_dir) is not None:
            state = restore(model, run_dir)
            if state["best"] is not None:
                read_best_weights(run_dir, model)  # a bad file fails now, not after training
            if state["monitor"] != monitor:  # a run saved under an older rule: compare afresh
                state["best"] = None
            log.info("resuming %s after epoch %d", run_dir, state["epoch"])
        elif cfg.init_from:
            log.info("starting from the weights of %s", init_weights(model, cfg.init_from))

        config = asdict(cfg) | {
            "dataset": dataset_name(fmt, cfg.data),
            "format": fmt,
            "normalization": NORMALIZATION,
            "threshold": DEFAULT_THRESHOLD,
            "params": int(model.count_params()),
            "backend": keras.backend.backend(),
            "device": device_description(),
            "devices": topology.devices,
            "processes": topology.processes,
            "library_versions": library_versions(),
            "n_train": len(train_cache),
            "n_val": len(val_cache),
            "arch_kwargs": arch_kwargs(cfg),
            "monitor": monitor,
        }
        if cfg.target == "instance":
            from segcore.instances import target_channels

            config.update(
                mode="tiled",
                tile={"size": cfg.img_size, "overlap": TILE_OVERLAP},
                target_channels=list(target_channels(cfg.markers)),
            )
        # every process runs the saving callbacks (saving a distributed model takes part in
        # collective operations); the others write into a scratch folder that is then removed
        out = run_dir if topology.is_chief else Path(tempfile.mkdtemp(prefix="segcore-process-"))
        best = BestWeights(out / "checkpoint" / "best.weights.npz", state["best"], monitor, mode)
        callbacks = [
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience),
            best,
            HistoryLogger(out / "history.csv"),
            ResumeCheckpoint(out, best),
        ]
        if cfg.schedule != "cosine":
            callbacks.append(_plateau(cfg))
        if cfg.time_limit > 0:
            callbacks.append(TimeLimit(cfg.time_limit * 60.0, topology.agree))
        if cfg.tensorboard and topology.is_chief:
            callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tb")))
        if topology.is_chief:
            write_text(run_dir / "config.json", json.dumps(config, indent=1))
        if state["epoch"] < cfg.epochs:
            model.fit(
                train_data,
                validation_data=val_data,
                epochs=cfg.epochs,
                initial_epoch=state["epoch"],
                callbacks=callbacks,
                verbose=(1 if sys.stdout.isatty() else 2) if topology.is_chief else 0,
            )
    if not topology.is_chief:
        shutil.rmtree(out, ignore_errors=True)
        return None
    save_best_model(cfg, run_dir)
    _finish_config(run_dir)
    evaluate_run(run_dir)
    return run_dir


def save_best_model(cfg: TrainConfig, run_dir: Path) -> Path:
    """Write best.keras: the best epoch's weights in a fresh float32 model (no optimizer state)."""
    import keras

    from segcore.callbacks import read_best_weights
    from segcore.models import build

    keras.mixed_precision.set_global_policy("float32")
    model = build(cfg.arch, **arch_kwargs(cfg))
    model.set_weights(read_best_weights(run_dir, model))
    with replacing(run_dir / "best.keras") as tmp:
        model.save(tmp)
    return run_dir / "best.keras"


def _finish_config(run_dir: Path) -> None:
    from segcore.callbacks import monitor_for
    from segcore.history import read_history

    config = json.loads((run_dir / "config.json").read_text())
    rows = read_history(run_dir / "history.csv")
    monitor, mode = monitor_for(config.get("target", "mask"))
    sign = 1.0 if mode == "max" else -1.0  # max() keeps the first of equal values, as BestWeights
    scored = [r for r in rows if r.get(monitor) is not None]
    best_row = max(scored, key=lambda r: sign * r[monitor]) if scored else {}
    config.update(
        train_seconds=round(sum(r["seconds"] for r in rows), 2),
        epochs_completed=len(rows),
        best_epoch=best_row.get("epoch"),
        best_val_dice=best_row.get("val_dice"),
        seconds_to_best=round(
            sum(r["seconds"] for r in rows if r["epoch"] <= best_row.get("epoch", 0)), 2
        ),
    )
    write_text(run_dir / "config.json", json.dumps(config, indent=1))


def _verbose_flag(argv: list[str]) -> bool:
    """Whether --verbose was given, read before the full parser imports Keras."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--verbose", action="store_true")
    return early.parse_known_args(argv)[0].verbose


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (2 for bad input, no traceback)."""
    from segcore.quiet import quiet_tensorflow

    argv = sys.argv[1:] if argv is None else argv
    quiet_tensorflow(_verbose_flag(argv))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        cfg, resume = parse_args(argv)
        run_dir = train(cfg, Path(resume) if resume else None)
    except (DataError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if run_dir is None:
        return 0
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    n, dice = metrics["n_images"], metrics["dice"]
    print(f"run folder: {run_dir}  test dice {dice['mean']:.4f} on {n} images")
    if n < FEW_TEST_IMAGES:
        print(
            f"note: a mean over {n} test images is noisy (one image moves it by up to "
            f"{1 / max(n, 1):.2f}) and differs from the best validation Dice, measured on other "
            "images at the training size; use a full data set (--data) for a reliable score"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
