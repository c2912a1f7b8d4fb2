"""Every U-Net variant on both data sets under one fixed CPU budget: ``python -m bench.architectures``.

Trains unet, unet_bn, improved_unet, unetpp and attention_unet on ISIC 2017 lesions and DSB 2018
nuclei (``--data-root``: ``isic2017-256/`` and ``dsb2018/``) with one budget for every run (the
same seeded split, image size, epochs, optimiser, schedule, loss, augmentation and width, see
`CPU_BUDGET`), one run at a time, each through ``python -m segcore.train`` (run folders under
``--work``; an interrupted run continues with ``--resume``, a finished one is not trained again).
Each run is then exported (``python -m export``: int8 where it keeps the test Dice within
export's tolerance of fp32, else fp16), its test images scored one by one through the engine,
and its folder written under ``--out`` (`segcore.scoring.variant_runs`: model.onnx, model.json with the
budget, history.csv, test_per_image.csv), the card last. Re-running skips what is done.

- ``--check``: re-verifies that every folder's files agree (exit 1 naming each disagreement).
- ``--measure``: times training images/s of each variant at the budget's size (``bench.train``,
  random images) into ``bench/results/variants-train-speed-<host>.json`` and prints the
  expected duration of the whole comparison.
- ``--shipped``: per-image test scores of every shipped model (``models/<name>.test_per_image.csv``)
  on the test split its card re-creates over ``--data-root``, refused unless their means are
  the card's test scores; the Variants page shows the shipped models' intervals from them.
- ``--time``: batch-1 CPU latency of every exported variant, all interleaved in one run, into
  ``bench/results/variants-cpu-<host>.json`` (the Variants page reads it).
- ``--budget toy``: the pipeline at toy size (`TOY_BUDGET`: 64 px, 3 epochs, the first 80
  images of each data set), cards marked ``toy``; give it its own ``--out`` and ``--work`` (e.g.
  under ``runs/``), never ``models/variants``.
- ``--budget gpu``: files the runs `bench.gpu_job` trained on a GPU at the seeds' full recipe
  (`GPU_BUDGET`), unpacked into ``--work``; nothing is retrained.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.records import default_path, write_records
from segcore import cli
from segcore.atomic import write_json, write_text
from segcore.errors import DataError
from segcore.models import ARCHITECTURES
from segcore.paths import REPO_ROOT, models_dir
from segcore.scoring.variant_runs import (
    CARD_FILE,
    HISTORY_FILE,
    MIN_EPOCHS,
    MODEL_FILE,
    PER_IMAGE_FILE,
    SHIPPED_PER_IMAGE,
    check_variant,
    find_variants,
    per_image_text,
)

#: Data set -> its folder under ``--data-root``.
DATASETS = {"isic": "isic2017-256", "dsb": "dsb2018"}
ARCHS = tuple(ARCHITECTURES)
DEFAULT_OUT = Path("models") / "variants"
DEFAULT_WORK = Path("runs") / "variants"
DEFAULT_DATA_ROOT = Path("../shared/data")
#: The most the checkout may weigh with the comparison's files in it (``--check``).
CHECKOUT_MB = 60.0
#: Repeats of the interleaved latency timing (``--time``).
TIME_REPEATS = 30


@dataclass(frozen=True)
class Budget:
    """What every run of one comparison shares. ``images`` > 0 keeps only the first N pairs
    (toy runs); ``toy`` marks the cards as a toy/smoke run."""

    img_size: int
    epochs: int
    batch_size: int = 16
    lr: float = 1e-3
    schedule: str = "cosine"
    loss: str = "bce_dice"
    split: str = "0.8,0.1,0.1"
    seed: int = 42
    base_filters: int = 16
    augment: bool = True
    precision: str = "fp32"
    images: int = 0
    toy: bool = False

    def train_flags(self) -> list[str]:
        """The ``segcore.commands.train`` flags of this budget."""
        flags = [
            *("--img-size", str(self.img_size), "--epochs", str(self.epochs)),
            *("--batch-size", str(self.batch_size), "--lr", str(self.lr)),
            *("--schedule", self.schedule, "--loss", self.loss, "--split", self.split),
            *("--seed", str(self.seed), "--base-filters", str(self.base_filters)),
        ]
        flags += [] if self.augment else ["--no-augment"]
        return flags + (["--mixed-precision"] if self.precision == "bf16" else [])

    def describe(self) -> str:
        """One line for the page and the log."""
        images = f"the first {self.images} images, " if self.images else ""
        return (
            f"{'TOY RUN: ' if self.toy else ''}{images}{self.img_size}x{self.img_size} px, "
            f"{self.epochs} epochs, batch {self.batch_size}, Adam {self.lr:g} with {self.schedule} "
            f"decay, {self.loss.replace('_', '+')} loss, flips/rot90/scale-crop/brightness "
            f"augmentation{'' if self.augment else ' off'}, split {self.split} seed {self.seed}, "
            f"base width {self.base_filters}, {self.precision}, CPU"
        )


#: The comparison on this project's CPU (2 cores): every variant at base width 16 (the width of
#: the project's GPU comparison and of the shipped models; the registry's 32-64 defaults would
#: cost 4-16x the time), 64 px, 10 epochs: ten runs in 2.5 h on the 2-core CPU (measured
#: on 2026-12-06; 128 px for 12 epochs, first planned, measured 6.3 h and would not fit one
#: session). See ``--measure`` for the expected duration on another machine.
CPU_BUDGET = Budget(img_size=64, epochs=10)
#: The seeds' full recipe, for a GPU (`bench.gpu_job` ``--plan variants`` trains it).
GPU_BUDGET = Budget(img_size=256, epochs=80, precision="bf16")
#: The pipeline at toy size: proves the files and the page, compares nothing.
TOY_BUDGET = Budget(img_size=64, epochs=3, images=80, toy=True)
BUDGETS = {"cpu": CPU_BUDGET, "gpu": GPU_BUDGET, "toy": TOY_BUDGET}


def plan(only: list[str] | None) -> list[tuple[str, str]]:
    """The (dataset, arch) runs to do, in order; ``only`` entries are ``DATASET/ARCH`` (either
    part may be ``*``). Raises DataError naming a bad entry."""
    runs = [(d, a) for d in DATASETS for a in ARCHS]
    if not only:
        return runs
    chosen = []
    for entry in only:
        dataset, _, arch = entry.partition("/")
        if dataset not in (*DATASETS, "*") or arch not in (*ARCHS, "*"):
            raise DataError(
                f"--only {entry!r}: give DATASET/ARCH with DATASET one of {', '.join(DATASETS)} "
                f"and ARCH one of {', '.join(ARCHS)} (either may be *)"
            )
        chosen += [(d, a) for d, a in runs if dataset in (d, "*") and arch in (a, "*")]
    return [run for run in runs if run in chosen]


def subset(src: Path, dst: Path, count: int) -> Path:
    """A folder of links to the first ``count`` image/mask pairs of ``src`` in its own layout
    (re-made each time); returns it."""
    from segcore.data import find_samples

    fmt, samples = find_samples(src)
    if dst.exists():
        shutil.rmtree(dst)
    for sample in samples[:count]:
        if fmt == "dsb":  # stage1_train/<id>/{images,masks}: link the sample's folder
            folder = sample.image.parent.parent
            target = dst / folder.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(folder.resolve(), target_is_directory=True)
            continue
        for path in (sample.image, *sample.masks):
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
    return dst


def train_command(data: Path, arch: str, budget: Budget, run: Path) -> list[str] | None:
    """The ``segcore.commands.train`` command that brings ``run`` to its end: a new run, ``--resume``
    after a finished epoch, or None when the run is complete (test scores written)."""
    if (run / "test_metrics.json").is_file():
        return None
    train = [sys.executable, "-m", "segcore.train"]
    if (run / "checkpoint" / "state.json").is_file():
        return [*train, "--resume", str(run)]
    if run.exists():  # started but no epoch finished: nothing to keep
        shutil.rmtree(run)
    return [*train, "--data", str(data), "--arch", arch, *budget.train_flags(), "--out", str(run)]


def _run(command: list[str], log: Path) -> subprocess.CompletedProcess:
    """Run ``command`` with its output appended to ``log``; the last lines come back."""
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(command)}\n")
        f.flush()
        proc = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, check=False)
    tail = log.read_text().splitlines()[-5:]
    return subprocess.CompletedProcess(command, proc.returncode, "\n".join(tail), "")


def export_model(run: Path, stage: Path, name: str, log: Path) -> str:
    """``python -m export`` int8, else fp16, into ``stage``; returns how the precision was
    chosen. Raises DataError when neither export works."""
    export = [sys.executable, "-m", "export", str(run), "--out", str(stage), "--name", name]
    proc = _run([*export, "--precision", "int8", "--force"], log)
    if proc.returncode == 0:
        return "int8: kept the test Dice within export's tolerance of fp32"
    refusal = next((line for line in proc.stdout.splitlines() if "loses" in line), "")
    if not refusal:
        raise DataError(f"{run}: the export failed (see {log}): {proc.stdout.splitlines()[-1:]}")
    proc = _run([*export, "--precision", "fp16", "--force"], log)
    if proc.returncode != 0:
        raise DataError(f"{run}: the fp16 export failed too (see {log})")
    return f"fp16: int8 was refused ({refusal.removeprefix('error: ').strip()})"


def variant_block(run: Path, budget: Budget, choice: str, model: Path) -> dict:
    """The card's ``variant`` block: budget, data, speeds, GFLOPs, how the precision was chosen."""
    import onnx

    from export.graph import count_macs

    config = json.loads((run / "config.json").read_text())
    data = Path(json.loads((run / "split.json").read_text())["root"])
    if data.is_absolute() and data.is_relative_to(REPO_ROOT.parent):
        data = Path(os.path.relpath(data, REPO_ROOT))  # the same in every checkout beside shared/
    epochs = config.get("epochs_completed", config["epochs"])
    seconds = config.get("train_seconds") or 0.0
    size, channels = config["img_size"], config["channels"]
    macs = count_macs(onnx.load(model), (1, size, size, channels))
    return {
        "budget": asdict(budget),
        "budget_text": budget.describe(),
        "toy": budget.toy,
        "data": str(data),
        "run_dir": str(run),
        "n_train": config["n_train"],
        "train_seconds": seconds,
        "train_img_s": round(config["n_train"] * epochs / seconds, 2) if seconds else None,
        "train_device": config.get("device"),
        "gflops_per_image": round(2 * macs / 1e9, 3),
        "precision_choice": choice,
        "command": "python -m bench.architectures"
        + next((f" --budget {k}" for k, b in BUDGETS.items() if b == budget and k != "cpu"), ""),
    }


def export_variant(run: Path, folder: Path, budget: Budget, log: Path) -> dict:
    """Export ``run``, score its test images one by one and write ``folder`` (the card last,
    atomically); returns the card. Raises DataError when the per-image means miss the card's."""
    from export.verify import image_scores
    from segcore.data import read_split
    from segcore.inference.engine import Engine

    name = f"{folder.parent.name}_{folder.name}_variant"
    stage = folder.parent / f".stage-{folder.name}"
    if stage.exists():
        shutil.rmtree(stage)
    choice = export_model(run, stage, name, log)
    engine = Engine(stage / f"{name}.onnx")
    scores = image_scores(engine, read_split(run / "split.json")["test"], engine.postprocess)
    card = json.loads((stage / f"{name}.json").read_text())
    text = per_image_text(scores.names, scores.post)
    mean = sum(r["dice"] for r in scores.post) / max(1, len(scores.post))
    if abs(mean - card["test_metrics"]["dice"]) > 1e-6:
        raise DataError(f"{run}: per-image Dice mean {mean:.6f}, export's {card['test_metrics']}")
    card["variant"] = variant_block(run, budget, choice, stage / f"{name}.onnx")
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / CARD_FILE).exists():
        (folder / CARD_FILE).unlink()  # the folder is incomplete until the new card lands
    os.replace(stage / f"{name}.onnx", folder / MODEL_FILE)
    shutil.copyfile(run / "history.csv", folder / f".{HISTORY_FILE}.tmp")
    os.replace(folder / f".{HISTORY_FILE}.tmp", folder / HISTORY_FILE)
    write_text(folder / PER_IMAGE_FILE, text)
    write_json(folder / CARD_FILE, card)
    shutil.rmtree(stage)
    return card


def is_current(folder: Path, run: Path) -> bool:
    """True when ``folder`` holds the export of the finished ``run`` (nothing to redo)."""
    card = folder / CARD_FILE
    if not card.is_file() or not (run / "test_metrics.json").is_file():
        return False
    block = json.loads(card.read_text()).get("variant") or {}
    return (
        block.get("run_dir") == str(run)
        and card.stat().st_mtime >= (run / "test_metrics.json").stat().st_mtime
    )


def compare(args: argparse.Namespace, budget: Budget) -> int:
    """Train, export and score every planned run in turn; returns the number that failed."""
    runs = plan(args.only)
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "architectures.log"
    print(f"budget: {budget.describe()}; log: {log}")
    failed = 0
    for dataset, arch in runs:
        run, folder = args.work / dataset / arch, args.out / dataset / arch
        start = time.perf_counter()
        src = args.data_root / DATASETS[dataset]
        command = train_command(src, arch, budget, run)
        if command is not None:
            if not src.is_dir():
                raise DataError(f"--data-root {args.data_root}: no {DATASETS[dataset]}/ folder")
            if budget.images and "--resume" not in command:
                data = subset(src, args.work / ".data" / dataset, budget.images)
                command[command.index("--data") + 1] = str(data)
            print(f"{dataset}/{arch}: training ({' '.join(command[3:5])} ...)", flush=True)
            if _run(command, log).returncode != 0:
                print(f"{dataset}/{arch}: training failed, see {log}", flush=True)
                failed += 1
                continue
        if not is_current(folder, run):
            try:
                card = export_variant(run, folder, budget, log)
            except DataError as exc:
                print(f"{dataset}/{arch}: {exc}", flush=True)
                failed += 1
                continue
        card = json.loads((folder / CARD_FILE).read_text())
        print(
            f"{dataset}/{arch}: test Dice {card['test_metrics']['dice']:.4f} "
            f"({card['precision']}, {card['onnx_bytes'] / 1e6:.2f} MB) in "
            f"{time.perf_counter() - start:.0f} s -> {folder}",
            flush=True,
        )
    if failed:
        print(f"{failed} of {len(runs)} runs failed; run the same command again to retry them")
    return failed


def checkout_mb(out: Path) -> float:
    """MB of the repository's tracked files plus every file under ``out`` not yet tracked."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=False
    ).stdout.decode()
    files = {(REPO_ROOT / name).resolve() for name in listed.split("\0") if name}
    files |= {p.resolve() for p in Path(out).rglob("*") if p.is_file()}
    return sum(p.stat().st_size for p in files if p.is_file()) / 1e6


def check(out: Path, min_epochs: int) -> int:
    """``--check``: every folder under ``out``, and the checkout's size with them in it; prints
    each disagreement, returns their count."""
    runs, problems = find_variants(out)
    size = checkout_mb(out)
    if size > CHECKOUT_MB:
        problems.append(f"{out}: the checkout would weigh {size:.1f} MB, over {CHECKOUT_MB:.0f}")
    stray = [p for p in sorted(out.glob("*/*")) if p.is_dir() and not p.name.startswith(".")]
    problems += [f"{p}: no {CARD_FILE}" for p in stray if not (p / CARD_FILE).is_file()]
    for run in runs:
        problems += check_variant(run.folder, min_epochs)
    for problem in problems:
        print(problem)
    print(f"{out}: {len(runs)} runs checked, {len(problems)} disagreements; checkout {size:.1f} MB")
    return len(problems)


def measure(budget: Budget, data_root: Path, out: Path) -> list[dict]:
    """Training images/s of every variant at ``budget``'s size (``bench.train``, random data,
    niced), written to ``out``, with the expected duration of every planned run."""
    from segcore.data import find_samples
    from segcore.data.split import parse_fractions

    tmp = out.with_suffix(".raw.json")
    tmp.unlink(missing_ok=True)
    for arch in ARCHS:
        subprocess.run(
            [sys.executable, "-m", "bench.train", "--arch", arch, "--base-filters",
             str(budget.base_filters), "--img-size", str(budget.img_size), "--batch-size",
             str(budget.batch_size), "--images", "48", "--epochs", "2", "--out", str(tmp)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    speeds = {r["arch"]: r for r in json.loads(tmp.read_text())}
    tmp.unlink()
    train_share = parse_fractions(budget.split)[0]
    records = []
    for dataset, folder in DATASETS.items():
        n = len(find_samples(data_root / folder)[1]) if (data_root / folder).is_dir() else 0
        n_train = round(n * train_share)
        for arch in ARCHS:
            img_s = speeds[arch]["train_img_s"]
            records.append(
                {
                    "dataset": dataset,
                    "arch": arch,
                    "params": speeds[arch]["params"],
                    "train_img_s": img_s,
                    "n_train": n_train,
                    "expected_train_minutes": round(n_train * budget.epochs / img_s / 60, 1),
                    "budget": budget.describe(),
                    "load_average_1min": os.getloadavg()[0],
                    "date": speeds[arch]["date"],
                }
            )
    write_records(out, records)
    return records


def shipped_scores(models: Path, data_root: Path) -> int:
    """``--shipped``: write each shipped model's per-image test scores beside it; returns the
    number of models whose scores could not be made or disagree with their card."""
    from export import ExportError
    from export.run_folder import shipped_split
    from export.verify import image_scores
    from segcore.app.model_choice import list_models
    from segcore.inference.engine import Engine

    entries, problems = list_models(models)
    for entry in entries:
        names = [s["name"] for s in entry.card.raw.get("sources") or []] or [entry.family]
        src = [data_root / DATASETS.get(name, name) for name in names]  # every source it trained on
        try:
            split = shipped_split(entry.card.raw, src if len(src) > 1 else src[0])
        except ExportError as exc:
            problems.append(f"{entry.name}: {exc}")
            continue
        engine = Engine(entry.path)
        scores = image_scores(engine, split["test"], engine.postprocess)
        metrics = entry.card.test_metrics
        gaps = {
            name: abs(sum(r[name] for r in scores.post) / len(scores.post) - metrics[name])
            for name in ("dice", "iou")
            if scores.post and isinstance(metrics.get(name), int | float)
        }
        if len(scores.post) != metrics.get("n_images") or any(g > 1e-4 for g in gaps.values()):
            problems.append(
                f"{entry.name}: {len(scores.post)} test images scored, mean gaps {gaps} against "
                f"the card's {metrics.get('n_images')} images; not written"
            )
            continue
        path = entry.path.with_name(entry.name + SHIPPED_PER_IMAGE)
        write_text(path, per_image_text(scores.names, scores.post))
        print(f"{path}: {len(scores.post)} test images, mean Dice {metrics['dice']:.4f}")
    for problem in problems:
        print(problem)
    return len(problems)


def time_models(out: Path, results: Path) -> list[dict]:
    """Batch-1 CPU latency of every exported variant under ``out``, interleaved in one run."""
    import numpy as np

    from bench.inference import interleaved, machine
    from segcore.inference.engine import Engine

    runs, _ = find_variants(out)
    rng = np.random.default_rng(0)
    calls = {}
    for run in runs:
        engine = Engine(run.model_path)
        size, channels = run.card.input_size, run.card.channels
        x = rng.random((1, size, size, channels), dtype=np.float32)
        calls[f"{run.dataset}/{run.arch}"] = lambda e=engine, x=x: e.probabilities(x)
    seconds = interleaved(calls, TIME_REPEATS)
    facts = machine() | {"load_average_1min": os.getloadavg()[0], "repeats": TIME_REPEATS}
    records = []
    for run in runs:
        t = seconds[f"{run.dataset}/{run.arch}"] * 1e3
        records.append(
            {
                "dataset": run.dataset,
                "arch": run.arch,
                "model": str(run.model_path),
                "precision": run.card.get("precision"),
                "input_size": run.card.input_size,
                "batch1_ms_median": round(float(np.median(t)), 2),
                "batch1_ms_p90": round(float(np.percentile(t, 90)), 2),
                **facts,
            }
        )
    write_records(results, records)
    return records


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = cli.parser("python -m bench.architectures", __doc__.split("\n")[0])
    p.add_argument(
        "--data-root", type=Path, default=DEFAULT_DATA_ROOT, help="holds isic2017-256/ and dsb2018/"
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the folder the app reads")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK, help="training run folders")
    p.add_argument(
        "--only", action="append", metavar="DATASET/ARCH", help="only these runs (repeatable)"
    )
    p.add_argument(
        "--epochs",
        type=cli.positive_int,
        help=f"override the budget's epochs ({CPU_BUDGET.epochs})",
    )
    p.add_argument(
        "--img-size",
        type=cli.positive_int,
        help=f"override the budget's image size ({CPU_BUDGET.img_size}; a multiple of 16)",
    )
    p.add_argument(
        "--budget",
        choices=list(BUDGETS),
        default="cpu",
        help="cpu: 64 px, 10 epochs; gpu: file bench.gpu_job's runs from --work; "
        "toy: 64 px, 3 epochs, the first 80 images (a smoke run)",
    )
    p.add_argument("--check", action="store_true", help="only verify the files under --out agree")
    p.add_argument("--min-epochs", type=cli.positive_int, default=MIN_EPOCHS, help="with --check")
    p.add_argument(
        "--measure", action="store_true", help="measure training img/s, expected duration"
    )
    p.add_argument("--time", action="store_true", help="time the exported variants (batch 1, CPU)")
    p.add_argument(
        "--shipped", action="store_true", help="per-image test scores of the shipped models"
    )
    p.add_argument(
        "--results",
        type=Path,
        help="results file of --measure / --time (default bench/results/variants-*-<host>.json)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 when everything asked for was done and agrees."""
    cli.setup_logging()
    args = parse_args(argv)

    def body() -> int:
        from segcore.inference.onnx_runner import quiet_onnxruntime_logs

        quiet_onnxruntime_logs()  # the CUDA provider's fallback notice on CPU-only machines
        budget = BUDGETS[args.budget]
        budget = replace(budget, epochs=args.epochs) if args.epochs else budget
        budget = replace(budget, img_size=args.img_size) if args.img_size else budget
        if args.check:
            return 1 if check(args.out, args.min_epochs) else 0
        if args.measure:
            results = args.results or default_path("variants-train-speed")
            records = measure(budget, args.data_root, results)
            for r in records:
                print(f"{r['dataset']}/{r['arch']}: {r['train_img_s']} img/s, {r['n_train']} "
                      f"training images, ~{r['expected_train_minutes']} min")  # fmt: skip
            total = sum(r["expected_train_minutes"] for r in records)
            print(f"all {len(records)} runs: ~{total / 60:.1f} h of training -> {results}")
            return 0
        if args.shipped:
            return 1 if shipped_scores(models_dir(), args.data_root) else 0
        if args.time:
            results = args.results or default_path("variants-cpu")
            for r in time_models(args.out, results):
                print(f"{r['dataset']}/{r['arch']}: {r['batch1_ms_median']} ms ({r['precision']})")
            print(f"-> {results}")
            return 0
        if budget.toy and args.out.resolve() == (REPO_ROOT / DEFAULT_OUT).resolve():
            raise DataError(
                "--budget toy: give an --out outside models/variants (toy runs are not kept)"
            )
        return 1 if compare(args, budget) else 0

    return cli.run_command(body)


if __name__ == "__main__":
    sys.exit(main())
