"""``python -m segcore.predict``: masks, overlays and CSV for a folder with bad files in it."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcore.predict import expand_inputs, main, output_stems


@pytest.fixture
def image_folder(tmp_path: Path, disk_image) -> Path:
    """Three good images (PNG, JPEG, grayscale TIFF), a corrupt PNG and a text file."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name, (h, w), mode in [
        ("a.png", (40, 60), "RGB"),
        ("b.jpg", (33, 33), "RGB"),
        ("c.tif", (50, 20), "L"),
    ]:
        image, _ = disk_image(h, w, [(h // 2, w // 2, min(h, w) // 3)])
        Image.fromarray(image).convert(mode).save(folder / name)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot an image")
    (folder / "notes.txt").write_text("hello")
    return folder


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_folder_with_a_corrupt_file(
    bright_models_dir: Path, image_folder: Path, tmp_path: Path, capsys
):
    out = tmp_path / "out"
    code = main(
        [
            "--model",
            str(bright_models_dir / "bright.onnx"),
            str(image_folder),
            "--out",
            str(out),
            "--batch-size",
            "2",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "broken.png" in err
    rows = read_csv(out / "predictions.csv")
    assert [Path(r["file"]).name for r in rows] == ["a.png", "b.jpg", "broken.png", "c.tif"]
    assert list(rows[0]) == [
        "file",
        "width",
        "height",
        "area_px",
        "area_pct",
        "components",
        "count",
        "seconds",
        "error",
    ]
    bad = rows[2]
    assert "broken.png" in bad["error"] and bad["width"] == ""
    for row, (w, h) in zip(
        [rows[0], rows[1], rows[3]], [(60, 40), (33, 33), (20, 50)], strict=True
    ):
        assert row["error"] == ""
        assert (int(row["width"]), int(row["height"])) == (w, h)
        assert int(row["components"]) == 1 and int(row["area_px"]) > 0
        assert int(row["count"]) == 1  # a semantic model counts connected components
        stem = Path(row["file"]).stem
        mask = np.asarray(Image.open(out / f"{stem}_mask.png"))
        assert mask.shape == (h, w) and set(np.unique(mask)) == {0, 255}
        assert (mask == 255).sum() == int(row["area_px"])
        assert Image.open(out / f"{stem}_overlay.png").size == (w, h)


def test_options_change_the_masks(bright_models_dir: Path, image_folder: Path, tmp_path: Path):
    model = str(bright_models_dir / "bright.onnx")
    image = str(image_folder / "a.png")
    assert (
        main(
            [
                "--model",
                model,
                image,
                "--out",
                str(tmp_path / "t0"),
                "--threshold",
                "0",
                "--tta",
                "--no-postprocess",
            ]
        )
        == 0
    )
    assert read_csv(tmp_path / "t0" / "predictions.csv")[0]["area_pct"] == "100.000"


def test_all_bad_or_nothing_found_exits_2(
    bright_models_dir: Path, image_folder: Path, tmp_path: Path
):
    model = str(bright_models_dir / "bright.onnx")
    bad = [
        str(image_folder / "broken.png"),
        str(image_folder / "notes.txt"),
        str(tmp_path / "missing.jpg"),
    ]
    assert main(["--model", model, *bad, "--out", str(tmp_path / "o1")]) == 2
    rows = read_csv(tmp_path / "o1" / "predictions.csv")
    assert all(r["error"] for r in rows) and len(rows) == 3
    assert (
        main(["--model", model, str(tmp_path / "nothing" / "*.png"), "--out", str(tmp_path / "o2")])
        == 2
    )


def test_missing_model_exits_2(tmp_path: Path, capsys):
    assert main(["--model", str(tmp_path / "none.onnx"), "x.png", "--out", str(tmp_path)]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_expand_inputs_and_stems(image_folder: Path):
    found = expand_inputs(
        [str(image_folder), str(image_folder / "*.png"), str(image_folder / "notes.txt")]
    )
    assert [p.name for p in found] == ["a.png", "b.jpg", "broken.png", "c.tif", "notes.txt"]
    assert output_stems([Path("x/a.png"), Path("y/a.jpg"), Path("b.png"), Path("z/a.tif")]) == [
        "a",
        "a_2",
        "b",
        "a_3",
    ]


def test_command_line_entry_point(bright_models_dir: Path, image_folder: Path, tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "segcore.predict",
            "--model",
            str(bright_models_dir / "bright.onnx"),
            str(image_folder / "a.png"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[1],
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "a_mask.png").is_file()
    assert "1/1 images segmented" in result.stderr
