"""A model card in words: the facts the Models page shows, tolerant of missing fields."""

from __future__ import annotations

from typing import Any

#: The instance scores of an instance model's ``test_metrics`` (key, label).
INSTANCE_SCORES = (
    ("dsb_score", "DSB score"),
    ("f1_iou50", "F1 @ IoU 0.5"),
    ("count_error", "count error"),
)


def _fmt(value: Any) -> str:
    """A card value as short text (floats to 4 significant digits, dicts as k=v)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _size(card: dict) -> str | None:
    size = card.get("onnx_bytes")
    return f"{size / 1e6:.2f} MB" if isinstance(size, int | float) else None


def _train_time(card: dict) -> str | None:
    seconds = card.get("train_seconds")
    if not isinstance(seconds, int | float):
        return None
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _epochs(card: dict) -> str | None:
    epochs, best = card.get("epochs"), card.get("best_epoch")
    if epochs is None:
        return None
    return f"{epochs} (best {best})" if best is not None else str(epochs)


def _image_check(card: dict) -> str | None:
    """What uploads are compared against (the card's ``image_stats``), if recorded."""
    stats = card.get("image_stats")
    if not isinstance(stats, dict) or not stats.get("n_images"):
        return None
    return f"statistics of {stats['n_images']:,} training images"


def _input(card: dict) -> str:
    """What the model sees: the whole image resized, or tiles of the image at its own size."""
    channels = card.get("channels")
    names: dict[object, str] = {1: "grayscale", 3: "RGB"}
    kind = names.get(channels, f"{channels} channels")
    size = card.get("input_size")
    given = card.get("tile")
    tile: dict = given if isinstance(given, dict) else {}
    if card.get("mode") == "tiled":
        side = tile.get("size", size)
        overlap = tile.get("overlap")
        share = f", {overlap:.0%} overlap" if isinstance(overlap, int | float) else ""
        return f"{kind}, any size, tiled {side} px{share}"
    return f"{kind}, resized to {size}x{size}"


def score_text(key: str, value: float) -> str:
    """A test score as shown everywhere: count error in percent, the others to 3 decimals."""
    return f"{value:.1%}" if key == "count_error" else f"{value:.3f}"


def card_facts(card: dict) -> dict[str, list[tuple[str, str]]]:
    """The card's key facts in two groups, ``Model`` and ``Training``, as (label, text) pairs,
    leaving out the fields the card lacks."""
    groups = {
        "Model": {
            "Architecture": card.get("arch"),
            "Settings": card.get("arch_kwargs"),
            "Dataset": card.get("dataset"),
            "Input": _input(card),
            "Normalisation": card.get("normalization"),
            "Threshold": card.get("threshold"),
            "Post-processing": card.get("postprocess"),
            "Precision": card.get("precision"),
            "Parameters": card.get("params"),
            "ONNX size": _size(card),
            "ONNX vs Keras max diff": card.get("parity_max_abs_diff"),
            "Image check": _image_check(card),
        },
        "Training": {
            "Loss": card.get("loss"),
            "Batch size": card.get("batch_size"),
            "Learning rate": card.get("lr"),
            "Epochs": _epochs(card),
            "Training time": _train_time(card),
            "Trained on": card.get("device"),
            "Keras backend": card.get("backend"),
            "Split": card.get("split"),
            "Seed": card.get("seed"),
            "Scored on": card.get("test_split"),
            "Exported": card.get("created"),
            "Training data": card.get("source") or "not recorded in the card",
            "Data source": card.get("source_url"),
        },
    }
    return {
        group: [(k, _fmt(v)) for k, v in facts.items() if v not in (None, "", {}, [])]
        for group, facts in groups.items()
    }


def card_scores(card: dict) -> dict[str, float]:
    """The card's test scores (dice, iou, precision, recall, accuracy) that are numbers."""
    metrics = card.get("test_metrics") or {}
    return {
        k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and k != "n_images"
    }
