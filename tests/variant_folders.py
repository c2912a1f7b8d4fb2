"""Tiny synthetic comparison folders (`segcore.scoring.variant_runs`) for tests: a hand-made ONNX model,
its card, a training log and per-image test scores that agree with each other."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from handmade_models import save_conv1x1_sigmoid_model

from segcore.scoring.variant_runs import (
    CARD_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    PER_IMAGE_FILE,
    per_image_text,
)

SIZE = 32


def write_variant(
    root: Path,
    dataset: str,
    arch: str,
    dice: list[float],
    epochs: int = 10,
    toy: bool = False,
) -> Path:
    """``root/<dataset>/<arch>/`` with files that agree: per-image Dice ``dice`` (IoU derived),
    ``epochs`` logged epochs, a hand-made model (bright pixels are foreground) and its card."""
    folder = root / dataset / arch
    folder.mkdir(parents=True)
    model = save_conv1x1_sigmoid_model(folder / MODEL_FILE, 3, [20.0 / 3] * 3, [-10.0])
    dice_values = np.asarray(dice, float)
    iou = dice_values / (2 - dice_values)
    images = [f"img{i:03d}" for i in range(len(dice_values))]
    rows = [{"dice": d, "iou": j} for d, j in zip(dice_values, iou, strict=True)]
    (folder / PER_IMAGE_FILE).write_text(per_image_text(images, rows))
    with open(folder / HISTORY_FILE, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["epoch", "loss", "dice", "iou", "accuracy", "val_loss", "val_dice",
                         "val_iou", "val_accuracy", "lr", "seconds"])  # fmt: skip
        for epoch in range(1, epochs + 1):
            v = 0.5 + 0.4 * epoch / epochs
            writer.writerow([epoch, 1 / epoch, v, v - 0.1, 0.9, 1.2 / epoch, v - 0.02,
                             v - 0.12, 0.88, 1e-3, 2.0])  # fmt: skip
    card = {
        "name": f"{dataset}_{arch}_variant",
        "arch": arch,
        "dataset": dataset,
        "input_size": SIZE,
        "channels": 3,
        "normalization": "divide_by_255",
        "threshold": 0.5,
        "params": 1000 + 10 * len(arch),
        "epochs": epochs,
        "precision": "fp32",
        "onnx_bytes": model.stat().st_size,
        "test_metrics": {
            "n_images": len(dice_values),
            "dice": float(dice_values.mean()),
            "iou": float(iou.mean()),
            "precision": 0.9,
            "recall": 0.9,
        },
        "variant": {
            "budget": {"base_filters": 16, "img_size": SIZE},
            "budget_text": "synthetic test budget",
            "train_seconds": 60.0,
            "train_device": "cpu (test)",
            "toy": toy,
            "train_img_s": 5.0 + len(arch),
            "gflops_per_image": 0.1 * len(arch),
        },
    }
    (folder / CARD_FILE).write_text(json.dumps(card))
    return folder
