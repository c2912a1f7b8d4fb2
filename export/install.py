"""Put a checked model, its card and its training history into the models folder, atomically;
never over an existing model unless asked (`check_free`)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from export import ExportError
from segcore.atomic import temporary_name

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from segcore.run_config import RunConfig


def default_name(config: RunConfig, precision: str) -> str:
    """``<dataset>_<arch>``, with ``_fp16`` / ``_int8`` for the lower precisions."""
    suffix = "" if precision == "fp32" else f"_{precision}"
    return f"{config.dataset}_{config.settings.arch}{suffix}"


def check_free(out_dir: Path, name: str, force: bool = False) -> None:
    """Raise ExportError when ``out_dir/<name>.onnx`` or its card exists and ``force`` is not
    given: an export never replaces a model (a shipped one above all) silently."""
    taken = [
        out_dir / f"{name}{s}" for s in (".onnx", ".json") if (out_dir / f"{name}{s}").exists()
    ]
    if taken and not force:
        raise ExportError(
            f"{taken[0]} exists; give another --name or --out (such as the run's own folder), "
            "or --force to replace it"
        )


def install(model: Path, history: Path | None, card: dict, out_dir: Path, name: str) -> None:
    """Write ``out_dir/<name>.onnx``, ``.json`` (``card``) and ``.history.csv`` (a copy of
    ``history`` when given and present): each under a temporary name first, then renamed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []
    for suffix, source in ((".onnx", model), (".history.csv", history)):
        if source is None:
            continue
        if not source.is_file():
            log.warning("%s not found; not copied", source)
            continue
        tmp = temporary_name(out_dir / f"{name}{suffix}")
        shutil.copyfile(source, tmp)
        staged.append((tmp, out_dir / f"{name}{suffix}"))
    tmp = temporary_name(out_dir / f"{name}.json")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    staged.append((tmp, out_dir / f"{name}.json"))
    for tmp, final in staged:
        os.replace(tmp, final)


def installed_line(out_dir: Path, card: dict, check: str) -> str:
    """A command's closing line: the installed ONNX file, its size and precision, ``check`` (what
    it was checked against) and its Dice on the split it was scored on."""
    m = card["test_metrics"]
    line = (
        f"{out_dir / card['name']}.onnx: {card['onnx_bytes'] / 1e6:.2f} MB {card['precision']}, "
        f"{check}, {card['test_split']} Dice {m['dice']:.4f} on {m['n_images']} images"
    )
    keras = (card.get("keras_test_metrics") or {}).get("dice")
    if isinstance(keras, int | float) and round(keras, 4) != round(m["dice"], 4):
        raw = (card.get("test_metrics_no_postprocess") or {}).get("dice")
        raw_text = f"; without it {raw:.4f}" if isinstance(raw, int | float) else ""
        line += (
            f" (segcore.commands.evaluate's {keras:.4f} is the Keras model without post-processing; this "
            f"is the ONNX model with the card's post-processing, as the app and segcore.commands.predict "
            f"run it{raw_text}; both at each image's original size)"
        )
    return line
