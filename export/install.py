"""Put a checked model, its card and its training history into the models folder, atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from segcore.atomic import temporary_name

log = logging.getLogger(__name__)


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
    return (
        f"{out_dir / card['name']}.onnx: {card['onnx_bytes'] / 1e6:.2f} MB {card['precision']}, "
        f"{check}, {card['test_split']} Dice {m['dice']:.4f} on {m['n_images']} images"
    )
