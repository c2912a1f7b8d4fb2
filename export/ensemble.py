"""Ensembles as one ONNX model: ``python -m export --ensemble RUN RUN ... [--precision fp16]``.

Each member run is exported on its own (`export.pipeline.export_run`: conversion, parity and test
scores, at the chosen precision), then `merge_members` puts the member graphs side by side in one
graph, every name prefixed with ``m<i>_``, fed by the one shared input, and a ``Mean`` node
averages their outputs (probabilities) into the one output. The engine, the CLI and the app use
it like any model. The card is the first member's, with ``ensemble``: the members (run folder,
seeds, precision, best validation scores, own test Dice) and how they are combined; its test
metrics are the merged model's, scored like every export.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import compose, helper

from export import ExportError
from export.install import install
from export.run_folder import RunFolder
from export.verify import model_inputs, score
from segcore.inference.engine import Engine
from segcore.inference.postprocess import Postprocess

#: Run settings every member must share: same inputs, outputs and data.
SHARED_CONFIG = ("dataset", "img_size", "channels", "target", "markers")
#: Largest difference accepted between the merged model and the mean of its members.
MERGE_TOLERANCE = 1e-4


def _single(values, what: str, name: str):
    if len(values) != 1:
        raise ExportError(f"{name}: an ensemble member needs exactly one {what}, not {len(values)}")
    return values[0]


def merge_members(members: list[onnx.ModelProto], name: str = "ensemble") -> onnx.ModelProto:
    """One model whose output is the element-wise mean of the members' outputs.

    Every member must have one input and one output; the merged model takes the first member's
    input and output names and shapes. Raises ExportError for members that do not fit together.
    """
    if len(members) < 2:
        raise ExportError("an ensemble needs at least two members")
    first = members[0].graph
    shared_in = _single(first.input, "input", first.name)
    shared_out = _single(first.output, "output", first.name)
    nodes, initializers, value_info, outputs = [], [], [], []
    for i, member in enumerate(members):
        if member.functions:
            raise ExportError(f"member {i}: ONNX local functions are not supported")
        inp = _single(member.graph.input, "input", member.graph.name)
        _single(member.graph.output, "output", member.graph.name)
        if inp.type.tensor_type.shape.dim[-1] != shared_in.type.tensor_type.shape.dim[-1]:
            raise ExportError(f"member {i}: its input channels differ from the first member's")
        prefixed = compose.add_prefix(member, f"m{i}_")
        graph = prefixed.graph
        nodes.append(helper.make_node("Identity", [shared_in.name], [graph.input[0].name]))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        value_info.extend(graph.value_info)
        outputs.append(graph.output[0].name)
    nodes.append(helper.make_node("Mean", outputs, [shared_out.name], name="ensemble_mean"))
    graph = helper.make_graph(
        nodes, name, [shared_in], [shared_out], initializers, value_info=value_info
    )
    model = helper.make_model(graph, opset_imports=_opsets(members))
    model.ir_version = max(m.ir_version for m in members)
    onnx.checker.check_model(model)
    return model


def _opsets(members: list[onnx.ModelProto]) -> list[onnx.OperatorSetIdProto]:
    """Each operator domain at the highest version any member imports."""
    versions: dict[str, int] = {}
    for member in members:
        for opset in member.opset_import:
            versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    return [helper.make_opsetid(domain, version) for domain, version in sorted(versions.items())]


def best_val_scores(run: RunFolder) -> dict[str, float]:
    """The validation scores (``val_*`` of history.csv) at the run's best epoch, or {}."""
    best = run.config.raw.get("best_epoch")
    if best is None or not run.history_path.is_file():
        return {}
    with open(run.history_path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("epoch") and int(float(r["epoch"])) == best]
    if not rows:
        return {}
    return {k[4:]: float(v) for k, v in rows[-1].items() if k.startswith("val_") and v}


def check_members(runs: list[RunFolder]) -> None:
    """ExportError unless the runs share `SHARED_CONFIG` and their validation and test images."""
    first = runs[0]
    for run in runs[1:]:
        for key in SHARED_CONFIG:
            mine, theirs = run.config.raw.get(key), first.config.raw.get(key)
            if mine != theirs:
                raise ExportError(
                    f"{run.path}: {key} {mine!r} differs from {first.path}'s {theirs!r}"
                )
        for part in ("val", "test"):
            if [s.image for s in run.split.get(part, [])] != [
                s.image for s in first.split.get(part, [])
            ]:
                raise ExportError(f"{run.path}: its {part} split differs from {first.path}'s")


def member_entry(run: RunFolder, card: dict) -> dict:
    """What the ensemble card says about one member."""
    return {
        "run_dir": card["run_dir"],
        "arch": run.config.settings.arch,
        "seed": run.config.settings.seed,
        "init_seed": run.config.settings.init_seed,
        "precision": card["precision"],
        "onnx_bytes": card["onnx_bytes"],
        "best_epoch": run.config.raw.get("best_epoch"),
        "val": best_val_scores(run),
        "test_dice": card["test_metrics"]["dice"],
    }


#: Card fields that describe one member's own export, not the merged model.
MEMBER_ONLY = (
    "run_dir",
    "best_epoch",
    "train_seconds",
    "parity_max_abs_diff",
    "parity_tolerance",
    "parity_images",
    "fp32_parity_max_abs_diff",
    "fp32_test_dice",
    "fp16_test_dice",
    "fp32_onnx_bytes",
    "keras_test_metrics",
    "calibration_images",
    "derived_from",
)


def export_ensemble(
    runs: list[RunFolder],
    out_dir: Path,
    name: str | None = None,
    precision: str = "fp16",
    max_images: int | None = None,
) -> dict:
    """Export each run at ``precision``, merge them and install ``out_dir/<name>.onnx`` + card;
    returns the card. Raises ExportError (nothing written) when a check fails."""
    from export.pipeline import NAME_PATTERN, default_name, export_run

    check_members(runs)
    name = name or f"{default_name(runs[0].config, precision)}_ensemble{len(runs)}"
    if not NAME_PATTERN.match(name):
        raise ExportError(f"--name {name!r}: use letters, digits, '_', '-' and '.'")
    with tempfile.TemporaryDirectory(prefix="segcore-ensemble-") as tmp:
        folders = [Path(tmp) / f"m{i}" for i in range(len(runs))]
        cards = [
            export_run(run, folder, f"member{i}", precision, max_images)
            for i, (run, folder) in enumerate(zip(runs, folders, strict=True))
        ]
        paths = [folder / f"member{i}.onnx" for i, folder in enumerate(folders)]
        merged = Path(tmp) / "merged" / f"{name}.onnx"
        merged.parent.mkdir()
        onnx.save(merge_members([onnx.load(p) for p in paths], name), merged)
        card = {k: v for k, v in cards[0].items() if k not in MEMBER_ONLY}
        levels = {c["ort_optimization"] for c in cards}
        card.update(name=name, ort_optimization="all" if levels == {"all"} else "extended")
        merged.with_suffix(".json").write_text(json.dumps(card))
        engine = Engine(merged)
        diff = _merge_difference(engine, [Engine(p) for p in paths], runs[0])
        split_name, samples = runs[0].eval_split()
        metrics, raw = score(engine, samples[:max_images] if max_images else samples, _post(card))
        card.update(
            test_split=split_name,
            test_metrics=metrics,
            test_metrics_no_postprocess=raw,
            merge_max_abs_diff=diff,
            onnx_bytes=merged.stat().st_size,
            ensemble={
                "combine": "mean of the members' output probabilities (one ONNX Mean node)",
                "members": [member_entry(r, c) for r, c in zip(runs, cards, strict=True)],
            },
        )
        install(merged, None, card, out_dir, name)
    return card


def _post(card: dict) -> Postprocess:
    return Postprocess.from_json(card.get("postprocess") or {})


def _merge_difference(engine: Engine, members: list[Engine], run: RunFolder) -> float:
    """Largest difference between the merged model's probabilities and the members' mean on a
    few held-out images; ExportError over `MERGE_TOLERANCE`."""
    size, channels = run.config.settings.img_size, run.config.settings.channels
    x = model_inputs(run.eval_split()[1][:2], size, channels)
    expected = np.mean([m.probabilities(x) for m in members], axis=0)
    diff = float(np.abs(engine.probabilities(x) - expected).max())
    if diff > MERGE_TOLERANCE:
        raise ExportError(f"merged model differs from its members' mean by {diff:.3g}")
    return diff
