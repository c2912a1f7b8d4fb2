"""``segcore.commands.train`` on other back ends and strategies: MirroredStrategy (TensorFlow),
Keras' DataParallel (JAX) over two host devices and over two processes, and a JAX run's model
loaded under TensorFlow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from train_runs import (
    STEPS_PER_EPOCH,
    epochs_logged,
    h5_arrays,
    last_weights,
    optimizer_iterations,
    run_script,
    subprocess_env,
    train_args,
)

from segcore.errors import DataError

# --- other back ends and strategies -------------------------------------------------------------

# XLA's CPU compiler at full optimisation takes most of a short run
MIRRORED = """
import sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import segcore.commands.train

code = segcore.commands.train.main(sys.argv[1:] + ["--distribute", "mirrored"])
print("replicas", tf.distribute.MirroredStrategy().num_replicas_in_sync)
sys.exit(code)
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_cpu_devices(tiny_dataset_dir: Path, tmp_path: Path):
    run = tmp_path / "mirrored"
    args = train_args(tiny_dataset_dir, run)
    proc = run_script(MIRRORED, args, tmp_path, subprocess_env(KERAS_BACKEND="tensorflow"), 300)
    assert "replicas 2" in proc.stdout
    assert "distributing over 2 devices in 1 process(es)" in proc.stderr
    assert epochs_logged(run) == [1, 2]
    config = json.loads((run / "config.json").read_text())
    assert (config["distribute"], config["devices"], config["processes"]) == ("mirrored", 2, 1)
    for name in ("best.keras", "test_metrics.json", "test_per_image.csv", "split.json"):
        assert (run / name).is_file(), name


# --- Keras DataParallel (JAX) -------------------------------------------------------------------

DATA_PARALLEL_TOLERANCE = 1e-5  # measured: 4.5e-7 max abs difference after 4 steps (weights <= 4)

TWO_DEVICE_RUNS = """
import sys
import jax
import keras
import numpy as np
import segcore.commands.train

assert jax.local_device_count() == 2 and keras.backend.backend() == "jax"
argv = sys.argv[1:]
assert segcore.commands.train.main(argv + ["--out", "two", "--distribute", "data-parallel"]) == 0
assert segcore.commands.train.main(argv + ["--out", "one"]) == 0
assert "tensorflow" not in sys.modules  # Keras under JAX would load it to seed it and to save
model = keras.saving.load_model("one/best.keras", compile=False)
x = np.linspace(0, 1, 2 * 32 * 32 * 3, dtype="float32").reshape(2, 32, 32, 3)
np.save("one/jax_prediction.npy", np.asarray(model.predict(x, verbose=0)))
"""


@pytest.mark.slow
def test_data_parallel_on_two_devices_matches_one_device(tiny_dataset_dir: Path, tmp_path: Path):
    """The same global batches (no augmentation) give the same weights and optimizer state; and
    the one-device JAX run's best.keras loads under TensorFlow and predicts what JAX predicted."""
    pytest.importorskip("jax")  # not in requirements.txt: the JAX backend is optional
    import keras

    args = train_args(tiny_dataset_dir, tmp_path, 2, "--arch", "unet_bn", "--no-augment")
    args = args[: args.index("--out")]  # each run gets its own --out
    env = subprocess_env(KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = run_script(TWO_DEVICE_RUNS, args, tmp_path, env, 400)
    assert "distributing over 2 devices in 1 process(es); global batch 4" in proc.stderr
    assert json.loads((tmp_path / "two" / "config.json").read_text())["devices"] == 2
    one = h5_arrays(last_weights(tmp_path / "one"))
    two = h5_arrays(last_weights(tmp_path / "two"))
    assert sorted(one) == sorted(two) and any(k.startswith("optimizer/") for k in one)
    assert int(two["optimizer/vars/0"]) == 2 * STEPS_PER_EPOCH
    for name in one:
        np.testing.assert_allclose(two[name], one[name], atol=DATA_PARALLEL_TOLERANCE, err_msg=name)
    assert epochs_logged(tmp_path / "one") == epochs_logged(tmp_path / "two") == [1, 2]

    config = json.loads((tmp_path / "one" / "config.json").read_text())
    assert config["backend"] == "jax" and "jax" in config["library_versions"]
    if keras.backend.backend() != "tensorflow":
        pytest.skip("this test process does not run the TensorFlow backend")
    model = keras.saving.load_model(tmp_path / "one" / "best.keras", compile=False)
    x = np.linspace(0, 1, 2 * 32 * 32 * 3, dtype="float32").reshape(2, 32, 32, 3)
    expected = np.load(tmp_path / "one" / "jax_prediction.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_two_processes(args: list[str], cwd: Path) -> list[str]:
    """Run ``segcore.commands.train`` as processes 0 and 1 of a 2-process job on 127.0.0.1; their stdout."""
    port = free_port()
    procs = []
    for process_id in (0, 1):
        env = subprocess_env(
            KERAS_BACKEND="jax",
            KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
            KERAS_DISTRIBUTION_NUM_PROCESSES="2",
            KERAS_DISTRIBUTION_PROCESS_ID=str(process_id),
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "segcore.train", *args],
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


@pytest.mark.slow
def test_two_processes_leave_one_run_folder_and_resume(tiny_dataset_dir: Path, tmp_path: Path):
    """Two processes on 127.0.0.1 train in lock-step; process 0 alone writes (default --out)."""
    pytest.importorskip("jax")
    args = train_args(tiny_dataset_dir, tmp_path, 1, "--distribute", "data-parallel")
    args = args[: args.index("--out")] + args[args.index("--out") + 2 :]
    stdout = run_two_processes(args, tmp_path)
    assert "run folder:" in stdout[0] and "run folder:" not in stdout[1]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1  # the time-stamped default name would differ between processes
    run = runs[0]
    config = json.loads((run / "config.json").read_text())
    assert (config["distribute"], config["devices"], config["processes"]) == ("data-parallel", 2, 2)
    assert epochs_logged(run) == [1]
    assert optimizer_iterations(run) == STEPS_PER_EPOCH  # global batches of 4, not 2 x 2
    for name in ("best.keras", "test_metrics.json", "split.json"):
        assert (run / name).is_file(), name
    assert not list(run.glob(".tmp-*"))

    run_two_processes(
        ["--resume", str(run), "--epochs", "2", "--distribute", "data-parallel"], tmp_path
    )
    assert list((tmp_path / "runs").iterdir()) == [run]
    assert epochs_logged(run) == [1, 2]
    assert optimizer_iterations(run) == 2 * STEPS_PER_EPOCH


@pytest.mark.parametrize(
    ("strategy", "backend", "alternative"),
    [("mirrored", "jax", "data-parallel"), ("data-parallel", "tensorflow", "mirrored")],
)
def test_a_strategy_the_backend_cannot_run_names_the_alternative(strategy, backend, alternative):
    from segcore.training.distribute import check_backend

    with pytest.MonkeyPatch.context() as mp:
        import keras

        mp.setattr(keras.backend, "backend", lambda: backend)
        with pytest.raises(DataError) as info:
            check_backend(strategy)
    message = str(info.value)
    assert f"--distribute {strategy} needs" in message
    assert f"--distribute {alternative}" in message and "\n" not in message


def test_sharded_batches_are_slices_of_the_global_batch():
    from segcore.training.feeders import CachedBatches

    images = np.arange(10 * 4 * 4 * 3, dtype=np.uint8).reshape(10, 4, 4, 3)
    masks = np.zeros((10, 4, 4, 1), dtype=np.uint8)
    whole = CachedBatches(images, masks, 4, shuffle=True, seed=1, drop_remainder=True)
    parts = [
        CachedBatches(images, masks, 4, shuffle=True, seed=1, drop_remainder=True, shard=(k, 2))
        for k in (0, 1)
    ]
    assert len(whole) == len(parts[0]) == len(parts[1]) == 2
    for i in range(len(whole)):
        joined = np.concatenate([parts[0][i][0], parts[1][i][0]])
        np.testing.assert_array_equal(joined, whole[i][0])
    with pytest.raises(ValueError, match="does not split"):
        CachedBatches(images, masks, 3, shard=(0, 2))
