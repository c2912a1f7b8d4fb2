"""One prepared GPU job: every planned training run in ONE device call, weights back in few files.

Steps (the device machine has JAX and no TensorFlow; see ``../shared/GPU.md``):

1. Here, once: ``../shared/tools/gpu-pack`` (Keras wheels into ``.gpu/keras``) and
   ``python -m bench.gpu_job pack --isic ../shared/data/isic2017-256 --dsb ../shared/data/dsb2018``
   (``.gpu/data``, git-ignored, checked under `MAX_PACK_MB`: the ISIC 256x256 pairs as they are;
   the DSB images at native scale as JPEG quality 95 with one 16-bit label PNG each, names and
   order kept, so the seeded split is the shipped models' split).
2. On the device, one ``run`` call with ``timeout_s`` 560 and ``carry`` [".gpu/keras", ".gpu/data"]::

       python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/keras/*.whl && export PYTHONPATH=$PWD:/tmp/site KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false; python3 -m bench.gpu_job train --data .gpu/data --out $OUT

   It measures training throughput first, alone on the GPU (classic U-Net, 256x256, bf16,
   batch 32, `bench.train`: end to end, model only and input pipeline only, so it says where the
   time goes), then trains the `PLAN` at once on the one GPU, each run stopped by
   ``--time-limit`` (4.5 minutes of epochs; anything still going at `HARD_STOP_S` is stopped
   with its best epoch kept), and writes under ``$OUT``: ``runs.tar.NNN`` (the run folders with their
   weights as float16, in parts of at most 15 MiB), ``throughput.json``, ``timing.json`` (seconds
   per phase) and ``train.log``: at most 8 files.
3. Here: ``python -m bench.gpu_job unpack FILES_AT --runs runs/gpu23`` rebuilds each run
   folder's ``best.keras``; then ``python -m export --ensemble runs/gpu23/isic_improved_unet-seed1
   ... --precision fp16``, ``python -m segcore.commands.instance_eval RUN --tune`` and ``python -m export``
   for the nuclei run, and ``python -m bench.card_scores`` score them on CPU.

``python -m bench.gpu_job smoke`` (or ``--smoke``) runs steps 1-3 on the CPU at toy size, from the
bundled samples, in a temporary folder, with two runs at once (`SMOKE_PLAN`: the nuclei instance
run of the members plan and one ``<dataset>/<arch>`` run of the variants plan; the flags of the
others are checked by parsing them): the test that the job works before a GPU is at hand.

**The U-Net variant comparison** (``--plan variants``, `VARIANT_PLAN`): the ten runs of
``python -m bench.architectures`` (five variants x two data sets) at the full GPU recipe
(`GPU_RECIPE`: 256 px, 80 epochs, batch 16, cosine, bf16, base width 16), all at once in the same
one call (``... bench.gpu_job train --plan variants --data .gpu/data --out $OUT``; each run stops
at ``--minutes``, its best epoch kept, and its history says how far it got). Back here:
``python -m bench.gpu_job unpack FILES_AT --runs runs/gpu-variants`` gives
``runs/gpu-variants/<dataset>/<arch>/``, and ``python -m bench.architectures --budget gpu --work
runs/gpu-variants --data-root .gpu/data`` exports, scores and files them (nothing is retrained).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import bench.architectures as comparison
from segcore.atomic import write_text
from segcore.data import find_samples
from segcore.data.layouts import load_labels
from segcore.training.quiet import tensorflow_left_unloaded

ROOT = Path(__file__).resolve().parents[1]
MAX_PACK_MB = 38.0
PART_BYTES = 15 * 2**20
JPEG_QUALITY = 95
#: Minutes each planned run may train (--time-limit): with start-up, the throughput measurement
#: and evaluation the call stays within 9 minutes.
TRAIN_MINUTES = 4.5
#: Seconds from the job's start after which every run still going is stopped (its best epoch so
#: far is kept), so that collecting the results still ends inside the call's 9 minutes.
HARD_STOP_S = 480.0


@dataclass(frozen=True)
class Run:
    """One planned training run: its folder name, data set, and flags (full size and toy size)."""

    name: str
    dataset: str
    full: str
    toy: str


#: The planned runs. Lesion ensemble members (three seeds of the shipped lesion recipe) and the
#: nuclei instance model at base 24 on native 256-pixel crops: plain, with HED stain jitter and
#: with bright-field inversion (the H&E / bright-field measures to choose by validation).
PLAN = (
    Run(
        "isic_improved_unet",
        "isic",
        "--arch improved_unet --base-filters 16 --img-size 256 --epochs 100 --batch-size 16 "
        "--schedule cosine --mixed-precision --seeds 1,2,3 --parallel 3",
        "--arch improved_unet --seeds 1,2 --parallel 2",
    ),
    Run(
        "dsb_instance_unet_bn_b24",
        "dsb",
        "--target instance --arch unet_bn --base-filters 24 --img-size 256 --epochs 80 "
        "--batch-size 16 --schedule cosine --mixed-precision",
        "--target instance --arch unet_bn",
    ),
    Run(
        "dsb_instance_unet_bn_b24_hed",
        "dsb",
        "--target instance --arch unet_bn --base-filters 24 --img-size 256 --epochs 80 "
        "--batch-size 16 --schedule cosine --mixed-precision --stain-jitter 0.05",
        "--target instance --arch unet_bn --stain-jitter 0.05",
    ),
    Run(
        "dsb_instance_unet_bn_b24_inv",
        "dsb",
        "--target instance --arch unet_bn --base-filters 24 --img-size 256 --epochs 80 "
        "--batch-size 16 --schedule cosine --mixed-precision --invert-brightfield",
        "--target instance --arch unet_bn --invert-brightfield",
    ),
)
#: The seeds' full recipe of the variant comparison (`bench.architectures.GPU_BUDGET`).
GPU_RECIPE = " ".join(comparison.GPU_BUDGET.train_flags())
#: The ten runs of the variant comparison, as ``<dataset>/<arch>`` folders.
VARIANT_PLAN = tuple(
    Run(f"{dataset}/{arch}", dataset, f"--arch {arch} {GPU_RECIPE}", f"--arch {arch}")
    for dataset, arch in comparison.plan(None)
)
PLANS = {"members": PLAN, "variants": VARIANT_PLAN}
THROUGHPUT = "--arch unet --img-size 256 --batch-size 32 --mixed-precision --images 2048 --epochs 3"
#: Toy sizes for smoke: the same runs, tiny and one epoch long, on the CPU.
SMOKE_FLAGS = (
    "--base-filters 4 --depth 2 --img-size 32 --epochs 1 --batch-size 4 --workers 1 "
    "--split 0.5,0.25,0.25"
)
#: The runs the smoke trains at once: the nuclei instance run (its folder has every file `collect`
#: carries, decode.json included) and a variant run (it comes back in a ``<dataset>/<arch>`` folder).
SMOKE_PLAN = (PLAN[1], next(r for r in VARIANT_PLAN if r.name == "dsb/unet"))
SMOKE_THROUGHPUT = (
    "--arch unet --base-filters 4 --img-size 32 --batch-size 4 --images 16 --epochs 2"
)


def pack_dsb(src: Path, dst: Path) -> int:
    """Native-scale DSB images as JPEG plus one 16-bit label PNG each, in the plain layout."""
    _, samples = find_samples(src, "dsb")
    for sub in ("images", "masks"):
        (dst / sub).mkdir(parents=True, exist_ok=True)

    def one(sample) -> None:
        image, labels = load_labels(sample)
        Image.fromarray(image).save(
            dst / "images" / f"{sample.name}.jpg", quality=JPEG_QUALITY, subsampling=0
        )
        Image.fromarray(labels.astype(np.uint16)).save(dst / "masks" / f"{sample.name}.png")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, samples))
    (dst / "dataset.json").write_text(json.dumps({"dataset": "dsb", "source": str(src)}))
    return len(samples)


def pack(isic: Path, dsb: Path, out: Path) -> float:
    """Write the packed data sets into ``out`` (replaced); returns their size in MB."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(isic, out / "isic", ignore=shutil.ignore_patterns("*.md", "dataset.json"))
    pack_dsb(dsb, out / "dsb")
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6


def run_commands(
    data: Path, runs: Path, minutes: float, toy: bool, plan: tuple[Run, ...] = PLAN
) -> list[list[str]]:
    """The ``python -m segcore.train`` command of every run of ``plan``."""
    commands = []
    for run in plan:
        argv = (f"{run.toy} {SMOKE_FLAGS}" if toy else run.full).split()
        argv += ["--data", str(data / run.dataset), "--out", str(runs / run.name)]
        commands.append(
            [sys.executable, "-m", "segcore.train", *argv, "--time-limit", str(minutes)]
        )
    return commands


def _timed(timing: dict, phase: str, command: list[str], log, deadline: float) -> int:
    """Run ``command`` with its output appended to ``log``, stopped with its whole process group
    at ``deadline`` (a `time.perf_counter` value); records its seconds in ``timing``."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        code = proc.wait(timeout=max(1.0, deadline - start))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
        timing[f"{phase}_stopped_at_deadline"] = True
    timing[phase] = {"seconds": round(time.perf_counter() - start, 1), "exit": code}
    return code


def train(
    data: Path,
    out: Path,
    minutes: float,
    toy: bool = False,
    hard_stop_s: float = HARD_STOP_S,
    plan: tuple[Run, ...] = PLAN,
) -> int:
    """Measure throughput, train the runs of ``plan`` at once, write the results under ``out``;
    returns the number of runs that failed. Whatever runs at ``hard_stop_s`` is stopped."""
    deadline = time.perf_counter() + hard_stop_s
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix="gpu-job-runs-"))
    timing: dict = {"start": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(out / "train.log", "w") as log:
        bench = (SMOKE_THROUGHPUT if toy else THROUGHPUT).split()
        throughput = [sys.executable, "-m", "bench.train", *bench, "--out"]
        _timed(timing, "throughput", [*throughput, str(out / "throughput.json")], log, deadline)
        start = time.perf_counter()
        commands = run_commands(data, runs, minutes, toy, plan)
        with ThreadPoolExecutor(len(plan)) as pool:
            codes = list(
                pool.map(
                    lambda pair: _timed(timing, pair[0], pair[1], log, deadline),
                    zip([r.name for r in plan], commands, strict=True),
                )
            )
        timing["training_wall"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        parts = collect(runs, out)
        timing["collect"] = {"seconds": round(time.perf_counter() - start, 1), "parts": parts}
    write_text(out / "timing.json", json.dumps(timing, indent=1))
    shutil.rmtree(runs, ignore_errors=True)
    return sum(code != 0 for code in codes)


#: The small files of a run folder that travel back (the weights go as float16 arrays).
RUN_FILES = (
    "config.json",
    "split.json",
    "history.csv",
    "test_metrics.json",
    "test_per_image.csv",
    "decode.json",
)


def _slim(run: Path, staged: Path) -> None:
    """A run folder's small files, its model's architecture (JSON) and float16 weights."""
    import keras

    import segcore.models  # noqa: F401  (registers the custom layers)

    staged.mkdir(parents=True)
    for name in RUN_FILES:
        if (run / name).is_file():
            shutil.copyfile(run / name, staged / name)
    model = keras.saving.load_model(run / "best.keras", compile=False)
    (staged / "model.json").write_text(model.to_json())
    weights = {
        f"w{i:04d}": w.astype(np.float16) if w.dtype == np.float32 else w
        for i, w in enumerate(model.get_weights())
    }
    np.savez(staged / "weights16.npz", **weights)


def collect(runs: Path, out: Path) -> int:
    """Every finished run of ``runs`` slimmed, tarred and cut into ``out/runs.tar.NNN`` parts of
    at most `PART_BYTES`; returns the number of parts."""
    staging = Path(tempfile.mkdtemp(prefix="gpu-job-stage-"))
    with tensorflow_left_unloaded():  # under JAX, Keras' saving code would load it
        for run in sorted(p.parent for p in runs.rglob("best.keras")):
            _slim(run, staging / run.relative_to(runs))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(staging, arcname="runs")
    shutil.rmtree(staging)
    data = buffer.getvalue()
    parts = range(0, len(data), PART_BYTES)
    for n, start in enumerate(parts):
        (out / f"runs.tar.{n:03d}").write_bytes(data[start : start + PART_BYTES])
    return len(parts)


def unpack(results: Path, runs: Path, data: Path) -> list[Path]:
    """Rebuild the run folders (``best.keras`` from the float16 weights) under ``runs``, their
    split.json pointing at ``data/<dataset>``; returns the run folders."""
    import keras

    import segcore.models  # noqa: F401  (registers the custom layers)

    blob = b"".join(p.read_bytes() for p in sorted(results.glob("runs.tar.[0-9][0-9][0-9]")))
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(runs.parent / f".{runs.name}-unpack", filter="data")
    unpacked = runs.parent / f".{runs.name}-unpack" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    done = []
    with tensorflow_left_unloaded():  # under JAX, Keras' saving code would load it
        for staged in sorted(p.parent for p in unpacked.rglob("model.json")):
            run = runs / staged.relative_to(unpacked)
            ignore = shutil.ignore_patterns("model.json", "weights16.npz")
            shutil.copytree(staged, run, ignore=ignore)
            model = keras.models.model_from_json((staged / "model.json").read_text())
            with np.load(staged / "weights16.npz") as arrays:
                weights = [arrays[k] for k in sorted(arrays.files)]
            model.set_weights(
                [w.astype(np.float32) if w.dtype == np.float16 else w for w in weights]
            )
            model.save(run / "best.keras")
            _point_split(run, data)
            done.append(run)
    shutil.rmtree(unpacked.parent)
    return done


def _point_split(run: Path, data: Path) -> None:
    """Make the run's split.json name the local copy of its data set."""
    config = json.loads((run / "config.json").read_text())
    split = json.loads((run / "split.json").read_text())
    split["root"] = str((data / Path(config["data"]).name).resolve())
    write_text(run / "split.json", json.dumps(split, indent=1))


def smoke(out: Path, plan: tuple[Run, ...] = SMOKE_PLAN) -> int:
    """Steps 1-3 at toy size on the CPU from the bundled samples; returns the exit status."""
    data = out / "data"
    mb = pack(ROOT / "samples" / "isic", ROOT / "samples" / "dsb", data)
    print(f"packed {mb:.1f} MB")
    failed = train(data, out / "results", 1.0, toy=True, hard_stop_s=3600.0, plan=plan)
    runs = unpack(out / "results", out / "runs", data)
    print(f"{len(runs)} run folders rebuilt under {out / 'runs'}; {failed} runs failed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Command line: pack | train | unpack | smoke (see the module)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = ["smoke", *argv[1:]] if argv[:1] == ["--smoke"] else argv
    p = argparse.ArgumentParser(prog="python -m bench.gpu_job", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="step", required=True)
    s = sub.add_parser("pack", help="pack the data sets the job trains on (here)")
    s.add_argument("--isic", type=Path, required=True)
    s.add_argument("--dsb", type=Path, required=True)
    s.add_argument("--out", type=Path, default=ROOT / ".gpu" / "data")
    s = sub.add_parser("train", help="the device call: throughput, training, results")
    s.add_argument("--data", type=Path, default=ROOT / ".gpu" / "data")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--minutes", type=float, default=TRAIN_MINUTES, help="training time per run")
    s.add_argument("--plan", choices=list(PLANS), default="members", help="which runs to train")
    s = sub.add_parser("unpack", help="rebuild the run folders from the results (here)")
    s.add_argument("results", type=Path)
    s.add_argument("--runs", type=Path, required=True)
    s.add_argument("--data", type=Path, default=ROOT / ".gpu" / "data")
    s = sub.add_parser("smoke", help="everything at toy size on the CPU")
    s.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    s.add_argument(
        "--plan", choices=list(PLANS), help="which runs to train (default: SMOKE_PLAN, two runs)"
    )
    a = p.parse_args(argv)
    if a.step == "pack":
        mb = pack(a.isic, a.dsb, a.out)
        print(f"{a.out}: {mb:.1f} MB" + (f" (over {MAX_PACK_MB} MB)" if mb > MAX_PACK_MB else ""))
        return 0 if mb <= MAX_PACK_MB else 1
    if a.step == "train":
        return 1 if train(a.data, a.out, a.minutes, plan=PLANS[a.plan]) else 0
    if a.step == "unpack":
        for run in unpack(a.results, a.runs, a.data):
            print(run)
        return 0
    plan = PLANS[a.plan] if a.plan else SMOKE_PLAN
    return smoke(a.out or Path(tempfile.mkdtemp(prefix="gpu-job-smoke-")), plan)


if __name__ == "__main__":
    sys.exit(main())
