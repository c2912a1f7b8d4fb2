"""The README results table, generated from the model cards and the architecture comparisons.

``python -m export.table [--runs RUN_DIR ...] [--readme README.md]``:
- with ``--runs``, summarises those training runs (config.json + test_metrics.json) into
  ``bench/results/architectures.json`` — one record per architecture x dataset, shipped or not;
- then renders one markdown row per record, marks the shipped models (cards in ``models/``,
  whose test figures come from the exported ONNX at each image's original size, post-processed,
  with their precision and CPU batch-1 latency from ``bench/results/inference-*.json``), adds the
  variant comparison (``models/variants/<dataset>/<arch>/``, `segcore.scoring.variant_runs`: test Dice
  with its 95% bootstrap interval over the test images, CPU ms from
  ``bench/results/variants-cpu-*.json``; toy runs left out), the old GPU comparison records
  (``bench/results/architectures.json``) and the peer figures of ``docs/peers.json`` (each with
  its source), every row naming the file its figures come from, and writes the table into the
  README between the ``results:start`` / ``results:end`` markers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from segcore import cli
from segcore.paths import REPO_ROOT, bench_dir, variants_dir
from segcore.scoring.bootstrap import mean_interval
from segcore.scoring.variant_runs import find_variants, read_cpu_ms, read_per_image

RESULTS_DIR = bench_dir()
ARCH_RESULTS = RESULTS_DIR / "architectures.json"
START, END = "<!-- results:start -->", "<!-- results:end -->"
PEERS = REPO_ROOT / "docs" / "peers.json"


def summarize_run(run_dir: Path) -> dict:
    """One comparison record from a finished run folder."""
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "test_metrics.json").read_text())
    epochs = config.get("epochs_completed", config["epochs"])
    seconds = config.get("train_seconds") or float("nan")
    return {
        "run": run_dir.name,
        "dataset": config["dataset"],
        "arch": config["arch"],
        "base_filters": config["arch_kwargs"].get("base_filters"),
        "params": config["params"],
        "input_size": config["img_size"],
        "epochs": epochs,
        "best_epoch": config.get("best_epoch"),
        "val_dice": config.get("best_val_dice"),
        "train_seconds": seconds,
        "seconds_to_best": config.get("seconds_to_best"),
        "train_img_s": round(config["n_train"] * epochs / seconds, 1),
        "device": config["device"],
        "precision": "bf16" if config.get("mixed_precision") else "fp32",
        "test": {k: metrics[k]["mean"] for k in ("dice", "iou", "precision", "recall")},
        "n_test": metrics["n_images"],
    }


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def variant_records(root: Path, results_dir: Path = RESULTS_DIR) -> list[dict]:
    """One row record per comparison run under ``root`` (toy runs left out): the card's facts,
    the Dice interval over its per-image scores and its CPU ms, each with its file."""
    runs, _ = find_variants(root)
    cpu_ms, _ = read_cpu_ms(results_dir)
    out = []
    for run in runs:
        if run.toy:
            continue
        block, metrics = run.variant, run.card.test_metrics
        dice = mean_interval(read_per_image(run.per_image_path).scores["dice"])
        ms = cpu_ms.get((run.dataset, run.arch), {})
        budget = block.get("budget") or {}
        out.append(
            {
                "dataset": run.dataset,
                "arch": run.arch,
                "label": f"{run.arch} (base {budget.get('base_filters')}, CPU comparison, "
                f"{run.card.get('precision')} ONNX, post-processed)",
                "dice": f"{dice.mean:.4f} ({dice.low:.3f}-{dice.high:.3f})",
                "test": metrics,
                "params": run.card.get("params"),
                "input_size": run.card.input_size,
                "epochs": run.card.get("epochs"),
                "train_seconds": block.get("train_seconds") or float("nan"),
                "device": block.get("train_device") or "",
                "train_img_s": block.get("train_img_s"),
                "cpu_ms": ms.get("batch1_ms_median"),
                "source": _shown(run.folder / "model.json")
                + (f", {ms['file']}" if ms.get("file") else ""),
            }
        )
    return out


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _result_cells(
    source: dict, metrics: dict, model: str, dice: str, train_img_s: str, cpu_ms: str
) -> list[str]:
    """A model's row: dataset and training facts from ``source`` (a card or a run record),
    test scores from ``metrics``; the model label, the Dice cell and the two speeds as given."""
    return [
        source["dataset"],
        model,
        dice,
        *(f"{metrics[k]:.4f}" for k in ("iou", "precision", "recall")),
        f"{source['params'] / 1e6:.2f} M",
        str(source["input_size"]),
        str(source["epochs"]),
        f"{source['train_seconds']:.0f} s",
        source["device"],
        train_img_s,
        cpu_ms,
    ]


def read_peers(path: Path = PEERS) -> list[dict]:
    """Peer figures with their source and how they were measured (``docs/peers.json``)."""
    return json.loads(path.read_text())["peers"] if path.is_file() else []


def batch1_ms(results_dir: Path = RESULTS_DIR) -> dict[str, float]:
    """Median CPU batch-1 latency (ms) per shipped model file from the benchmark records."""
    out = {}
    for path in sorted(results_dir.glob("inference-*.json")):
        for r in json.loads(path.read_text()):
            if r.get("record", "model") == "model" and r.get("ort_latency_ms_median"):
                if (r.get("providers") or ["CPU"])[0].startswith("CPU"):
                    out[r["model"]] = r["ort_latency_ms_median"]
    return out


def render(
    records: list[dict],
    cards: list[dict],
    peers: list[dict] | None = None,
    latency: dict[str, float] | None = None,
    variants: list[dict] | None = None,
) -> str:
    """Markdown table: shipped models first, then the variant comparison (with Dice intervals),
    then the old GPU comparison, then the peers; the last column names each row's file."""
    latency = latency or {}
    head = [
        "dataset",
        "model",
        "test Dice",
        "IoU",
        "precision",
        "recall",
        "params",
        "input",
        "epochs",
        "train time",
        "device",
        "train img/s",
        "CPU ms",
        "source",
    ]
    lines = [_row(head), _row(["---"] * len(head))]
    for c in sorted(cards, key=lambda c: (c["dataset"], c["name"])):
        m = c["test_metrics"]
        ms = latency.get(c["name"])
        model = f"**{c['name']}** (shipped {c.get('precision', 'fp32')} ONNX, post-processed)"
        cpu_ms = f"{ms:.0f}" if ms else ""
        source = f"models/{c['name']}.json" + (", bench/results/inference-*.json" if ms else "")
        cells = _result_cells(c, m, model, f"**{m['dice']:.4f}**", "", cpu_ms)
        lines.append(_row([*cells, source]))
    for v in sorted(variants or [], key=lambda v: (v["dataset"], -v["test"]["dice"])):
        img_s = f"{v['train_img_s']:.1f}" if v.get("train_img_s") else ""
        cpu = f"{v['cpu_ms']:.1f}" if v.get("cpu_ms") else ""
        cells = _result_cells(v, v["test"], v["label"], v["dice"], img_s, cpu)
        lines.append(_row([*cells, v["source"]]))
    for r in sorted(records, key=lambda r: (r["dataset"], -r["test"]["dice"])):
        t = r["test"]
        model = f"{r['arch']} (base {r['base_filters']}, raw Keras, GPU comparison, logs not kept)"
        img_s = f"{r['train_img_s']:.0f}"
        cells = _result_cells(r, t, model, f"{t['dice']:.4f}", img_s, "")
        lines.append(_row([*cells, _shown(ARCH_RESULTS)]))
    for p in peers or []:
        cells = [p["dataset"], f"_{p['model']} (peer, {p['how']})_", str(p["dice"])]
        cells += ["", "", "", p.get("params") or "", str(p.get("input_size") or "")]
        cells += [str(p.get("epochs") or ""), "", "", "", "", _shown(PEERS)]
        lines.append(_row(cells))
    return "\n".join(lines)


def write_readme(readme: Path, table: str) -> None:
    """Replace the text between the results markers of the README."""
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"error: {readme} has no {START} ... {END} block")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(f"{before}{START}\n{table}\n{END}{after}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = cli.parser("python -m export.table", __doc__.split("\n")[0])
    p.add_argument("--runs", nargs="*", type=Path, default=[], help="run folders to summarise")
    p.add_argument("--models-dir", type=Path, default=REPO_ROOT / "models", help="model cards")
    p.add_argument(
        "--variants-dir", type=Path, default=variants_dir(), help="the variant comparison's runs"
    )
    p.add_argument("--readme", type=Path, default=REPO_ROOT / "README.md", help="file to update")
    a = p.parse_args(argv)
    if a.runs:
        records = [summarize_run(r) for r in a.runs if (r / "test_metrics.json").exists()]
        ARCH_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        ARCH_RESULTS.write_text(json.dumps(records, indent=1))
    records = json.loads(ARCH_RESULTS.read_text()) if ARCH_RESULTS.exists() else []
    cards = [json.loads(f.read_text()) for f in sorted(a.models_dir.glob("*.json"))]
    variants = variant_records(a.variants_dir)
    table = render(records, cards, read_peers(), batch1_ms(), variants)
    write_readme(a.readme, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
