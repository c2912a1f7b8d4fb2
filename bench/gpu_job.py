"""One prepared GPU job: every planned training run in ONE device call, weights back in few files.

Steps (the device machine has JAX and no TensorFlow; see ``../shared/GPU.md``):

1. Here, once: ``../shared/tools/gpu-pack`` (Keras wheels into ``.gpu/keras``) and
   ``python -m bench.gpu_job pack --isic ../shared/data/isic2017-256 --dsb ../shared/data/dsb2018``
   (``.gpu/data``, git-ignored, checked under `MAX_PACK_MB`: the ISIC 256x256 pairs as they are;
   the DSB images at native scale as JPEG quality 95 with one 16-bit label PNG each, names and
   order kept, so the seeded split is the shipped models' split).
2. On the device, one ``run`` call with ``timeout_s`` 570 and ``carry`` [".gpu/keras", ".gpu/data"]::

       python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu/keras/*.whl && export PYTHONPATH=$PWD:/tmp/site KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false; python3 -m bench.gpu_job train --data .gpu/data --out $OUT

   It measures training throughput first, alone on the GPU (classic U-Net, 256x256, bf16,
   batch 32, `bench.train`: end to end, model only and input pipeline only, so it says where the
   time goes), then trains the `PLAN` at once on the one GPU, each run stopped by
   ``--time-limit``, and writes under ``$OUT``: ``runs.tar.NNN`` (the run folders with their
   weights as float16, in parts of at most 15 MiB), ``throughput.json``, ``timing.json`` (seconds
   per phase) and ``train.log``: at most 8 files.
3. Here: ``python -m bench.gpu_job unpack FILES_AT --runs runs/gpu23`` rebuilds each run
   folder's ``best.keras``; then ``python -m export --ensemble runs/gpu23/isic_improved_unet-seed1
   ... --precision fp16``, ``python -m segcore.instance_eval RUN --tune`` and ``python -m export``
   for the nuclei run, and ``python -m bench.card_scores`` score them on CPU.

``python -m bench.gpu_job smoke`` (or ``--smoke``) runs steps 1-3 on the CPU at toy size, from the
bundled samples, in a temporary folder: the test that the job works before a GPU is at hand.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
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

from segcore.atomic import write_text
from segcore.data import find_samples
from segcore.data.layouts import load_labels

ROOT = Path(__file__).resolve().parents[1]
MAX_PACK_MB = 38.0
PART_BYTES = 15 * 2**20
JPEG_QUALITY = 95
#: Minutes each planned run may train (--time-limit): with start-up, the throughput measurement
#: and evaluation the call stays within 9 minutes.
TRAIN_MINUTES = 5.5


@dataclass(frozen=True)
class Run:
    """One planned training run: its folder name, data set, and flags (full size and toy size)."""

    name: str
    dataset: str
    full: str
    toy: str


#: The planned runs. Lesion ensemble members (three seeds of the shipped lesion recipe) and the
#: nuclei instance model at base 24 on native 256-pixel crops, without and with HED stain
#: jitter (the H&E measure to choose by validation).
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
)
THROUGHPUT = "--arch unet --img-size 256 --batch-size 32 --mixed-precision --images 2048 --epochs 3"
#: Toy sizes for smoke: the same runs, tiny and one epoch long, on the CPU.
SMOKE_FLAGS = (
    "--base-filters 4 --depth 2 --img-size 32 --epochs 1 --batch-size 4 --workers 1 "
    "--split 0.5,0.25,0.25"
)
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


def run_commands(data: Path, runs: Path, minutes: float, smoke: bool) -> list[list[str]]:
    """The ``python -m segcore.train`` command of every planned run."""
    commands = []
    for run in PLAN:
        argv = (f"{run.toy} {SMOKE_FLAGS}" if smoke else run.full).split()
        argv += ["--data", str(data / run.dataset), "--out", str(runs / run.name)]
        commands.append(
            [sys.executable, "-m", "segcore.train", *argv, "--time-limit", str(minutes)]
        )
    return commands
