"""``python -m segcore.predict``: masks, overlays and CSV for a folder with bad files in it."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcore import cli
from segcore.commands.predict import (
    expand_inputs,
    finished_rows,
    main,
    select_shard,
)
from segcore.io.names import output_stems
from segcore.io.results import COLUMNS


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
    assert code == 1  # some images failed
    err = capsys.readouterr().err
    assert "broken.png" in err and "failed: 1 of 4 images:" in err
    rows = read_csv(out / "predictions.csv")
    assert [r["file"] for r in rows] == ["a.png", "b.jpg", "broken.png", "c.tif"]
    assert {r["folder"] for r in rows} == {str(image_folder)}
    assert tuple(rows[0]) == COLUMNS
    assert rows[0]["model"] == "bright" and rows[0]["tta"] == "False"
    assert rows[0]["outputs"] == "a_overlay.png;a_mask.png"
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


def test_expand_inputs_and_stems(image_folder: Path, tmp_path: Path):
    found, empty = expand_inputs(
        [str(image_folder / "notes.txt"), str(image_folder), str(image_folder / "*.png")]
    )
    assert [p.name for p in found] == ["a.png", "b.jpg", "broken.png", "c.tif", "notes.txt"]
    assert empty == []
    (tmp_path / "void").mkdir()
    found, empty = expand_inputs([str(tmp_path / "void"), str(tmp_path / "*.gif")])
    assert found == [] and empty == [str(tmp_path / "void"), str(tmp_path / "*.gif")]
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
            "segcore.commands.predict",
            "--model",
            str(bright_models_dir / "bright.onnx"),
            str(image_folder / "a.png"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "o" / "a_mask.png").is_file()
    assert "1/1 images segmented" in result.stderr


# --- shards -------------------------------------------------------------------------------------


@pytest.fixture
def many_images(tmp_path: Path, disk_image) -> Path:
    """Seven small PNGs in two folders (x/, y/), two of them with the same stem."""
    root = tmp_path / "in"
    for folder, names in [("x", ["p1", "p2", "p3", "dup"]), ("y", ["q1", "q2", "dup"])]:
        (root / folder).mkdir(parents=True)
        for i, name in enumerate(names):
            image, _ = disk_image(24, 24 + 4 * i, [(12, 12, 6)], seed=i)
            Image.fromarray(image).save(root / folder / f"{name}.png")
    return root


def test_shards_partition_any_list():
    items = list(range(23))
    for n in range(1, 8):
        parts = [select_shard(items, (k, n)) for k in range(1, n + 1)]
        assert sorted(x for part in parts for x in part) == items
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert select_shard(items, None) == items
    assert cli.shard("2/5") == (2, 5) and cli.shard(" 1 / 1 ") == (1, 1)


@pytest.mark.parametrize("value", ["0/3", "4/3", "1/0", "3", "a/b", "-1/2", "1/2/3", ""])
def test_bad_shard_is_one_line_exit_2(value: str, tmp_path: Path, capsys):
    args = ["--model", str(tmp_path / "none.onnx"), "x.png", "--out", str(tmp_path / "o")]
    assert main([*args, f"--shard={value}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --shard") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_shards_cover_every_input_exactly_once(
    bright_models_dir: Path, many_images: Path, tmp_path: Path
):
    model = str(bright_models_dir / "bright.onnx")
    out = tmp_path / "out"
    inputs = [str(many_images / "y"), str(many_images / "x")]  # argument order does not matter
    for k in (3, 1, 2):
        assert main(["--model", model, *inputs, "--out", str(out), "--shard", f"{k}/3"]) == 0
    assert not (out / "predictions.csv").exists()
    shards = [read_csv(out / f"predictions-{k}-of-3.csv") for k in (1, 2, 3)]
    files = [str(Path(r["folder"], r["file"])) for rows in shards for r in rows]
    expected = sorted(str(p) for p in many_images.glob("*/*.png"))
    assert sorted(files) == expected and len(files) == len(set(files)) == 7
    assert [len(rows) for rows in shards] == [3, 2, 2]
    # output names are computed over the whole list, so shards never overwrite each other
    masks = sorted(p.name for p in out.glob("*_mask.png"))
    assert masks == sorted(f"{s}_mask.png" for s in ["p1", "p2", "p3", "dup", "dup_2", "q1", "q2"])
    # one shard alone (no --shard) gives the same names and rows as the merged shards
    assert main(["--model", model, *inputs, "--out", str(tmp_path / "all")]) == 0
    whole = read_csv(tmp_path / "all" / "predictions.csv")
    assert sorted(p.name for p in (tmp_path / "all").glob("*_mask.png")) == masks
    by_file = {(r["folder"], r["file"]): r for rows in shards for r in rows}
    for row in whole:
        assert {k: v for k, v in row.items() if k != "seconds"} == {
            k: v for k, v in by_file[row["folder"], row["file"]].items() if k != "seconds"
        }


@pytest.mark.skipif(shutil.which("awk") is None, reason="awk not installed")
def test_readme_merge_one_liner(bright_models_dir: Path, many_images: Path, tmp_path: Path):
    model = str(bright_models_dir / "bright.onnx")
    out = tmp_path / "preds"
    for k in (1, 2):
        main(["--model", model, str(many_images / "x"), "--out", str(out), "--shard", f"{k}/2"])
    command = next(
        line.split("# ")[0].strip()
        for line in (Path(__file__).parents[2] / "README.md").read_text().splitlines()
        if line.startswith("awk ")
    )
    subprocess.run(["bash", "-c", command], cwd=tmp_path, check=True)
    merged = read_csv(out / "predictions.csv")
    assert sorted(r["file"] for r in merged) == sorted(
        p.name for p in (many_images / "x").iterdir()
    )


def test_a_shard_without_inputs_writes_an_empty_csv(
    bright_models_dir: Path, many_images: Path, tmp_path: Path
):
    model = str(bright_models_dir / "bright.onnx")
    image = str(many_images / "x" / "p1.png")
    assert main(["--model", model, image, "--out", str(tmp_path / "o"), "--shard", "2/2"]) == 0
    assert read_csv(tmp_path / "o" / "predictions-2-of-2.csv") == []


# --- skip-existing ------------------------------------------------------------------------------


def test_skip_existing_resumes_an_interrupted_batch(
    bright_models_dir: Path, many_images: Path, tmp_path: Path, capsys
):
    model = str(bright_models_dir / "bright.onnx")
    out = tmp_path / "out"
    args = ["--model", model, str(many_images / "x"), "--out", str(out), "--batch-size", "2"]
    assert main(args) == 0
    first = read_csv(out / "predictions.csv")
    assert [Path(r["file"]).stem for r in first] == ["dup", "p1", "p2", "p3"]
    # leave what a kill leaves: the CSV still in its .part file with a torn last row (p3), p2's
    # mask not written yet (killed between overlay and mask), a half-written temporary mask
    lines = (out / "predictions.csv").read_text().splitlines(keepends=True)
    (out / "predictions.csv").unlink()
    (out / "predictions.csv.part").write_text("".join(lines[:-1]) + lines[-1][:12])
    (out / "p2_mask.png").unlink()
    (out / ".tmp-999-p2_mask.png").write_bytes(b"\x89PNG half")
    kept = {n: (out / f"{n}_mask.png").stat() for n in ("dup", "p1", "p3")}
    capsys.readouterr()

    assert main([*args, "--skip-existing"]) == 0
    assert "skipping 2 finished image(s)" in capsys.readouterr().err
    rows = read_csv(out / "predictions.csv")
    assert [r["file"] for r in rows] == [r["file"] for r in first]
    assert not (out / "predictions.csv.part").exists()
    assert rows[:2] == first[:2]  # dup and p1 finished: their rows carried over (same seconds)
    for name in ("dup", "p1"):  # ... and their files not rewritten
        assert (out / f"{name}_mask.png").stat().st_ino == kept[name].st_ino
    # p3 (its row was torn) is redone; p2 (no mask) is redone
    assert (out / "p3_mask.png").stat().st_ino != kept["p3"].st_ino
    assert (out / "p2_mask.png").is_file()
    assert all(r["error"] == "" for r in rows)

    # a finished batch: everything is skipped and the CSV stays the same
    assert main([*args, "--skip-existing"]) == 0
    assert "skipping 4 finished image(s)" in capsys.readouterr().err
    assert read_csv(out / "predictions.csv") == rows


def test_skip_existing_retries_failed_images(
    bright_models_dir: Path, image_folder: Path, tmp_path: Path, disk_image
):
    model = str(bright_models_dir / "bright.onnx")
    out = tmp_path / "out"
    args = ["--model", model, str(image_folder), "--out", str(out)]
    assert main(args) == 1
    assert (str(image_folder), "broken.png") not in finished_rows(out / "predictions.csv")
    image, _ = disk_image(20, 20, [(10, 10, 5)])
    Image.fromarray(image).save(image_folder / "broken.png")  # the user fixed the file
    assert main([*args, "--skip-existing"]) == 0
    rows = {Path(r["file"]).name: r for r in read_csv(out / "predictions.csv")}
    assert rows["broken.png"]["error"] == "" and rows["broken.png"]["width"] == "20"


# --- data-set folders, --recursive --------------------------------------------------------------


def test_dataset_folders_give_their_images_not_their_masks(tmp_path: Path, disk_image):
    image, mask = disk_image(16, 16, [(8, 8, 4)])
    isic = tmp_path / "isic"
    for sub in ("images", "masks"):
        (isic / sub).mkdir(parents=True)
    for stem in ("ISIC_0000001", "ISIC_0000002"):
        Image.fromarray(image).save(isic / "images" / f"{stem}.jpg")
        Image.fromarray(mask).save(isic / "masks" / f"{stem}_segmentation.png")
    Image.fromarray(image).save(isic / "images" / "ISIC_0000001_superpixels.png")
    dsb = tmp_path / "stage1_train"
    for sample_id in ("aa11", "bb22"):
        (dsb / sample_id / "images").mkdir(parents=True)
        (dsb / sample_id / "masks").mkdir()
        Image.fromarray(image).save(dsb / sample_id / "images" / f"{sample_id}.png")
        for i in range(2):
            Image.fromarray(mask).save(dsb / sample_id / "masks" / f"n{i}.png")
    found, _ = expand_inputs([str(isic)])
    assert [p.relative_to(isic).as_posix() for p in found] == [
        "images/ISIC_0000001.jpg",
        "images/ISIC_0000002.jpg",
    ]
    found, _ = expand_inputs([str(dsb)])
    assert [p.relative_to(dsb).as_posix() for p in found] == [
        "aa11/images/aa11.png",
        "bb22/images/bb22.png",
    ]
    found, _ = expand_inputs([str(tmp_path)])  # the folder holding stage1_train/
    assert [p.name for p in found] == ["aa11.png", "bb22.png"]


def test_recursive_and_nothing_found_names_the_folder(
    bright_models_dir: Path, many_images: Path, tmp_path: Path, capsys
):
    model = str(bright_models_dir / "bright.onnx")
    assert main(["--model", model, str(many_images), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no input images found in {many_images}" in err
    assert "--recursive" in err
    assert not (tmp_path / "o").exists()
    code = main(["--model", model, str(many_images), "--out", str(tmp_path / "o"), "--recursive"])
    assert code == 0
    assert len(read_csv(tmp_path / "o" / "predictions.csv")) == 7


# --- bad --out and bad model cards --------------------------------------------------------------


def test_out_naming_a_file_is_one_line_exit_2(
    bright_models_dir: Path, image_folder: Path, tmp_path: Path, capsys
):
    model = str(bright_models_dir / "bright.onnx")
    target = tmp_path / "results.csv"
    target.write_text("keep me")
    assert main(["--model", model, str(image_folder), "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {target} is a file" in err
    assert target.read_text() == "keep me"
    under = target / "sub"
    assert main(["--model", model, str(image_folder), "--out", str(under)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {under}" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"input_size": 0}, "input_size must be a positive whole number divisible by 16"),
        ({"input_size": -5}, "input_size must be a positive whole number"),
        ({"input_size": 100}, "divisible by 16 (2**depth, the model's stride), not 100"),
        ({"input_size": "big"}, "input_size must be"),
        ({"input_size": 32.5}, "input_size must be"),
        ({"threshold": "high"}, "threshold must be a number from 0 to 1, not 'high'"),
        ({"threshold": 1.5}, "threshold must be a number from 0 to 1"),
        ({"threshold": None}, "threshold must be a number"),
        ({"channels": 2}, "channels must be 1 or 3"),
    ],
)
def test_bad_card_values_are_one_line_naming_the_card(
    change: dict, message: str, bright_models_dir: Path, image_folder: Path, tmp_path: Path, capsys
):
    model = tmp_path / "m.onnx"
    shutil.copy(bright_models_dir / "bright.onnx", model)
    card = json.loads((bright_models_dir / "bright.json").read_text())
    card["arch_kwargs"] = {"depth": 4}
    (tmp_path / "m.json").write_text(json.dumps(card | change))
    assert main(["--model", str(model), str(image_folder), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {tmp_path / 'm.json'}: ")
    assert message in err
    (tmp_path / "m.json").write_text(json.dumps(card | {"input_size": 64}))
    assert main(["--model", str(model), str(image_folder / "a.png"), "--out", str(tmp_path)]) == 0


def test_card_that_is_not_an_object(bright_models_dir: Path, tmp_path: Path, capsys):
    model = tmp_path / "m.onnx"
    shutil.copy(bright_models_dir / "bright.onnx", model)
    (tmp_path / "m.json").write_text("[1, 2]")
    assert main(["--model", str(model), "x.png", "--out", str(tmp_path / "o")]) == 2
    assert "m.json: model card is not a JSON object" in capsys.readouterr().err


def test_no_import_time_global_settings():
    """Importing the engine and the CLI leaves Pillow's pixel limit and the backend alone."""
    code = (
        "import os, PIL.Image as I; before = I.MAX_IMAGE_PIXELS; "
        "import segcore.commands.predict, segcore.inference.engine; "
        "assert I.MAX_IMAGE_PIXELS == before, I.MAX_IMAGE_PIXELS; "
        "assert 'KERAS_BACKEND' not in os.environ"
    )
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        env=env,
    )
    assert result.returncode == 0, result.stderr
