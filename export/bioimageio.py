"""BioImage Model Zoo packages of exported models: ``python -m export.bioimageio MODEL... --out DIR``.

Each ``models/NAME.onnx`` (with its card ``NAME.json``) becomes ``DIR/NAME.bioimageio.zip``, a
model package of format 0.5 that deepImageJ (Fiji), ilastik, QuPath's bioimageio extension, Icy
and BiaPy run: the ONNX weights, the axes in the model's order (batch, y, x, channel) with the
stride as size rule, the engine's pre-processing as the spec's own operations, test tensors and a
cover from a real bundled sample, a README whose commands run on the unpacked zip (the model card
travels inside as an attachment), citations and the licence of every training source, the
authors and maintainers given (``--author "Name;affiliation"``, ``--maintainer
"Name;affiliation;github-user"``, both repeatable) and the card's decoding settings (per image
kind too).
Every package is checked with `bioimageio.core.test_model` before it is kept. A folder argument
means every model in it. bioimageio loads only when this module runs, never on segcore's import.
An existing package is replaced only with ``--force`` (as ``python -m export`` does); a card
name that is not a plain file name (``../x``) is refused before anything is written.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import tifffile
from PIL import Image

import segcore
from export import ExportError
from export.zoo_arrays import TestTensors, cover_png, test_tensors
from export.zoo_docs import citations, dataset_facts, readme
from segcore.atomic import replacing
from segcore.card import ModelCard
from segcore.errors import UserError
from segcore.inference.engine import Engine
from segcore.inference.onnx_runner import default_providers, quiet_onnxruntime_logs
from segcore.inference.preprocess import IMAGE_EXTENSIONS, NORMALIZATION, PERCENTILE_CLIP
from segcore.paths import samples_dir

if TYPE_CHECKING:
    from bioimageio.spec.dataset.v0_3 import DatasetDescr
    from bioimageio.spec.model.v0_5 import ModelDescr

#: The package's authors when no ``--author`` is given (the card names no person).
AUTHORS = ("segcore contributors",)
#: The card normalisations a package can declare (`preprocessing`).
PACKAGED_NORMALIZATIONS = (NORMALIZATION, "percentile")
#: Sample folders per dataset (under samples/); the first image of the first folder is used.
SAMPLE_FOLDERS = {"isic": ("isic/images",), "dsb": ("dsb/stage1_train",)}
SUFFIX = ".bioimageio.zip"
#: Reproducibility tolerance when the card names none (fp16 and int8 differ across providers).
DEFAULT_TOLERANCE = 0.01
#: A card name usable as a package file name: letters, digits, ``_ . + -``, not starting with a dot.
PACKAGE_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*")
#: Largest absolute tolerance as a share of the test output's maximum (bioimage.io allows 1%).
TOLERANCE_SHARE = 0.005


def default_sample(card: ModelCard, samples: Path | None = None) -> Path:
    """The bundled image the package's test tensors come from: the card's dataset's first sample
    (any bundled image for other datasets); ExportError when there is none."""
    samples = samples or samples_dir()
    folders = SAMPLE_FOLDERS.get(card.family, ("dsb/stage1_train", "isic/images"))
    for folder in folders:
        images = sorted(
            p for p in (samples / folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
        )
        images = [p for p in images if p.parent.name != "masks" and "_segmentation" not in p.name]
        if images:
            return images[0]
    raise ExportError(f"{samples}: no bundled sample image for the test tensors (--sample)")


def _channel_names(count: int, names: Sequence[str] | None = None) -> list[str]:
    """Channel names: the card's names, ``r g b`` / ``gray`` for inputs, else ``c0 c1 ...``."""
    if names and len(names) == count:
        return [str(n) for n in names]
    return {3: ["r", "g", "b"], 1: ["gray"]}.get(count, [f"c{i}" for i in range(count)])


def preprocessing(card: ModelCard) -> list[dict]:
    """The engine's normalisation as the spec's operations: x / 255 (`scale_linear`), or the
    card's percentiles per sample over y, x and channel to 0 and 1 (`scale_range`) followed by the
    engine's clip (`segcore.inference.preprocess.PERCENTILE_CLIP`), so Fiji feeds the model what segcore
    does."""
    if card.normalization == NORMALIZATION:
        return [{"id": "scale_linear", "kwargs": {"gain": 1.0 / 255.0, "offset": 0.0}}]
    low, high = card.percentiles
    axes = ["y", "x", "channel"]  # all but the batch: per sample, channels jointly
    return [
        {
            "id": "scale_range",
            "kwargs": {"axes": axes, "min_percentile": low, "max_percentile": high},
        },
        {"id": "clip", "kwargs": {"min": PERCENTILE_CLIP[0], "max": PERCENTILE_CLIP[1]}},
    ]


def _tensors(card: ModelCard, files: dict[str, Path], tensors: TestTensors) -> tuple[list, list]:
    """The input and output tensor descriptions (axes, size rule, data, pre-processing)."""
    from bioimageio.spec.model import v0_5 as spec

    size = spec.ParameterizedSize(min=card.stride, step=card.stride)
    input_descr = spec.InputTensorDescr(
        id=spec.TensorId("image"),
        description=(
            "image, axes batch, y, x, channel, scaled by its own percentiles"
            if card.normalization == "percentile"
            else "8-bit image, axes batch, y, x, channel"
        ),
        axes=[
            spec.BatchAxis(),
            spec.SpaceInputAxis(id=spec.AxisId("y"), size=size),
            spec.SpaceInputAxis(id=spec.AxisId("x"), size=size),
            spec.ChannelAxis(channel_names=_channel_names(card.channels)),
        ],
        test_tensor=spec.FileDescr(source=files["input"]),
        sample_tensor=spec.FileDescr(source=files["input_sample"]),
        data=spec.IntervalOrRatioDataDescr(type="uint8"),
        preprocessing=[  # ends with float32: else the spec appends a cast back to uint8
            spec.EnsureDtypeDescr(kwargs=spec.EnsureDtypeKwargs(dtype="float32")),
            *preprocessing(card),
            spec.EnsureDtypeDescr(kwargs=spec.EnsureDtypeKwargs(dtype="float32")),
        ],
    )
    same = {a: spec.SizeReference(tensor_id=spec.TensorId("image"), axis_id=a) for a in ("y", "x")}
    outputs = tensors.output.shape[-1]
    output_descr = spec.OutputTensorDescr(
        id=spec.TensorId("probabilities"),
        description="sigmoid probabilities; the last channel is the mask",
        axes=[
            spec.BatchAxis(),
            spec.SpaceOutputAxis(id=spec.AxisId("y"), size=same["y"]),
            spec.SpaceOutputAxis(id=spec.AxisId("x"), size=same["x"]),
            spec.ChannelAxis(channel_names=_channel_names(outputs, card.get("target_channels"))),
        ],
        test_tensor=spec.FileDescr(source=files["output"]),
        sample_tensor=spec.FileDescr(source=files["output_sample"]),
        data=spec.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
    )
    return [input_descr], [output_descr]


def _config(card: ModelCard, output_max: float) -> dict:
    """The package's ``config``: segcore's version and card settings, bioimage.io's details.

    The reproducibility tolerance is the card's parity tolerance, capped at half of the most
    bioimage.io accepts (1% of the test output's maximum ``output_max``).
    """
    tolerance = min(
        float(card.get("parity_tolerance", DEFAULT_TOLERANCE)), TOLERANCE_SHARE * output_max
    )
    keep = ("name", "dataset", "arch", "arch_kwargs", "input_size", "channels", "normalization")
    optional = (
        "normalization_percentiles", "intensity", "object_diameter_px", "threshold", "mode",
        "tile", "postprocess", "target_channels", "instances", "instances_by_kind", "source",
        "source_url", "licence", "sources",
    )  # fmt: skip
    settings = {k: card.raw[k] for k in (*keep, *optional) if k in card.raw}
    facts = dataset_facts(card)
    by_kind = {k: v.to_json() for k, v in card.instances_by_kind.items()}
    return {
        "segcore": {
            "version": segcore.__version__,
            "card": settings,
            "test_metrics": card.test_metrics,
            **({"instances": card.instances.to_json()} if card.instances else {}),
            **({"instances_by_kind": by_kind} if by_kind else {}),
        },
        "bioimageio": {
            "reproducibility_tolerance": [
                {"absolute_tolerance": tolerance, "relative_tolerance": tolerance}
            ],
            "architecture_type": "U-Net",
            "architecture_description": f"segcore {card.arch} {card.get('arch_kwargs', {})}",
            "modality": facts.modality,
            "target_structure": [facts.target],
            "task": "instance segmentation" if card.instances else "semantic segmentation",
            "model_parameter_count": card.get("params"),
        },
    }


def _training_data(card: ModelCard) -> DatasetDescr:
    """The training set as an inline dataset description."""
    from bioimageio.spec.dataset.v0_3 import DatasetDescr

    facts = dataset_facts(card)
    return DatasetDescr(
        name=facts.name,
        description=facts.description,
        source=facts.url.split(" ")[0] or None,
        authors=[{"name": facts.creators}],
        license=facts.data_license_id,
        cite=[{"text": c.text, "doi": c.doi, "url": c.url} for c in facts.citations],
        tags=list(facts.tags),
    )


def person(text: str, flag: str = "--author") -> dict:
    """``Name;affiliation`` (``--author``) or ``Name;affiliation;github-user`` (``--maintainer``,
    whose GitHub user bioimage.io requires) as the spec's fields; ExportError naming the flag."""
    parts = [p.strip() for p in text.split(";")]
    fields = ("name", "affiliation", "github_user")[: 3 if flag == "--maintainer" else 2]
    if not parts[0] or len(parts) > len(fields) or "/" in parts[0]:
        raise ExportError(f"{flag} {text!r}: give {';'.join(fields)} (a name without '/')")
    found = {k: v for k, v in zip(fields, parts, strict=False) if v}
    if flag == "--maintainer" and "github_user" not in found:
        raise ExportError(
            f"{flag} {text!r}: bioimage.io needs a GitHub user: Name;affiliation;user"
        )
    return found


def _maintainers(maintainers: Sequence[dict]) -> list:
    """The spec's maintainers; bioimage.io looks each GitHub user up online (unless it knows
    the name), so an unknown user or no connection is an ExportError naming the flag."""
    import httpx
    from bioimageio.spec.model import v0_5 as spec
    from pydantic import ValidationError

    out = []
    for m in maintainers:
        try:
            out.append(spec.Maintainer(**m))
        except (ValidationError, httpx.HTTPError) as exc:
            raise ExportError(
                f"--maintainer {m['github_user']}: bioimage.io could not confirm this GitHub user "
                f"({str(exc).splitlines()[-1].strip()[:120]})"
            ) from None
    return out


def describe(
    model: Path,
    card: ModelCard,
    folder: Path,
    tensors: TestTensors,
    authors: Sequence[dict] = (),
    maintainers: Sequence[dict] = (),
) -> ModelDescr:
    """The `ModelDescr` of ``model``, its files written into ``folder`` (a scratch folder);
    ``authors``/``maintainers`` as `person` gives them (default authors: `AUTHORS`)."""
    from bioimageio.spec.model import v0_5 as spec

    files = {
        "input": folder / "test_input.npy",
        "output": folder / "test_output.npy",
        "input_sample": folder / "sample_input.png",
        "output_sample": folder / "sample_output.tif",
    }
    np.save(files["input"], tensors.image)
    np.save(files["output"], tensors.output)
    Image.fromarray(
        tensors.image[0].squeeze(-1) if tensors.image.shape[-1] == 1 else tensors.image[0]
    ).save(files["input_sample"])
    tifffile.imwrite(files["output_sample"], tensors.output[0])
    (folder / "cover.png").write_bytes(cover_png(tensors, card))
    (folder / "README.md").write_text(readme(card, model.name))
    # the card beside the weights, so the unpacked package runs with segcore as it is
    shutil.copyfile(model.with_suffix(".json"), folder / model.with_suffix(".json").name)
    inputs, outputs = _tensors(card, files, tensors)
    facts = dataset_facts(card)
    kind = "nuclei instance" if card.instances else f"{facts.target} semantic"
    return spec.ModelDescr(
        name=card.name,
        description=f"U-Net ({card.arch}) for {kind} segmentation, trained on "
        f"{facts.name} with segcore.",
        authors=[spec.Author(**a) for a in authors] or [spec.Author(name=n) for n in AUTHORS],
        maintainers=_maintainers(maintainers),
        attachments=[spec.FileDescr(source=folder / model.with_suffix(".json").name)],
        cite=[{"text": c.text, "doi": c.doi, "url": c.url} for c in citations(card)],
        license=facts.weights_license,
        documentation=spec.FileDescr(source=folder / "README.md"),
        covers=[spec.FileDescr(source=folder / "cover.png")],
        tags=["segmentation", "unet", "onnx", "segcore", *facts.tags],
        version=segcore.__version__,
        inputs=inputs,
        outputs=outputs,
        weights=spec.WeightsDescr(
            onnx=spec.OnnxWeightsDescr(source=model, opset_version=int(card.get("opset", 17)))
        ),
        training_data=_training_data(card),
        config=_config(card, float(tensors.output.max())),
    )


def check_package(package: Path) -> None:
    """Run `bioimageio.core.test_model` on ``package`` with the providers the engine would use
    (CUDA when this onnxruntime has it, else the CPU); ExportError naming the failed checks."""
    from bioimageio.core import test_model

    summary = test_model(package, devices=default_providers())
    if summary.status != "passed":
        failed = [d.name for d in summary.details if d.status == "failed"]
        errors = [e.msg for d in summary.details for e in d.errors][:3]
        raise ExportError(f"{package}: bioimageio test_model failed: {failed} {errors}")


def export_package(
    model: Path,
    out_dir: Path,
    sample: Path | None = None,
    force: bool = False,
    authors: Sequence[str] = (),
    maintainers: Sequence[str] = (),
) -> Path:
    """Write and check ``out_dir/<name>.bioimageio.zip`` for the ONNX ``model``; returns its path.
    ``authors`` (``Name;affiliation``) and ``maintainers`` (``Name;affiliation;github-user``)
    as the flags give them.

    Raises ExportError (a model, card or sample that cannot be used, a card name that is not a
    plain file name, a package there already without ``force``, or a failed check).
    """
    from bioimageio.spec import save_bioimageio_package

    people = [person(a) for a in authors], [person(m, "--maintainer") for m in maintainers]
    try:
        engine = Engine(model, providers=["CPUExecutionProvider"])
        card = engine.card
        if not PACKAGE_NAME.fullmatch(card.name) or ".." in card.name:
            raise ExportError(f"{model}: card name {card.name!r} is not a plain file name")
        if (out_dir / f"{card.name}{SUFFIX}").exists() and not force:
            raise ExportError(f"{out_dir / f'{card.name}{SUFFIX}'} exists; --force replaces it")
        if card.normalization not in PACKAGED_NORMALIZATIONS:
            raise ExportError(f"{model}: no bioimage.io operation for {card.normalization}")
        if card.get("invert_brightfield"):  # decided per image (segcore.kinds): no spec operation
            raise ExportError(f"{model}: invert_brightfield has no bioimage.io operation")
        tensors = test_tensors(engine, sample or default_sample(card))
    except ExportError:
        raise
    except UserError as exc:  # a model, card or sample image that cannot be used
        raise ExportError(str(exc)) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{card.name}{SUFFIX}"
    with tempfile.TemporaryDirectory() as scratch, replacing(target) as tmp:
        descr = describe(model, card, Path(scratch), tensors, *people)
        save_bioimageio_package(descr, output_path=tmp)  # tmp keeps the .zip suffix
        check_package(tmp)
    return target


def model_files(paths: Sequence[Path]) -> list[Path]:
    """The ONNX models named: files as given, folders as every ``*.onnx`` inside (sorted)."""
    found: list[Path] = []
    for path in paths:
        found.extend(sorted(path.glob("*.onnx")) if path.is_dir() else [path])
    return found


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m export.bioimageio",
        description="Write a BioImage Model Zoo package (format 0.5) of each exported model and "
        "check it with bioimageio.core's test_model.",
    )
    p.add_argument(
        "models", type=Path, nargs="+", metavar="MODEL", help="NAME.onnx files or folders of them"
    )
    p.add_argument("--out", type=Path, default=Path("."), help="output folder (default: .)")
    p.add_argument("--force", action="store_true", help="replace a package of the same name")
    p.add_argument(
        "--sample", type=Path, help="image for the test tensors (default: a bundled sample)"
    )
    p.add_argument(
        "--author",
        action="append",
        default=[],
        metavar="NAME;AFFILIATION",
        help=f"an author (repeat for several; default: {', '.join(AUTHORS)})",
    )
    p.add_argument(
        "--maintainer",
        action="append",
        default=[],
        metavar="NAME;AFFILIATION;GITHUB_USER",
        help="a maintainer (repeat for several; bioimage.io needs the GitHub user)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: one line per package; exit 2 on a bad argument, 1 when some models failed."""
    args = parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"error: --out {args.out} is a file; give a folder", file=sys.stderr)
        return 2
    try:
        [person(a) for a in args.author] + [person(m, "--maintainer") for m in args.maintainer]
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    models = model_files(args.models)
    if not models:
        print(f"error: {' '.join(map(str, args.models))}: no .onnx model", file=sys.stderr)
        return 2
    quiet_onnxruntime_logs()
    failed = 0
    for model in models:
        try:
            package = export_package(
                model, args.out, args.sample, args.force, args.author, args.maintainer
            )
        except ExportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{package}: {package.stat().st_size / 1e6:.2f} MB, test_model passed")
    if failed:
        print(f"{failed} of {len(models)} models failed", file=sys.stderr)
        return 2 if len(models) == 1 else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
