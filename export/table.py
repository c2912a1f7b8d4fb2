"""The README results table, generated from the model cards and the architecture comparison.

``python -m export.table [--runs RUN_DIR ...] [--readme README.md]``:
- with ``--runs``, summarises those training runs (config.json + test_metrics.json) into
  ``bench/results/architectures.json`` — one record per architecture x dataset, shipped or not;
- then renders one markdown row per record, marks the shipped models (cards in ``models/``,
  whose test figures come from the exported ONNX at each image's original size), and writes the
  table into the README between the ``results:start`` / ``results:end`` markers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCH_RESULTS = ROOT / "bench" / "results" / "architectures.json"
START, END = "<!-- results:start -->", "<!-- results:end -->"
PEERS = [
    ("isic", "smp U-Net resnet34 (peer, measured)", "0.891", "24.4 M", "256", "40"),
    ("isic", "Keras U-Net+BN seed recipe (peer)", "0.882", "", "128", "20"),
    ("isic", "Improved U-Net (Isensee, reported)", "0.83", "", "", ""),
    ("dsb", "smp U-Net resnet34 (peer, measured)", "0.911", "24.4 M", "256", "60"),
    ("dsb", "Otsu threshold (baseline)", "~0.86", "", "", ""),
]


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


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render(records: list[dict], cards: list[dict]) -> str:
    """Markdown table: shipped models first, then every architecture, then the peers."""
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
    ]
    lines = [_row(head), _row(["---"] * len(head))]
    for c in sorted(cards, key=lambda c: c["dataset"]):
        m = c["test_metrics"]
        lines.append(
            _row(
                [
                    c["dataset"],
                    f"**{c['name']}** (shipped, {c.get('precision', 'fp32')} ONNX)",
                    f"**{m['dice']:.4f}**",
                    f"{m['iou']:.4f}",
                    f"{m['precision']:.4f}",
                    f"{m['recall']:.4f}",
                    f"{c['params'] / 1e6:.2f} M",
                    str(c["input_size"]),
                    str(c["epochs"]),
                    f"{c['train_seconds']:.0f} s",
                    c["device"],
                    "",
                ]
            )
        )
    for r in sorted(records, key=lambda r: (r["dataset"], -r["test"]["dice"])):
        t = r["test"]
        lines.append(
            _row(
                [
                    r["dataset"],
                    f"{r['arch']} (base {r['base_filters']}, Keras)",
                    f"{t['dice']:.4f}",
                    f"{t['iou']:.4f}",
                    f"{t['precision']:.4f}",
                    f"{t['recall']:.4f}",
                    f"{r['params'] / 1e6:.2f} M",
                    str(r["input_size"]),
                    str(r["epochs"]),
                    f"{r['train_seconds']:.0f} s",
                    r["device"],
                    f"{r['train_img_s']:.0f}",
                ]
            )
        )
    for dataset, name, dice, params, size, epochs in PEERS:
        lines.append(
            _row([dataset, f"_{name}_", dice, "", "", "", params, size, epochs, "", "", ""])
        )
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
    p = argparse.ArgumentParser(prog="python -m export.table", description=__doc__.split("\n")[0])
    p.add_argument("--runs", nargs="*", type=Path, default=[], help="run folders to summarise")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models")
    p.add_argument("--readme", type=Path, default=ROOT / "README.md")
    a = p.parse_args(argv)
    if a.runs:
        records = [summarize_run(r) for r in a.runs if (r / "test_metrics.json").exists()]
        ARCH_RESULTS.parent.mkdir(parents=True, exist_ok=True)
        ARCH_RESULTS.write_text(json.dumps(records, indent=1))
    records = json.loads(ARCH_RESULTS.read_text()) if ARCH_RESULTS.exists() else []
    cards = [json.loads(f.read_text()) for f in sorted(a.models_dir.glob("*.json"))]
    table = render(records, cards)
    write_readme(a.readme, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
