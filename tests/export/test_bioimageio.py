"""BioImage Model Zoo packages: hand-made models packaged, then checked with bioimageio.core."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from handmade_models import write_nuclei_model

from export import ExportError
from export.bioimageio import export_package, main

# bioimageio.core takes seconds to import: only the worker that runs this module pays for it
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("bioimageio") is None
    or importlib.util.find_spec("bioimageio.core") is None,
    reason="bioimageio.core is not installed",
)


@contextlib.contextmanager
def recorded_checks() -> Iterator[list[tuple[Path, dict, Any]]]:
    """Every ``bioimageio.core.test_model`` call made in the block (export's own check of each
    package): (file, keyword arguments, summary). Tests read these summaries instead of running
    test_model again on the same bytes (11.7 of this module's 30 core-seconds, measured here)."""
    import bioimageio.core

    checks: list[tuple[Path, dict, Any]] = []
    test_model = bioimageio.core.test_model

    def recording(source, **kwargs):
        summary = test_model(source, **kwargs)
        checks.append((Path(source), kwargs, summary))
        return summary

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bioimageio.core, "test_model", recording)
        yield checks


def assert_checked_and_passed(package: Path, check: tuple[Path, dict, Any]) -> None:
    """Export checked ``package`` with test_model on the CPU before it put it in place (the
    checked file is the one moved to the package's name), and the check passed."""
    checked, kwargs, summary = check
    assert package.name.endswith(".bioimageio.zip") and checked.suffix == ".zip"
    assert not checked.exists() and package.is_file()
    assert kwargs["devices"][-1] == "CPUExecutionProvider"
    assert summary.status == "passed", summary.display()


REPO = Path(__file__).resolve().parents[2]
DSB_SAMPLE = next((REPO / "samples/dsb/stage1_train").glob("*/images/*.png"))


def rdf(package: Path) -> dict:
    """The package's rdf.yaml as a dict."""
    with zipfile.ZipFile(package) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory, bright_models_dir: Path):
    """Packages of the hand-made RGB, gray and instance models, and export's check of each
    (`recorded_checks`)."""
    folder = tmp_path_factory.mktemp("zoo_models")
    out = folder / "packages"
    models = {
        "bright": bright_models_dir / "bright.onnx",
        "bright_gray": bright_models_dir / "bright_gray.onnx",
        "nuclei": write_nuclei_model(folder),
    }
    with recorded_checks() as checks:
        packages = {name: export_package(path, out) for name, path in models.items()}
    return packages, checks


@pytest.fixture(scope="module")
def packages(zoo) -> dict[str, Path]:
    return zoo[0]


def test_packages_pass_test_model(zoo):
    packages, checks = zoo
    assert len(checks) == len(packages)
    for package, check in zip(packages.values(), checks, strict=True):
        assert_checked_and_passed(package, check)


def test_description_of_an_rgb_model(packages: dict[str, Path]):
    data = rdf(packages["bright"])
    assert data["format_version"].startswith("0.5")
    (inp,) = data["inputs"]
    assert [a.get("id", a["type"]) for a in inp["axes"]] == ["batch", "y", "x", "channel"]
    assert inp["axes"][-1]["channel_names"] == ["r", "g", "b"]
    assert inp["data"]["type"] == "uint8"
    ops = [p["id"] for p in inp["preprocessing"]]
    assert "scale_linear" in ops and ops[-1] == "ensure_dtype"
    scale = next(p for p in inp["preprocessing"] if p["id"] == "scale_linear")
    assert scale["kwargs"]["gain"] == pytest.approx(1 / 255)
    assert data["weights"]["onnx"]["opset_version"] == 17
    dois = {c.get("doi") for c in data["cite"]}
    assert "10.1007/978-3-319-24574-4_28" in dois
    assert data["config"]["segcore"]["version"]
    assert data["license"] and data["authors"]


def test_gray_model_has_one_input_channel(packages: dict[str, Path]):
    data = rdf(packages["bright_gray"])
    assert data["inputs"][0]["axes"][-1]["channel_names"] == ["gray"]
    assert "10.1109/ISBI.2018.8363547" in {c.get("doi") for c in data["cite"]}  # ISIC data set


def test_instance_model_package(packages: dict[str, Path]):
    data = rdf(packages["nuclei"])
    y = data["inputs"][0]["axes"][1]
    assert y["size"] == {"min": 4, "step": 4}  # the stride 2**depth
    assert data["outputs"][0]["axes"][-1]["channel_names"] == ["boundary", "foreground"]
    assert data["config"]["segcore"]["instances"]["foreground"] == 0.5
    with zipfile.ZipFile(packages["nuclei"]) as zf:
        readme = zf.read("README.md").decode()
        test_input = np.load(zf.open("test_input.npy"))
        test_output = np.load(zf.open("test_output.npy"))
    assert "watershed" in readme and "-m segcore.predict" in readme
    assert test_input.dtype == np.uint8 and test_input.shape[0] == 1
    assert test_input.shape[1] % 4 == 0 and test_input.shape[2] % 4 == 0
    assert test_output.shape == (*test_input.shape[:3], 2)


def test_wrong_test_output_fails_the_check(tmp_path: Path, bright_models_dir: Path):
    """The check is real: a package whose test output does not match the model is refused."""
    from bioimageio.spec import save_bioimageio_package

    from export.bioimageio import check_package, describe
    from export.zoo_arrays import TestTensors
    from segcore.inference.engine import Engine

    model = bright_models_dir / "bright.onnx"
    engine = Engine(model, providers=["CPUExecutionProvider"])
    image = np.full((1, 16, 16, 3), 200, dtype=np.uint8)  # the default stride: 16
    wrong = TestTensors(image, np.full((1, 16, 16, 1), 0.5, np.float32), image[0])  # truth: ~1
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    package = save_bioimageio_package(
        describe(model, engine.card, scratch, wrong), output_path=tmp_path / "wrong.zip"
    )
    with pytest.raises(ExportError, match="test_model failed"):
        check_package(package)


def test_cli_loops_over_a_folder(tmp_path: Path, bright_models_dir: Path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    for suffix in (".onnx", ".json"):
        shutil.copy(bright_models_dir / f"bright{suffix}", models)
    (models / "broken.onnx").write_bytes(b"not onnx")
    (models / "broken.json").write_text((models / "bright.json").read_text())
    code = main([str(models), "--out", str(tmp_path / "out"), "--sample", str(DSB_SAMPLE)])
    captured = capsys.readouterr()
    assert code == 1
    assert "bright.bioimageio.zip" in captured.out and "test_model passed" in captured.out
    assert "error: " in captured.err and "broken.onnx" in captured.err
    assert "1 of 2 models failed" in captured.err
    assert not (tmp_path / "out" / "broken.bioimageio.zip").exists()


def test_cli_missing_model_is_one_line(tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "export.bioimageio", str(tmp_path / "nope.onnx"), "--out", "x"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "nope.onnx" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_export_command_writes_the_package(tiny_run_dir: Path, tmp_path: Path, capsys):
    from export.__main__ import main as export_main

    out = tmp_path / "models"
    code = export_main([str(tiny_run_dir), "--out", str(out), "--max-images", "1", "--bioimageio"])
    assert code == 0, capsys.readouterr().err
    (package,) = out.glob("*.bioimageio.zip")
    assert package.name == "plain_unet.bioimageio.zip"
    assert rdf(package)["inputs"][0]["axes"][1]["size"] == {"min": 4, "step": 4}  # depth 2


def test_per_image_inversion_is_refused(tmp_path: Path, bright_models_dir: Path):
    """A card whose engine inverts bright-field images per image cannot be described."""
    shutil.copy(bright_models_dir / "bright.onnx", tmp_path)
    card = json.loads((bright_models_dir / "bright.json").read_text())
    (tmp_path / "bright.json").write_text(json.dumps({**card, "invert_brightfield": True}))
    with pytest.raises(ExportError, match="invert_brightfield"):
        export_package(tmp_path / "bright.onnx", tmp_path / "out")


def test_out_a_file_existing_packages_and_path_names_are_one_line(
    tmp_path: Path, bright_models_dir: Path, capsys
):
    """--out naming a file, a package already there without --force and a card name that is
    not a plain file name each end in one line, before any package is written."""
    from export.bioimageio import main

    (tmp_path / "file").write_text("x")
    assert main([str(bright_models_dir / "bright.onnx"), "--out", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.strip().endswith("is a file; give a folder")
    out = tmp_path / "out"
    out.mkdir()
    (out / "bright.bioimageio.zip").write_text("an older package")
    with pytest.raises(ExportError, match="exists; --force replaces it"):
        export_package(bright_models_dir / "bright.onnx", out)
    assert (out / "bright.bioimageio.zip").read_text() == "an older package"
    shutil.copy(bright_models_dir / "bright.onnx", tmp_path)
    card = json.loads((bright_models_dir / "bright.json").read_text())
    (tmp_path / "bright.json").write_text(json.dumps({**card, "name": "../escape"}))
    with pytest.raises(ExportError, match="card name '../escape' is not a plain file name"):
        export_package(tmp_path / "bright.onnx", out)


@pytest.fixture(scope="module")
def multi_source_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hand-made instance model with a percentile card trained on DSB and MoNuSeg
    (CC BY-NC-SA), per-kind decoding, two authors and a maintainer, packaged and checked."""
    from export.card_writer import source_credit

    folder = tmp_path_factory.mktemp("multi")
    model = write_nuclei_model(folder, "multi")
    card = json.loads(model.with_suffix(".json").read_text())
    counts = {"dsb": {"train": 480, "val": 60, "test": 60}, "monuseg2018": {"train": 24}}
    card |= {
        "dataset": "dsb+monuseg2018",
        **source_credit("dsb+monuseg2018", counts),
        "normalization": "percentile",
        "normalization_percentiles": [2.0, 99.5],
        "instances_by_kind": {"he": {"foreground": 0.6}},
    }
    model.with_suffix(".json").write_text(json.dumps(card))
    with recorded_checks() as checks:
        package = export_package(
            model,
            folder / "out",
            DSB_SAMPLE,
            authors=["Ada Lovelace;Analytical Engines Ltd", "Alan Turing"],
            maintainers=["Bot;bioimage.io;bioimageiobot"],  # a user bioimageio knows offline
        )
    (check,) = checks
    assert_checked_and_passed(package, check)
    return package


def test_multi_source_percentile_package(multi_source_package: Path):
    data = rdf(multi_source_package)
    ops = data["inputs"][0]["preprocessing"]
    scale = next(p for p in ops if p["id"] == "scale_range")
    assert scale["kwargs"]["min_percentile"] == 2.0 and scale["kwargs"]["max_percentile"] == 99.5
    assert set(scale["kwargs"]["axes"]) == {"y", "x", "channel"}  # per sample, channels jointly
    clip = next(p for p in ops if p["id"] == "clip")
    assert (clip["kwargs"]["min"], clip["kwargs"]["max"]) == (-0.5, 2.0)  # the engine's clip
    assert [p["id"] for p in ops].index("clip") > [p["id"] for p in ops].index("scale_range")
    # the MoNuSeg source is CC BY-NC-SA: the package is non-commercial and share-alike
    assert data["license"] == "CC-BY-NC-SA-4.0"
    dois = {c.get("doi") for c in data["cite"]}
    assert {"10.1038/s41592-019-0612-7", "10.1109/TMI.2017.2677499"} <= dois
    assert [a["name"] for a in data["authors"]] == ["Ada Lovelace", "Alan Turing"]
    assert data["authors"][0]["affiliation"] == "Analytical Engines Ltd"
    assert data["maintainers"][0]["github_user"] == "bioimageiobot"
    segcore_config = data["config"]["segcore"]
    assert segcore_config["instances_by_kind"]["he"]["foreground"] == 0.6
    assert segcore_config["card"]["normalization_percentiles"] == [2.0, 99.5]
    assert [s["name"] for s in segcore_config["card"]["sources"]] == ["dsb", "monuseg2018"]
    with zipfile.ZipFile(multi_source_package) as zf:
        readme = zf.read("README.md").decode()
    for words in ("**dsb**", "CC0 1.0", "**monuseg2018**", "CC BY-NC-SA 4.0", "non-commercial"):
        assert words in readme
    assert "share-alike" in readme and "instances_by_kind" in readme
    assert "2.0 and 99.5 percentiles" in readme and "[-0.5, 2.0]" in readme


def test_readme_commands_run_on_the_unpacked_package(multi_source_package: Path, tmp_path: Path):
    """The README's commands, as written, unpack the zip and segment an image with segcore."""
    shutil.copy(multi_source_package, tmp_path)
    with zipfile.ZipFile(multi_source_package) as zf:
        readme = zf.read("README.md").decode()
    block = readme.split("## Use", 1)[1].split("```")[1]
    commands = [line for line in block.splitlines() if line.startswith("python ")]
    assert len(commands) == 2
    for line in commands:
        words = line.replace("IMAGE", str(DSB_SAMPLE)).replace("OUT", "segmented").split()
        result = subprocess.run(
            [sys.executable, *words[1:]],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},  # this checkout's segcore
        )
        assert result.returncode == 0, result.stderr
    assert list((tmp_path / "segmented").glob("*_labels.png"))


def test_bad_author_and_maintainer_flags_are_one_line(
    tmp_path: Path, bright_models_dir: Path, capsys
):
    model = str(bright_models_dir / "bright.onnx")
    assert main([model, "--out", str(tmp_path), "--maintainer", "Grace Hopper;Navy"]) == 2
    assert "GitHub user" in capsys.readouterr().err
    assert main([model, "--out", str(tmp_path), "--author", ";nobody"]) == 2
    assert capsys.readouterr().err.startswith("error: --author ';nobody'")
    assert not list(tmp_path.glob("*.zip"))
