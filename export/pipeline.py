"""Export a run folder: convert, check parity, score on the test split, write model + card.

Everything is written to a temporary folder first and moved into ``out_dir`` only once every
check passed, so a refused export leaves nothing behind.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np
import onnx

from export import PRECISIONS, ExportError
from export.card_writer import base_card, instance_card, keras_means
from export.convert import OPSET, load_main_model, to_onnx
from export.graph import to_fp16
from export.install import default_name, install
from export.precision import with_precision
from export.run_folder import RunFolder
from export.verify import model_inputs, parity, score
from segcore.data import Sample
from segcore.inference.engine import Engine
from segcore.inference.postprocess import Postprocess
from segcore.training.runinfo import library_versions

#: Largest ONNX-vs-Keras probability difference accepted for a float32 export.
PARITY_TOLERANCE = 1e-4
#: The same for a float16 export: half precision keeps about 3 significant digits, and a
#: probability off by 1e-2 moves the 0.5 threshold only for pixels already within 1e-2 of it.
FP16_PARITY_TOLERANCE = 1e-2
PARITY_IMAGES = 4
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def export_run(
    run: RunFolder,
    out_dir: Path,
    name: str | None = None,
    precision: str = "fp32",
    max_images: int | None = None,
    activations: str = "auto",
    quant_format: str = "auto",
) -> dict:
    """Export ``run`` to ``out_dir/<name>.onnx`` + ``.json`` card + ``.history.csv``; returns the card.

    Raises ExportError (nothing written) when the parity check fails, or an int8 model loses
    more than `export.precision.DICE_TOLERANCE` test Dice.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    name = name or default_name(run.config, precision)
    if not NAME_PATTERN.match(name):
        raise ExportError(f"--name {name!r}: use letters, digits, '_', '-' and '.'")
    split_name, samples = run.eval_split()
    samples = samples[:max_images] if max_images else samples
    settings = Postprocess.for_dataset(run.config.dataset)
    card = base_card(name, run.config.raw, run.path, settings.to_json())
    card.update(instance_card(run.path, run.config))
    size, channels = run.config.settings.img_size, run.config.settings.channels
    model = load_main_model(run.model_path)
    x = model_inputs(samples[:PARITY_IMAGES], size, channels)
    keras_probs = np.asarray(model.predict(x, verbose=0))[..., -1]
    proto, dynamic = to_onnx(model, channels, size)
    with tempfile.TemporaryDirectory(prefix="segcore-export-") as tmp:
        fp32, diff = _check_fastest(
            proto, Path(tmp) / "fp32", name, card, keras_probs, x, PARITY_TOLERANCE
        )
        metrics, raw = score(fp32, samples, settings)
        card.update(
            ort_optimization=fp32.card.ort_optimization,
            opset=OPSET,
            dynamic_size=dynamic,
            precision="fp32",
            parity_max_abs_diff=diff,
            parity_tolerance=PARITY_TOLERANCE,
            parity_images=len(x),
            test_split=split_name,
            test_metrics=metrics,
            test_metrics_no_postprocess=raw,
            keras_test_metrics=keras_means(run.keras_test_metrics),
            export_library_versions=library_versions(),
        )
        final = fp32.model_file
        if precision == "int8":
            variant = with_precision(
                proto, card, run.split, "int8", Path(tmp) / "int8", fp32_test=(metrics, raw),
                max_images=max_images, activations=activations, quant_format=quant_format,
            )  # fmt: skip
            card.update(variant.card)
            final = variant.path
        elif precision == "fp16":
            card["fp32_onnx_bytes"] = fp32.model_file.stat().st_size
            final = _half(proto, Path(tmp) / "fp16", card, (keras_probs, x), samples, settings)
        card["onnx_bytes"] = final.stat().st_size
        install(final, run.history_path, card, out_dir, name)
    return card


def _half(
    proto: onnx.ModelProto,
    folder: Path,
    card: dict,
    reference: tuple[np.ndarray, np.ndarray],
    samples: list[Sample],
    settings: Postprocess,
) -> Path:
    """Check and score the float16-weights variant; updates ``card`` and returns its file."""
    keras_probs, x = reference
    half, diff16 = _check_fastest(
        to_fp16(proto), folder, card["name"], card, keras_probs, x, FP16_PARITY_TOLERANCE
    )
    metrics16, raw16 = score(half, samples, settings)
    card.update(
        precision="fp16",
        ort_optimization=half.card.ort_optimization,
        fp32_parity_max_abs_diff=card["parity_max_abs_diff"],
        parity_max_abs_diff=diff16,
        parity_tolerance=FP16_PARITY_TOLERANCE,
        fp32_test_dice=card["test_metrics"]["dice"],
        fp16_test_dice=metrics16["dice"],
        test_metrics=metrics16,
        test_metrics_no_postprocess=raw16,
    )
    return half.model_file


def _check_fastest(
    proto: onnx.ModelProto,
    folder: Path,
    name: str,
    card: dict,
    keras_probs: np.ndarray,
    x: np.ndarray,
    tolerance: float,
) -> tuple[Engine, float]:
    """Save the model with a provisional card, load it in the engine, check parity: (engine, diff).

    First with onnxruntime's full graph optimisation, else with the faithful extended level:
    ORT_ENABLE_ALL (NCHWc layouts) is ~16% faster on CPU but moved a trained instance-norm
    U-Net's output by 8e-4; the card records the level the engine must use.
    """
    for level in ("all", "extended"):
        model = folder / level / f"{name}.onnx"
        model.parent.mkdir(parents=True)
        onnx.save(proto, model)
        model.with_suffix(".json").write_text(json.dumps(card | {"ort_optimization": level}))
        engine = Engine(model)
        diff = parity(keras_probs, engine, x)
        if diff <= tolerance:
            return engine, diff
    raise ExportError(
        f"ONNX output differs from Keras by {diff:.3g} (tolerance {tolerance:g}); nothing written"
    )
