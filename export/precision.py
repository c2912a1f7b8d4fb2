"""Lower-precision variants of a checked float32 ONNX model: fp16 weights, int8 static
quantization calibrated on training images, each scored and refused when it loses Dice.

Shared by ``python -m export RUN --precision ...`` (from a training run) and
``python -m export.quantize models/NAME.onnx --data ...`` (from a shipped model and its card).
int8 is onnxruntime's static quantization of the convolutions: per-channel int8 weights, MinMax
ranges from `CALIBRATION_IMAGES` training images. Its form is chosen here, on this CPU, by
measurement: every `export.int8_speed.FORMS` (QDQ or QOperator graph, int8 or uint8
activations) is scored on the validation split and timed at batch 1 against float32 in one
interleaved run; the fastest form within `DICE_TOLERANCE` of float32's validation scores wins
(the least loss if none is). Then, when that form loses more than `SELECTION_TIE`, which boundary
convolutions stay float (the first, the last, both) is chosen on the validation split too. The
card records every candidate's scores and speed ratio, the choice and the CPU it was timed on;
the test split is scored once, for the card and the Dice guard.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from export import ACTIVATIONS, PRECISIONS, QUANT_FORMATS, ExportError
from export.graph import boundary_convs, to_fp16
from export.int8_speed import FORMS, Form, batch1_ms, cpu_facts, forms_for
from export.verify import score
from segcore.data import Sample
from segcore.data.layouts import readable
from segcore.inference.engine import Engine
from segcore.inference.postprocess import Postprocess

#: Largest test Dice an int8 (or fp16) model may lose against float32 before export refuses it.
DICE_TOLERANCE = 0.003
#: Training images whose activations set the int8 ranges.
CALIBRATION_IMAGES = 64
#: Operators quantized to int8: the convolutions, where the work is; the rest stays float.
QUANTIZED_OPS = ("Conv", "ConvTranspose")
#: Validation loss within this of the best candidate counts as a tie (fewer float nodes wins).
SELECTION_TIE = 0.0005
#: Validation scores a candidate is chosen by (its largest loss against fp32); an instance
#: model's int8 variant is refused when either loses more than `DICE_TOLERANCE`.
GUARDED = ("dice", "dsb_score")
#: Interleaved batch-1 rounds timing the int8 candidates against float32.
SPEED_REPEATS = 10


@dataclass(frozen=True)
class Variant:
    """A checked lower-precision model: its file (in a temporary folder) and card fields."""

    path: Path
    card: dict


def with_precision(
    fp32: onnx.ModelProto,
    card: dict,
    split: dict[str, list[Sample]],
    precision: str,
    workdir: Path,
    *,
    fp32_test: tuple[dict, dict] | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
    max_images: int | None = None,
    activations: str = "auto",
    quant_format: str = "auto",
) -> Variant:
    """The ``precision`` variant of the float32 model ``fp32`` described by ``card``.

    ``split`` is the run's train/val/test split; ``fp32_test`` the float32 (post-processed, raw)
    test scores when already known; ``activations`` and ``quant_format`` narrow the int8 forms
    tried ("auto": all of `export.int8_speed.FORMS`). Raises ExportError (and writes nothing outside ``workdir``)
    when the variant loses more than `DICE_TOLERANCE` test Dice.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"--precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if activations not in ACTIVATIONS:
        raise ExportError(f"--activations {activations!r}: choose one of {', '.join(ACTIVATIONS)}")
    if quant_format not in QUANT_FORMATS:
        raise ExportError(
            f"--quant-format {quant_format!r}: choose one of {', '.join(QUANT_FORMATS)}"
        )
    settings = Postprocess.from_json(card["postprocess"]) if card.get("postprocess") else None
    settings = settings or Postprocess.for_dataset(card.get("dataset", ""))
    test, val = _held_out(split, "test", max_images), _held_out(split, "val", max_images)
    fp32_engine = _engine(fp32, workdir / "fp32", card | {"precision": "fp32"})
    if fp32_test is None:
        fp32_test = score(fp32_engine, test, settings)
    fields: dict = {"precision": precision, "fp32_test_dice": fp32_test[0]["dice"]}
    if precision == "fp32":
        path = fp32_engine.model_file
        metrics = fp32_test
    elif precision == "fp16":
        engine = _engine(to_fp16(fp32), workdir / "fp16", card | {"precision": "fp16"})
        path, metrics = engine.model_file, score(engine, test, settings)
    else:
        path, selection = _int8(
            fp32, fp32_engine, card, split, val, settings, workdir, calibration_images,
            forms_for(quant_format, activations),
        )  # fmt: skip
        fields.update(selection)
        metrics = score(_engine_at(path, card | {"precision": "int8"}), test, settings)
    loss = fp32_test[0]["dice"] - metrics[0]["dice"]
    if loss > DICE_TOLERANCE:
        raise ExportError(
            f"{precision} loses {loss:.4f} test Dice against fp32 ({metrics[0]['dice']:.4f} vs "
            f"{fp32_test[0]['dice']:.4f}; tolerance {DICE_TOLERANCE}); nothing written"
        )
    fields.update(
        test_metrics=metrics[0],
        test_metrics_no_postprocess=metrics[1],
        test_split="test",
        onnx_bytes=path.stat().st_size,
    )
    return Variant(path, fields)


def _int8(
    fp32: onnx.ModelProto,
    fp32_engine: Engine,
    card: dict,
    split: dict[str, list[Sample]],
    val: list[Sample],
    settings: Postprocess,
    workdir: Path,
    calibration_images: int,
    forms: tuple[Form, ...],
) -> tuple[Path, dict]:
    """Quantize in each form, keep the fastest that holds validation Dice; then choose which
    boundary convolutions stay float when that form loses Dice (module docstring)."""
    from onnxruntime.quantization import CalibrationMethod

    calibration = split["train"][:calibration_images]
    x = _inputs(calibration, fp32_engine)
    fp32_scores = score(fp32_engine, val, settings)[0]
    names = [n for n in GUARDED if n in fp32_scores]
    timing_input = _timing_input(x, fp32_engine.input_size)
    cache = workdir / "calibration.json"
    tried: list[dict] = []

    def candidates(pairs: list[tuple[Form, list[str]]]) -> list[dict]:
        """Quantize, score on val and time (one interleaved run with fp32) each (form, floats)."""
        out: list[dict] = []
        for form, float_nodes in pairs:
            path = workdir / f"int8_{len(tried) + len(out)}" / f"{card['name']}.onnx"
            quantize(fp32, x, float_nodes, path, cache, form)
            scores = score(_engine_at(path, card | {"precision": "int8"}), val, settings)[0]
            loss = max(fp32_scores[n] - scores[n] for n in names)  # Dice; DSB for instances
            out.append({"form": form, "float_nodes": float_nodes, "path": path, "loss": loss}
                       | {f"val_{n}": scores[n] for n in names})  # fmt: skip
        models = {"fp32": fp32_engine.model_path} | {str(i): c["path"] for i, c in enumerate(out)}
        timed = batch1_ms(models, timing_input, SPEED_REPEATS)
        for i, c in enumerate(out):
            c["speedup_over_fp32"] = timed["fp32"]["median_ms"] / timed[str(i)]["median_ms"]
            said = ", ".join(f"{n} {c[f'val_{n}']:.4f} (fp32 {fp32_scores[n]:.4f})" for n in names)
            print(
                f"int8 {c['form'].label} with float {c['float_nodes'] or 'none'}: val {said}, "
                f"{c['speedup_over_fp32']:.2f}x fp32 at batch 1",
                file=sys.stderr,
            )
        tried.extend(out)
        return out

    by_form = candidates([(form, []) for form in forms])
    best = fastest_holding(by_form)
    chosen = best
    if best["loss"] > SELECTION_TIE:
        first, last = boundary_convs(fp32)
        floats = candidates([(best["form"], nodes) for nodes in (first, last, first + last)])
        least = min(c["loss"] for c in [best, *floats])
        chosen = next(c for c in [best, *floats] if c["loss"] <= least + SELECTION_TIE)
    if len(names) > 1 and chosen["loss"] > DICE_TOLERANCE:
        lost = ", ".join(f"{n} {fp32_scores[n] - chosen[f'val_{n}']:.4f}" for n in names)
        raise ExportError(
            f"int8 loses validation {lost} against fp32 at best (tolerance {DICE_TOLERANCE}); "
            "nothing written"
        )
    if chosen["speedup_over_fp32"] < 1:
        print(
            f"int8 ({chosen['form'].label}) runs {chosen['speedup_over_fp32']:.2f}x fp32 at batch 1 "
            "on this CPU: no faster than float32 here",
            file=sys.stderr,
        )
    extra = {f"fp32_val_{n}": fp32_scores[n] for n in names if n != "dice"}
    extra |= {f"val_{n}": chosen[f"val_{n}"] for n in names if n != "dice"}
    keys = ("float_nodes", *(f"val_{n}" for n in names), "speedup_over_fp32")
    return chosen["path"], {
        "calibration_images": [s.name for s in calibration],
        "calibration_method": CalibrationMethod.MinMax.name,
        "quantization": {
            "format": chosen["form"].format,
            "activations": chosen["form"].activations,
            "weights": "int8 per channel",
            "quantized_ops": list(QUANTIZED_OPS),
            "float_nodes": chosen["float_nodes"],
            "selection_split": "val",
            "selection": (
                f"the fastest form within {DICE_TOLERANCE} of fp32's validation scores, then "
                "float boundary convolutions when it lost more than "
                f"{SELECTION_TIE} (least loss; fewer float layers on a tie)"
            ),
            "speedup_over_fp32_batch1": chosen["speedup_over_fp32"],
            "speed_measured": {
                **cpu_facts(),
                "input": list(timing_input.shape),
                "rounds": SPEED_REPEATS,
                "how": "plain onnxruntime sessions, interleaved with fp32, medians",
            },
            "candidates": [{"form": t["form"].label, **{k: t[k] for k in keys}} for t in tried],
        },
        "fp32_val_dice": fp32_scores["dice"],
        "val_dice": chosen["val_dice"],
        **extra,
    }


def fastest_holding(candidates: list[dict]) -> dict:
    """The fastest candidate (``speedup_over_fp32``) whose validation ``loss`` against fp32 is
    within `DICE_TOLERANCE`; the least loss when none is (the first on a tie)."""
    holding = [c for c in candidates if c["loss"] <= DICE_TOLERANCE]
    if holding:
        return max(holding, key=lambda c: c["speedup_over_fp32"])
    return min(candidates, key=lambda c: c["loss"])


def _timing_input(x: list[np.ndarray], size: int) -> np.ndarray:
    """The batch-1 input the candidates are timed on: the first calibration input, cut to the
    model's input size (a tiled model runs tiles of that size)."""
    return np.ascontiguousarray(x[0][:size, :size][None])


def quantize(
    fp32: onnx.ModelProto,
    calibration: list[np.ndarray] | np.ndarray,
    float_nodes: list[str],
    out: Path,
    cache: Path | None = None,
    form: Form = FORMS[0],
) -> Path:
    """Static int8 quantization of ``fp32`` in ``form`` (QDQ or QOperator graph, int8 or uint8
    activations; weights signed int8 per channel), MinMax ranges over ``calibration`` (HxWxC
    float32 model inputs, one run each), leaving ``float_nodes`` in float; ``cache`` reuses the
    ranges across calls (they do not depend on the form)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.images = iter(calibration)

        def get_next(self) -> dict | None:
            image = next(self.images, None)
            return None if image is None else {fp32.graph.input[0].name: image[None]}

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="segcore-int8-") as tmp:
        source = Path(tmp) / "fp32.onnx"
        onnx.save(fp32, source)
        quantize_static(
            source,
            out,
            Reader(),
            quant_format=QuantFormat.QDQ if form.format == "QDQ" else QuantFormat.QOperator,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            activation_type=QuantType.QInt8 if form.activations == "int8" else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(float_nodes),
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=cache,
        )
    return out


def _inputs(samples: list[Sample], engine: Engine) -> list[np.ndarray]:
    """The engine's model inputs (HxWxC float32) for ``samples``' images, as the engine runs
    them: resized to the input size, or for a tiled (native-scale) model the whole image padded
    to the model's stride (the int8 ranges then come from nuclei at the size they are seen);
    unreadable images are skipped."""
    images = []
    for _, image, _ in readable(samples):
        loaded = engine.load(image)
        if engine.mode != "tiled":
            images.append(engine.resized_input(loaded))
            continue
        x = engine.model_input(loaded)
        stride = engine.card.stride
        pad = [(0, -n % stride) for n in x.shape[:2]] + [(0, 0)]
        images.append(np.pad(x, pad, mode="reflect"))
    if not images:
        raise ExportError("no readable training image to calibrate int8 on")
    return images


def _held_out(split: dict[str, list[Sample]], name: str, max_images: int | None) -> list[Sample]:
    samples = split.get(name) or []
    if not samples:
        raise ExportError(f"the split has no {name} images to check the {name} Dice on")
    return samples[:max_images] if max_images else samples


def _engine(proto: onnx.ModelProto, folder: Path, card: dict) -> Engine:
    """Save ``proto`` as ``folder/<name>.onnx`` with a provisional card and load it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{card['name']}.onnx"
    onnx.save(proto, path)
    return _engine_at(path, card)


def _engine_at(path: Path, card: dict) -> Engine:
    path.with_suffix(".json").write_text(json.dumps(card))
    return Engine(path)
