"""The training loop: open the run folder, load the data, configure the model, fit, finish.

`train` reads top to bottom: `open_run` (a new run folder with its split, or the one resumed),
`TargetSpec.feeders` (cached data and batch feeders for the run's target), `configure` (the
compiled model, resumed or fine-tuned weights, callbacks and config.json), Keras' ``fit``, and
`finish` (best.keras, the final config and the test evaluation). Every file of the run folder is
written atomically; ``--distribute`` spreads training over devices and processes
(`segcore.training.distribute`), and process 0 alone writes the run folder.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras

from segcore.atomic import replacing, write_text
from segcore.data import read_split, write_split
from segcore.data.cache import default_workers
from segcore.data.layouts import Sample
from segcore.data.sources import SourcesSplit, source_counts
from segcore.errors import DataError, reason
from segcore.history import read_history
from segcore.inference.preprocess import PERCENTILES
from segcore.models import build
from segcore.run_config import (
    CONFIG_FILE,
    RunConfig,
    TrainConfig,
    init_path,
    recorded_format,
    run_dataset,
)
from segcore.training.callbacks import (
    BestWeights,
    HistoryLogger,
    ResumeCheckpoint,
    TimeLimit,
    check_checkpoint,
    fits,
    read_best_weights,
    read_state,
    restore,
)
from segcore.training.distribute import Topology, setup
from segcore.training.evaluation import evaluate_run
from segcore.training.metrics import get_metrics
from segcore.training.quiet import tensorflow_left_unloaded
from segcore.training.runinfo import device_description, library_versions
from segcore.training.targets import Feeders, TargetSpec, spec_for

log = logging.getLogger("segcore.commands.train")


@dataclass(frozen=True)
class OpenRun:
    """A run folder ready to train into: its split, detected layout and resume state."""

    run_dir: Path
    fmt: str
    split: dict[str, list[Sample]]
    state: dict
    resumed: bool = False


def learning_rate(cfg: TrainConfig, steps_per_epoch: int):
    """Adam's learning rate: a constant (ReduceLROnPlateau lowers it) or Keras' CosineDecay with
    a linear warm-up over the first 5% of the epochs (at least one), decaying to 1% of --lr."""
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


def build_model(cfg: TrainConfig, steps_per_epoch: int = 1) -> keras.Model:
    """Build and compile the model named in the config (call inside the strategy scope if any)."""
    model = build(cfg.arch, **cfg.build_kwargs())
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(cfg, steps_per_epoch)),
        loss=spec_for(cfg.target).loss(cfg),
        metrics=get_metrics(),
    )
    return model


def build_state(model: keras.Model, batch: tuple) -> None:
    """Create the optimizer's and the compiled loss's and metrics' variables before ``fit``,
    from the shapes of one training ``batch``, so that TensorFlow traces the train step once.

    Keras under TensorFlow without a distribution strategy leaves them to the first trace of
    the train step, and a ``tf.function`` whose first trace creates variables is traced a second
    time: 2.9 to 4.4 s of CPU at the start of every run and resume here (a tiny U-Net, measured
    by timing each trace; the step itself is the same). Keras runs this same build itself under a
    strategy and under JAX; it has no public name (``Trainer._symbolic_build``), so a Keras
    without it leaves the second trace (`tests/training/test_train.py` counts the traces)."""
    if keras.backend.backend() != "tensorflow":
        return
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:
        symbolic_build(data_batch=batch)


def init_weights(model: keras.Model, source: str) -> Path:
    """Load the weights of a saved model (a .keras file or a run folder) into ``model``, the
    fine-tuning start; DataError (one line naming the file) when it is unreadable or its layers
    differ. Returns the file read."""
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


def prepare_run_dir(run_dir: Path) -> None:
    """Create a new run folder; DataError naming --out when it holds a run or cannot be written."""
    import os

    if (run_dir / CONFIG_FILE).exists() or (run_dir / "checkpoint").exists():
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


def announce(cfg: TrainConfig, fmt: str, split: dict, run_dir: Path, demo: bool) -> None:
    """Say what is trained on what, and where the results go (and that a demo is a demo)."""
    counts = "/".join(str(len(split[k])) for k in ("train", "val", "test"))
    what = (
        f"training {cfg.arch} ({cfg.img_size} px, {cfg.epochs} epochs, batch {cfg.batch_size}) "
        f"on {sum(len(v) for v in split.values())} {fmt} pairs from {', '.join(cfg.data_dirs)} "
        f"(train/val/test {counts}); results go to {run_dir}"
    )
    if demo:
        what = (
            f"demo (no --data): {what}. This is a small model on the bundled samples, sized for "
            "a CPU; with --data DIR the full defaults apply (see the README)"
        )
    log.info(what)


def open_run(
    cfg: TrainConfig,
    resume_dir: Path | None,
    topology: Topology,
    found: SourcesSplit | None = None,
) -> OpenRun:
    """The run folder to train into: the resumed one (its split and state), or a new one with a
    fresh seeded split (written by process 0) of ``found`` (`TrainConfig.find_data`'s, found
    now if None)."""
    if resume_dir is not None:
        run_dir = Path(resume_dir)
        try:
            split = read_split(run_dir / "split.json")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{run_dir / 'split.json'}: unreadable ({type(exc).__name__})"
            ) from None
        state = read_state(run_dir) or {"epoch": 0, "best": None}
        if "weights" in state:
            check_checkpoint(run_dir, state)  # a damaged file fails now, before data are read
        if (run_dir / "history.csv").is_file():
            try:
                read_history(run_dir / "history.csv")  # a damaged log fails now, not in an epoch
            except ValueError as exc:
                raise DataError(str(exc)) from None
        opened = OpenRun(run_dir, cfg.format, split, state, resumed=True)  # layout: config.json
    else:
        if found is None:
            found = cfg.find_data()
        fmt, split, root = found.fmt, found.split, found.root
        run_dir = Path(cfg.out) if cfg.out else default_out(cfg, run_dataset(cfg, fmt))
        if topology.is_chief:
            prepare_run_dir(run_dir)
            meta = {"seed": cfg.seed, "fractions": cfg.split}
            write_split(run_dir / "split.json", split, root, meta)
        opened = OpenRun(run_dir, fmt, split, {"epoch": 0, "best": None})
    if topology.is_chief:
        announce(cfg, opened.fmt, split, run_dir, demo=resume_dir is None and cfg.is_demo)
    return opened


def default_out(cfg: TrainConfig, dataset: str) -> Path:
    """``runs/<arch>-<dataset>-<time>``."""
    return Path("runs") / f"{cfg.arch}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}"


def load_data(cfg: TrainConfig, run: OpenRun, topology: Topology) -> Feeders:
    """Decode the run's training and validation images once and build their feeders."""
    t0 = time.perf_counter()
    workers = cfg.workers or default_workers()
    feeders = spec_for(cfg.target).feeders(cfg, run.split, run.state["epoch"], workers, topology)
    log.info(
        "cached %d train / %d val images in %.1f s",
        feeders.n_train,
        feeders.n_val,
        time.perf_counter() - t0,
    )
    if topology.devices > 1:
        log.info(
            "distributing over %d devices in %d process(es); global batch %d",
            topology.devices,
            topology.processes,
            feeders.train.batch_size,
        )
    return feeders


def start_weights(cfg: TrainConfig, model: keras.Model, run: OpenRun, spec: TargetSpec) -> dict:
    """Resume the checkpoint or load --init-from weights; returns the resume state."""
    state = run.state
    if run.resumed and read_state(run.run_dir) is not None:
        state = restore(model, run.run_dir)
        if state["best"] is not None:
            read_best_weights(run.run_dir, model)  # a bad file fails now, not after training
        if state["monitor"] != spec.monitor[0]:  # a run saved under an older rule: compare afresh
            state["best"] = None
        log.info("resuming %s after epoch %d", run.run_dir, state["epoch"])
    elif cfg.init_from:
        log.info("starting from the weights of %s", init_weights(model, cfg.init_from))
    return state


def run_config(
    cfg: TrainConfig, run: OpenRun, model: keras.Model, feeders: Feeders, topology
) -> dict:
    """config.json's content at the start of training (`RunConfig` reads it back)."""
    spec = spec_for(cfg.target)
    return (
        asdict(cfg)
        | {
            "dataset": run_dataset(cfg, run.fmt),
            "format": recorded_format(cfg, run.fmt),
            "normalization": cfg.normalization,
            "normalization_percentiles": list(PERCENTILES),
            "sources": source_counts(run.split),
            "threshold": RunConfig.__dataclass_fields__["threshold"].default,
            "params": int(model.count_params()),
            "backend": keras.backend.backend(),
            "device": device_description(),
            "devices": topology.devices,
            "processes": topology.processes,
            "library_versions": library_versions(),
            "n_train": feeders.n_train,
            "n_val": feeders.n_val,
            "arch_kwargs": cfg.build_kwargs(),
            "monitor": spec.monitor[0],
        }
        | spec.recorded(cfg)
    )


def callbacks(cfg: TrainConfig, out: Path, state: dict, topology: Topology, tb_dir: Path):
    """Early stopping, best weights, history, resume checkpoint, LR plateau, time limit, TB."""
    monitor, mode = spec_for(cfg.target).monitor
    best = BestWeights(out / "checkpoint" / "best.weights.npz", state["best"], monitor, mode)
    found = [
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience),
        best,
        HistoryLogger(out / "history.csv"),
        ResumeCheckpoint(out, best),
    ]
    if cfg.schedule != "cosine":
        found.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor,
                mode=mode,
                factor=0.5,
                patience=max(2, cfg.patience // 3),
                min_lr=1e-6,
            )
        )
    if cfg.time_limit > 0:
        found.append(TimeLimit(cfg.time_limit * 60.0, topology.agree))
    if cfg.tensorboard and topology.is_chief:
        found.append(keras.callbacks.TensorBoard(str(tb_dir)))
    return found


def fit(cfg: TrainConfig, run: OpenRun, feeders: Feeders, topology: Topology) -> None:
    """Build (or resume) the model and fit it, writing config.json and the checkpoints."""
    spec = spec_for(cfg.target)
    with topology.scope():
        model = build_model(cfg, len(feeders.train))
        state = start_weights(cfg, model, run, spec)
        build_state(model, feeders.train[0])  # seeded by (epoch, batch): takes nothing away
        # every process runs the saving callbacks (saving a distributed model takes part in
        # collective operations); the others write into a scratch folder that is then removed
        chief = topology.is_chief
        out = run.run_dir if chief else Path(tempfile.mkdtemp(prefix="segcore-process-"))
        if chief:
            config = run_config(cfg, run, model, feeders, topology)
            write_text(run.run_dir / CONFIG_FILE, json.dumps(config, indent=1))
        if state["epoch"] < cfg.epochs:
            model.fit(
                feeders.train,
                validation_data=feeders.val,
                epochs=cfg.epochs,
                initial_epoch=state["epoch"],
                callbacks=callbacks(cfg, out, state, topology, run.run_dir / "tb"),
                verbose=(1 if sys.stdout.isatty() else 2) if chief else 0,
            )
    if not chief:
        shutil.rmtree(out, ignore_errors=True)


def train(
    cfg: TrainConfig, resume_dir: Path | None = None, found: SourcesSplit | None = None
) -> Path | None:
    """Run training (or resume it) and evaluation; returns the run folder (None in processes
    other than process 0, which writes nothing). ``found``: the data `TrainConfig.find_data`
    found for a new run (found here if None)."""
    with tensorflow_left_unloaded():  # under JAX, Keras would import it to seed it and save
        return _train(cfg, resume_dir, found)


def _train(cfg: TrainConfig, resume_dir: Path | None, found: SourcesSplit | None) -> Path | None:
    topology = setup(cfg.distribute)  # before any computation (starts the processes' link)
    if cfg.target == "instance" and topology.processes > 1:
        raise DataError(
            "--target instance trains in one process (several local devices work); "
            "unset the KERAS_DISTRIBUTION_* variables"
        )
    keras.utils.set_random_seed(cfg.member_seed)
    if cfg.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    run = open_run(cfg, resume_dir, topology, found)
    feeders = load_data(cfg, run, topology)
    fit(cfg, run, feeders, topology)
    if not topology.is_chief:
        return None
    finish(cfg, run.run_dir)
    return run.run_dir


def finish(cfg: TrainConfig, run_dir: Path) -> None:
    """Write best.keras and the final config.json, then evaluate on the test split."""
    save_best_model(cfg, run_dir)
    finish_config(run_dir)
    evaluate_run(run_dir)


def save_best_model(cfg: TrainConfig, run_dir: Path) -> Path:
    """Write best.keras: the best epoch's weights in a fresh float32 model (no optimizer state)."""
    keras.mixed_precision.set_global_policy("float32")
    model = build(cfg.arch, **cfg.build_kwargs())
    model.set_weights(read_best_weights(run_dir, model))
    with replacing(run_dir / "best.keras") as tmp:
        model.save(tmp)
    return run_dir / "best.keras"


def finish_config(run_dir: Path) -> None:
    """Add the training time and the best epoch (from history.csv) to config.json."""
    config = json.loads((run_dir / CONFIG_FILE).read_text())
    rows = read_history(run_dir / "history.csv")
    monitor, mode = spec_for(config.get("target", "mask")).monitor
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
    write_text(run_dir / CONFIG_FILE, json.dumps(config, indent=1))
