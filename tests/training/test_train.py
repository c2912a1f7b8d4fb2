"""``segcore.commands.train``: the run folder of a short training, resume (after a finished or interrupted
run), grayscale input with a time limit, bad input. The other back ends and strategies are in
``test_train_distributed.py`` (a file of its own, so the two run on different test workers).

Training runs use the shared 12-image ``tiny_dataset_dir`` (32x32), a U-Net with base_filters 4
and depth 2, batch 4 (2 steps per epoch) and split 0.6,0.2,0.2 (8 train, 2 val, 2 test).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np
import pytest
from train_runs import (
    STEPS_PER_EPOCH,
    epochs_logged,
    h5_arrays,
    last_weights,
    optimizer_iterations,
    state,
    subprocess_env,
    train_args,
)

from segcore.commands.train import main, parse_args
from segcore.data import read_split
from segcore.errors import DataError, UserError
from segcore.history import read_history
from segcore.paths import REPO_ROOT as REPO
from segcore.run_config import DEMO_SIZING, SAMPLES_DIR, TrainConfig, dataset_name

HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "dice",
    "iou",
    "precision",
    "recall",
    "accuracy",
    "val_loss",
    "val_dice",
    "val_iou",
    "val_precision",
    "val_recall",
    "val_accuracy",
    "lr",
    "seconds",
]
# --- arguments ----------------------------------------------------------------------------------


def test_no_arguments_means_the_bundled_demo():
    cfg, resume = parse_args([])
    assert resume is None
    assert Path(cfg.data) == SAMPLES_DIR == REPO / "samples" / "isic"
    assert SAMPLES_DIR.is_dir()
    for key, value in DEMO_SIZING.items():
        assert getattr(cfg, key) == value
    full = TrainConfig()
    assert cfg.img_size < full.img_size and cfg.depth < full.depth and cfg.base_filters <= 16
    # explicit flags still win over the demo sizing
    assert parse_args(["--epochs", "2"])[0].epochs == 2
    assert parse_args(["--epochs", "2"])[0].img_size == DEMO_SIZING["img_size"]


def test_the_demo_says_what_it_trains_on_what_and_where(tmp_path: Path, caplog):
    import logging

    from segcore.data import find_samples, make_split
    from segcore.training.loop import announce as _announce

    cfg, _ = parse_args([])
    fmt, samples = find_samples(cfg.data)
    split = make_split(samples, (0.8, 0.1, 0.1), cfg.seed)
    with caplog.at_level(logging.INFO, logger="segcore.commands.train"):
        _announce(cfg, fmt, split, tmp_path / "run", demo=True)
    message = caplog.records[-1].getMessage()
    assert message.startswith("demo (no --data): training unet_bn (96 px, 40 epochs, batch 8)")
    assert f"{len(samples)} isic pairs from {SAMPLES_DIR}" in message
    assert "train/val/test 20/2/2" in message and f"results go to {tmp_path / 'run'}" in message


def test_with_data_the_full_defaults_apply():
    cfg, _ = parse_args(["--data", "somewhere"])
    d = TrainConfig()
    assert (cfg.img_size, cfg.epochs, cfg.batch_size, cfg.depth) == (
        d.img_size,
        d.epochs,
        d.batch_size,
        d.depth,
    )
    assert cfg.base_filters is None


def test_every_documented_flag_parses():
    cfg, resume = parse_args(
        [
            "--data", "d", "--format", "dsb", "--arch", "unetpp", "--base-filters", "8",
            "--img-size", "96", "--channels", "1", "--epochs", "5", "--batch-size", "2",
            "--lr", "0.01", "--loss", "focal", "--split", "0.6,0.2,0.2", "--seed", "9",
            "--out", "o", "--mixed-precision", "--tensorboard",
            "--distribute", "mirrored", "--deep-supervision", "off", "--verbose",
        ]
    )  # fmt: skip
    assert resume is None
    assert (cfg.format, cfg.arch, cfg.base_filters, cfg.img_size, cfg.channels) == (
        "dsb",
        "unetpp",
        8,
        96,
        1,
    )
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.loss, cfg.split, cfg.seed) == (
        5,
        2,
        0.01,
        "focal",
        "0.6,0.2,0.2",
        9,
    )
    assert cfg.mixed_precision and cfg.tensorboard and cfg.distribute == "mirrored"
    assert cfg.arch_kwargs == {"deep_supervision": False}


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "coco"],
        ["--channels", "2"],
        ["--loss", "l2"],
        ["--distribute", "tpu"],
        ["--arch", "unet_nb"],  # a typo fails here, before any cache is built
    ],
)
def test_bad_choices_are_usage_errors(argv):
    with pytest.raises(UserError, match=f"^{argv[0]} invalid choice"):
        parse_args(argv)


def test_dataset_name_reads_the_pack_marker(tmp_path: Path):
    (tmp_path / "dataset.json").write_text(json.dumps({"dataset": "dsb"}))
    assert dataset_name("plain", str(tmp_path)) == "dsb"
    assert dataset_name("isic", str(tmp_path / "x")) == "isic"
    assert dataset_name("plain", str(tmp_path / "my_cells")) == "my_cells"


def test_cosine_schedule_is_keras_cosine_decay_with_warmup():
    import keras

    from segcore.training.loop import learning_rate

    cfg = TrainConfig(epochs=40, lr=1e-3, schedule="cosine")
    schedule = learning_rate(cfg, steps_per_epoch=10)
    assert isinstance(schedule, keras.optimizers.schedules.CosineDecay)

    def lr(step: int) -> float:
        return float(keras.ops.convert_to_numpy(schedule(step)))

    assert lr(0) == pytest.approx(1e-3 / 20)  # warm-up over 2 epochs = 20 steps
    assert lr(10) < lr(20) == pytest.approx(1e-3)
    lrs = [lr(s) for s in range(20, 401, 20)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))
    assert lrs[-1] == pytest.approx(1e-5, rel=1e-3)  # decays to 1% of the initial rate
    assert learning_rate(TrainConfig(schedule="plateau"), 10) == TrainConfig().lr


# --- bad input: exit code 2, one line, no traceback ---------------------------------------------


BAD_FLAGS = {
    "split_1_0_0": (["--split", "1,0,0"], "--split"),
    "batch_0": (["--batch-size", "0"], "--batch-size 0"),
    "img_size_30": (["--img-size", "30"], "--img-size 30"),
    "epochs_0": (["--epochs", "0"], "--epochs 0"),
    "lr_negative": (["--lr", "-1"], "--lr"),
}


@pytest.mark.parametrize(
    "case",
    ["wrong_folder", "bad_split", "not_a_run", "out_under_a_file", "out_is_a_file", *BAD_FLAGS],
)
def test_bad_input_returns_2_with_one_line(case, tmp_path: Path, tiny_dataset_dir: Path, capsys):
    named = str(tmp_path)
    if case == "wrong_folder":
        (tmp_path / "photos").mkdir()
        (tmp_path / "photos" / "cat.png").write_bytes(b"")
        argv = ["--data", str(tmp_path / "photos"), "--out", str(tmp_path / "run")]
    elif case == "bad_split":
        argv = train_args(tiny_dataset_dir, tmp_path / "run") + ["--split", "0.9,0.2"]
        named = "--split"
    elif case == "not_a_run":
        argv = ["--resume", str(tmp_path)]
    elif case in ("out_under_a_file", "out_is_a_file"):
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "run" if case == "out_under_a_file" else tmp_path / "file"
        argv, named = train_args(tiny_dataset_dir, out), f"--out {out}"
    else:
        extra, named = BAD_FLAGS[case]
        argv = train_args(tiny_dataset_dir, tmp_path / "run") + extra
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert named in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_folder_returns_2(tmp_path: Path, tiny_dataset_dir: Path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(train_args(tiny_dataset_dir, locked / "run")) == 2
    finally:
        locked.chmod(0o700)
    assert f"--out {locked / 'run'}" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["{}", "not json", "[1, 2]", '{"arch": "unet"}'])
def test_resume_on_a_bad_config_names_the_file(content: str, tmp_path: Path, capsys):
    (tmp_path / "config.json").write_text(content)
    assert main(["--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'config.json'}: ") and err.count("\n") == 1, err


NO_KERAS = """
import sys
import segcore.commands.train

code = segcore.commands.train.main(sys.argv[1:])
assert "keras" not in sys.modules and "tensorflow" not in sys.modules, "Keras was loaded"
sys.exit(code)
"""


def test_a_folder_without_data_is_named_before_keras_loads(tmp_path: Path, capsys):
    """A wrong --data folder fails at once (the data are found before Keras loads): one line,
    exit 2, in a fresh process; with --verbose the same line ends the output (in this process)."""
    empty = tmp_path / "EMPTY"
    empty.mkdir()
    quiet = subprocess.run(
        [sys.executable, "-c", NO_KERAS, "--data", str(empty)],
        cwd=tmp_path,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert quiet.returncode == 2, quiet.stderr
    lines = quiet.stderr.splitlines()
    assert len(lines) == 1, quiet.stderr  # no traceback
    assert lines[0].startswith("error: ") and str(empty) in lines[0]
    assert "no dataset found" in lines[0]
    assert not (tmp_path / "runs").exists()
    capsys.readouterr()
    assert main(["--data", str(empty), "--verbose", "--out", str(tmp_path / "out")]) == 2
    verbose = capsys.readouterr().err
    assert verbose.splitlines()[-1] == lines[0] and "Traceback" not in verbose


# --- a 2-epoch run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tiny_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A 2-epoch run folder, the CachedBatches datasets the run built, and one entry per trace
    of the model's train step (its Python body runs only while TensorFlow traces it)."""
    import segcore.training.feeders as batches
    import segcore.training.loop as loop

    made, traces = [], []

    class Recording(batches.CachedBatches):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    build_model = loop.build_model

    def counting_model(*args, **kwargs):
        model = build_model(*args, **kwargs)
        step = model.train_step
        model.train_step = lambda data: traces.append(data) or step(data)
        return model

    run = tmp_path_factory.mktemp("train") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batches, "CachedBatches", Recording)
        mp.setattr(loop, "build_model", counting_model)
        assert main(train_args(tiny_dataset_dir, run)) == 0
    return run, made, traces


@pytest.mark.slow
def test_run_folder_is_complete(trained):
    run, *_ = trained
    for name in (
        "best.keras",
        "history.csv",
        "config.json",
        "split.json",
        "test_metrics.json",
        "test_per_image.csv",
        "checkpoint/state.json",
        "checkpoint/best.weights.npz",
    ):
        assert (run / name).is_file(), name
    assert last_weights(run).is_file()
    # one save with the optimizer state (last), the best weights alone, no temporary files left
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == [
        "best.weights.npz",
        last_weights(run).name,
        "state.json",
    ]
    assert not list(run.glob(".tmp-*"))
    last = h5_arrays(last_weights(run))
    n_weights = sum(1 for k in last if k.startswith("layers/"))
    with np.load(run / "checkpoint" / "best.weights.npz") as best:
        assert len(best.files) == n_weights
    assert any(k.startswith("optimizer/") for k in last)
    pictures = list((run / "triptychs").glob("*.png"))
    assert pictures and all(p.stat().st_size > 0 for p in pictures)


@pytest.mark.slow
def test_the_train_step_is_traced_once(trained):
    """`segcore.training.loop.build_state` creates the optimizer's and metrics' variables
    before fit: without it TensorFlow traces the step twice (the first trace creates them)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("only TensorFlow traces the step twice")
    assert len(trained[2]) == 1


def test_history_csv(trained):
    run, *_ = trained
    with open(run / "history.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == HISTORY_COLUMNS
        rows = list(reader)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        values = {k: float(v) for k, v in r.items()}
        assert all(math.isfinite(v) for v in values.values())
        assert values["lr"] == pytest.approx(1e-3)
        assert values["seconds"] > 0 and values["loss"] > 0 and values["val_loss"] > 0
        for name in ("dice", "iou", "precision", "recall", "accuracy"):
            assert 0 <= values[name] <= 1 and 0 <= values[f"val_{name}"] <= 1


@pytest.mark.slow
def test_config_json(trained, tiny_dataset_dir: Path):
    run, *_ = trained
    config = json.loads((run / "config.json").read_text())
    assert set(asdict(TrainConfig())) <= set(config)  # every setting
    assert (config["arch"], config["img_size"], config["epochs"], config["seed"]) == (
        "unet",
        32,
        2,
        3,
    )
    assert config["data"] == str(tiny_dataset_dir) and config["out"] == str(run)
    assert config["arch_kwargs"] == {"channels": 3, "depth": 2, "base_filters": 4}
    versions = config["library_versions"]
    assert {"python", "keras", "numpy", "pillow"} <= set(versions)
    import keras

    assert versions["keras"] == keras.__version__
    assert config["backend"] == keras.backend.backend()
    assert isinstance(config["device"], str) and config["device"]
    assert (config["n_train"], config["n_val"], config["epochs_completed"]) == (8, 2, 2)
    assert config["params"] > 0 and config["train_seconds"] > 0
    assert (config["devices"], config["processes"]) == (1, 1)
    history = read_history(run / "history.csv")
    best = max(history, key=lambda r: r["val_dice"])
    assert config["monitor"] == "val_dice"
    assert config["best_epoch"] == best["epoch"]
    assert config["best_val_dice"] == pytest.approx(best["val_dice"])


@pytest.mark.slow
def test_split_json_and_test_outputs(trained, tiny_dataset_dir: Path):
    run, *_ = trained
    split = read_split(run / "split.json")
    assert [len(split[k]) for k in ("train", "val", "test")] == [8, 2, 2]
    names = [set(s.name for s in split[k]) for k in ("train", "val", "test")]
    assert len(set().union(*names)) == 12
    assert json.loads((run / "split.json").read_text())["root"] == str(tiny_dataset_dir.resolve())
    with open(run / "test_per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["image"] for r in rows} == names[2]
    metrics = json.loads((run / "test_metrics.json").read_text())
    assert metrics["n_images"] == 2
    assert metrics["dice"]["mean"] == pytest.approx(
        np.mean([float(r["dice"]) for r in rows]), abs=1e-4
    )


@pytest.mark.slow
def test_training_batches_augmented_validation_plain(trained):
    _, made, _ = trained
    train_ds, val_ds = made
    assert train_ds.augment is not None and train_ds.shuffle
    assert val_ds.augment is None and not val_ds.shuffle
    assert len(train_ds.images) == 8 and len(val_ds.images) == 2
    # advanced once per epoch (Keras also ends a pseudo-epoch after its build pass)
    assert train_ds.epoch in (2, 3)


@pytest.mark.slow
def test_best_keras_holds_the_best_checkpoint(trained):
    import keras

    from segcore.models import build

    run, *_ = trained
    model = keras.saving.load_model(run / "best.keras", compile=False)
    assert model.input_shape[-1] == 3
    ref = build("unet", channels=3, depth=2, base_filters=4)
    with np.load(run / "checkpoint" / "best.weights.npz") as best:
        ref.set_weights([best[f"w{i}"] for i in range(len(best.files))])
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0), atol=1e-6)
    with zipfile.ZipFile(run / "best.keras") as z:  # saved without optimizer or compile state
        assert not json.loads(z.read("config.json")).get("compile_config")
        with h5py.File(io.BytesIO(z.read("model.weights.h5"))) as weights:
            assert "optimizer" not in weights


@pytest.mark.slow
def test_out_folder_holding_a_run_is_refused(trained, tiny_dataset_dir: Path, capsys):
    run, *_ = trained
    before = (run / "split.json").read_text()
    assert main(train_args(tiny_dataset_dir, run)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {run}: already holds a run; use --resume {run}"), err
    assert (run / "split.json").read_text() == before


@pytest.mark.slow
def test_init_from_starts_where_the_saved_model_ended(
    trained, tiny_dataset_dir: Path, tmp_path: Path, eager_steps
):
    import keras

    run = tmp_path / "tuned"
    extra = ("--lr", "1e-12", "--init-from", str(trained[0]))
    assert main(train_args(tiny_dataset_dir, run, 1, *extra)) == 0
    start = keras.saving.load_model(trained[0] / "best.keras", compile=False).get_weights()
    after = keras.saving.load_model(run / "best.keras", compile=False).get_weights()
    for a, b in zip(start, after, strict=True):  # a step of 1e-12 leaves them where they began
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert json.loads((run / "config.json").read_text())["init_from"] == str(trained[0])


@pytest.mark.slow
def test_init_from_refuses_a_missing_damaged_or_foreign_model(trained, tmp_path: Path):
    from segcore.models import build
    from segcore.training.loop import init_weights

    model = build("unet", channels=3, depth=2, base_filters=4)
    other = build("unet", channels=3, depth=2, base_filters=8)
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(b"PK\x03\x04 cut short")
    cases = {
        tmp_path / "absent.keras": "no such model",
        damaged: "not a readable Keras model",
        trained[0]: "another architecture or output",
    }
    for source, words in cases.items():
        target = other if source == trained[0] else model
        with pytest.raises(DataError) as info:
            init_weights(target, str(source))
        assert words in str(info.value) and "\n" not in str(info.value)
    assert init_weights(model, str(trained[0])) == trained[0] / "best.keras"
    with pytest.raises(DataError, match="no such model"):  # at parsing, before any data is read
        parse_args(["--init-from", str(tmp_path / "absent.keras")])


# --- resume -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_resume_extends_a_finished_run(trained, tmp_path: Path, capsys, eager_steps):
    run = tmp_path / "copy"
    shutil.copytree(trained[0], run)
    assert state(run)["epoch"] == 2 and optimizer_iterations(run) == 2 * STEPS_PER_EPOCH
    # without --epochs a finished run is only re-evaluated
    assert main(["--resume", str(run)]) == 0
    assert epochs_logged(run) == [1, 2]
    out = capsys.readouterr().out  # a 2-image test score comes with a word on its noise
    assert "test dice" in out and "note: a mean over 2 test images is noisy" in out
    assert main(["--resume", str(run), "--epochs=3"]) == 0  # either spelling
    assert epochs_logged(run) == [1, 2, 3]
    assert state(run)["epoch"] == 3
    assert optimizer_iterations(run) == 3 * STEPS_PER_EPOCH  # the optimizer carried on
    config = json.loads((run / "config.json").read_text())
    assert config["epochs"] == 3 and config["epochs_completed"] == 3
    assert (run / "best.keras").is_file() and (run / "test_metrics.json").is_file()


@pytest.mark.slow
def test_resume_refuses_settings_that_cannot_change(trained, tmp_path: Path, capsys, eager_steps):
    run = tmp_path / "copy"
    shutil.copytree(trained[0], run)
    for argv in (["--lr", "0.1"], ["--img-size=64"], ["--arch", "unetpp"]):
        assert main(["--resume", str(run), *argv]) == 2
        err = capsys.readouterr().err
        flag = argv[0].split("=")[0]
        assert err.startswith(f"error: {flag} cannot change on resume") and err.count("\n") == 1
    assert epochs_logged(run) == [1, 2]
    # what may change on resume is honoured: patience, time limit, epochs
    assert main(["--resume", str(run), "--patience", "7", "--time-limit", "5"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert (config["patience"], config["time_limit"], config["lr"]) == (7, 5.0, 1e-3)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "checkpoint/last-*.weights.h5",
        "checkpoint/best.weights.npz",
        "checkpoint/state.json",
        "split.json",
    ],
)
def test_resume_checks_what_it_loads(trained, tmp_path: Path, name: str, capsys):
    run = tmp_path / "copy"
    shutil.copytree(trained[0], run)
    damaged = next(run.glob(name))
    damaged.write_bytes(b"")  # what a kill during an in-place write left
    assert main(["--resume", str(run), "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {damaged}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.slow
def test_tensorflow_start_up_notices_stay_hidden(trained, tmp_path: Path):
    """TensorFlow's CUDA/oneDNN start-up lines do not reach the terminal (a fresh process, where
    TensorFlow is first imported, with TF_CPP_MIN_LOG_LEVEL unset): a resume whose split.json
    is gone fails after the import with its one line."""
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(trained[0] / "config.json", run / "config.json")
    env = subprocess_env(KERAS_BACKEND="tensorflow")
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    proc = subprocess.run(
        [sys.executable, "-m", "segcore.train", "--resume", str(run)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: {run / 'split.json'}: unreadable (FileNotFoundError)"
    ]


class PowerCut(Exception):
    """Raised by a callback to simulate a run killed mid-training."""


@pytest.mark.slow
def test_interrupted_run_resumes(tiny_dataset_dir: Path, tmp_path: Path, eager_steps):
    from segcore.training.callbacks import ResumeCheckpoint

    save = ResumeCheckpoint.on_epoch_end

    def cut_in_epoch_2(self, epoch, logs=None):
        if epoch == 1:  # history.csv already has epoch 2, its checkpoint is never written
            raise PowerCut
        save(self, epoch, logs)

    run = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp, pytest.raises(PowerCut):
        mp.setattr(ResumeCheckpoint, "on_epoch_end", cut_in_epoch_2)
        main(train_args(tiny_dataset_dir, run, 3))
    assert state(run)["epoch"] == 1
    assert not (run / "best.keras").exists() and not (run / "test_metrics.json").exists()

    assert main(["--resume", str(run), "--epochs", "3"]) == 0
    assert epochs_logged(run) == [1, 2, 3]  # the lost epoch 2 is redone, not logged twice
    assert state(run)["epoch"] == 3
    assert optimizer_iterations(run) == 3 * STEPS_PER_EPOCH
    assert json.loads((run / "config.json").read_text())["epochs_completed"] == 3
    assert (run / "best.keras").is_file() and (run / "test_metrics.json").is_file()


@pytest.mark.slow
def test_grayscale_run_stopped_by_time_limit_then_resumed(
    tiny_dataset_dir: Path, tmp_path: Path, eager_steps
):
    import keras

    run = tmp_path / "gray"
    assert (
        main(train_args(tiny_dataset_dir, run, 4, "--channels", "1", "--time-limit", "1e-4")) == 0
    )
    assert epochs_logged(run) == [1]  # the time budget ended the run after one epoch
    config = json.loads((run / "config.json").read_text())
    assert config["channels"] == 1 and config["arch_kwargs"]["channels"] == 1
    model = keras.saving.load_model(run / "best.keras", compile=False)
    assert model.input_shape[-1] == 1
    assert json.loads((run / "test_metrics.json").read_text())["n_images"] == 2

    # the saved budget applies again to the resumed session, which goes on from epoch 2
    assert main(["--resume", str(run), "--epochs", "4"]) == 0
    logged = epochs_logged(run)
    assert logged[0] == 1 and logged == list(range(1, len(logged) + 1)) and len(logged) >= 2
    assert state(run)["epoch"] == len(logged)
