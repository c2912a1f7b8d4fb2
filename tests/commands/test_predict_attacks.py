"""``python -m segcore.predict`` against what an attack run tried: name collisions, non-UTF-8
names, outputs of another model, huge object counts, decompression bombs, 32-bit and float
TIFFs, label-image truths, and the automatic model choice on the shipped models."""

from __future__ import annotations

import csv
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from segcore.commands.predict import main, write_outputs
from segcore.inference.engine import LoadedImage, Prediction
from segcore.scoring.truth import read_truth

REPO = Path(__file__).resolve().parents[2]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def bright_squares(size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A dark RGB image with three bright squares (what the ``bright`` model segments exactly),
    and their label image (ids 1, 2, 3)."""
    image = np.full((size, size, 3), 20, np.uint8)
    labels = np.zeros((size, size), np.uint8)
    for i, (r, c) in enumerate([(2, 2), (12, 20), (22, 6)], start=1):
        image[r : r + 8, c : c + 8] = 235
        labels[r : r + 8, c : c + 8] = i
    return image, labels


def test_stems_never_collide_and_the_csv_names_each_rows_files(
    bright_models_dir: Path, tmp_path: Path
):
    image, _ = bright_squares()
    for folder, name in [("d1", "a.png"), ("d2", "a.png"), ("d3", "a_2.png"), ("d4", "A.png")]:
        (tmp_path / folder).mkdir()
        Image.fromarray(image).save(tmp_path / folder / name)
    out = tmp_path / "out"
    model = str(bright_models_dir / "bright.onnx")
    assert main(["--model", model, str(tmp_path / "d*" / "*.png"), "--out", str(out)]) == 0
    rows = read_csv(out / "predictions.csv")
    outputs = [r["outputs"].split(";") for r in rows]
    masks = [o[-1] for o in outputs]
    assert len(set(m.casefold() for m in masks)) == 4  # distinct even without case
    assert {r["file"] for r in rows} == {"a.png", "a_2.png", "A.png"}
    for files in outputs:
        assert all((out / f).is_file() for f in files)
    assert len(list(out.glob("*_mask.png"))) == 4


def test_a_non_utf8_file_name_does_not_end_the_batch(
    bright_models_dir: Path, tmp_path: Path, capsys
):
    image, _ = bright_squares()
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(image).save(folder / "good.png")
    raw = os.path.join(os.fsencode(folder), b"caf\xe9.png")
    with open(raw, "wb") as f:
        Image.fromarray(image).save(f, format="PNG")
    out = tmp_path / "out"
    assert (
        main(["--model", str(bright_models_dir / "bright.onnx"), str(folder), "--out", str(out)])
        == 0
    )
    rows = read_csv(out / "predictions.csv")
    assert sorted(r["file"] for r in rows) == ["caf\ufffd.png", "good.png"]
    assert all(r["error"] == "" for r in rows)
    assert (out / "caf\ufffd_mask.png").is_file()


def test_skip_existing_redoes_outputs_of_another_model(
    bright_models_dir: Path, tmp_path: Path, capsys
):
    image, _ = bright_squares()
    Image.fromarray(image).save(tmp_path / "x.png")
    out = tmp_path / "out"
    base = [str(tmp_path / "x.png"), "--out", str(out), "--skip-existing"]
    assert main(["--model", str(bright_models_dir / "bright.onnx"), *base]) == 0
    capsys.readouterr()
    assert main(["--model", str(bright_models_dir / "bright_gray.onnx"), *base]) == 0
    assert "skipping" not in capsys.readouterr().err
    assert read_csv(out / "predictions.csv")[0]["model"] == "bright_gray"
    assert main(["--model", str(bright_models_dir / "bright_gray.onnx"), *base]) == 0
    assert "skipping 1 finished image(s)" in capsys.readouterr().err
    assert main(["--model", str(bright_models_dir / "bright_gray.onnx"), *base, "--tta"]) == 0
    assert "skipping" not in capsys.readouterr().err


def test_more_than_65535_nuclei_are_written_as_a_32_bit_tiff(tmp_path: Path):
    labels = np.zeros((40, 40), np.int32)
    labels[2:6, 2:6], labels[10:14, 10:14], labels[20:30, 20:30] = 1, 70_000, 100_000
    pred = Prediction(
        probability=np.zeros((40, 40), np.float16),
        mask=labels > 0,
        width=40,
        height=40,
        area_px=int((labels > 0).sum()),
        area_pct=0.0,
        components=3,
        seconds=0.0,
        labels=labels,
        objects=[],
    )
    image = LoadedImage(np.zeros((40, 40, 3), np.uint8), 40, 40, 0.0)
    names = write_outputs(tmp_path, "many", image, pred)
    assert names[0] == "many_labels.tif" and names[-1] == "many_mask.png"
    assert np.array_equal(np.asarray(Image.open(tmp_path / "many_labels.tif")), labels)
    assert np.array_equal(read_truth(tmp_path / "many_labels.tif"), labels)


def png_bomb(path: Path, side: int = 50_000) -> None:
    """A tiny PNG file that declares a side x side greyscale image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b""))


def test_bomb_is_over_the_limit_and_wide_tiffs_are_mapped_by_range(
    bright_models_dir: Path, tmp_path: Path, capsys
):
    png_bomb(tmp_path / "bomb.png")
    image, _ = bright_squares()
    gray = image[..., 0].astype(np.float32)
    tifffile.imwrite(tmp_path / "wide_int.tif", (gray * 1000).astype(np.int32))
    tifffile.imwrite(tmp_path / "wide_float.tif", gray * 40.0)
    out = tmp_path / "out"
    code = main(
        ["--model", str(bright_models_dir / "bright.onnx"), str(tmp_path), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "bomb.png: 2,500-megapixel image is above the" in err and "damaged" not in err
    assert err.count("mapped by their range") == 2
    rows = {r["file"]: r for r in read_csv(out / "predictions.csv")}
    for name in ("wide_int.tif", "wide_float.tif"):  # not clipped to white: the squares remain
        assert rows[name]["count"] == "3" and rows[name]["area_px"] == str(3 * 64)


def test_truth_label_image_gives_the_right_dice(bright_models_dir: Path, tmp_path: Path):
    image, labels = bright_squares()
    (tmp_path / "in").mkdir()
    (tmp_path / "gt").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "cells.png")
    Image.fromarray(labels).save(tmp_path / "gt" / "cells_labels.png")  # ids 1..3: all <= 127
    out = tmp_path / "out"
    model = str(bright_models_dir / "bright.onnx")
    args = [
        "--model",
        model,
        str(tmp_path / "in"),
        "--out",
        str(out),
        "--truth",
        str(tmp_path / "gt"),
    ]
    assert main(args) == 0
    row = read_csv(out / "predictions.csv")[0]
    assert row["dice"] == "1.0000" and row["iou"] == "1.0000"
    assert row["annotated"] == "3" and row["truth"] == "cells_labels.png"
    assert main([*args[:-1], str(tmp_path / "missing")]) == 2


@pytest.mark.parametrize(
    ("sample", "families"),
    [
        ("samples/isic/images/ISIC_0000082.jpg", ("isic",)),
        ("samples/dsb/stage1_train", ("dsb", "nuclei")),
    ],
)
def test_model_auto_picks_the_model_of_the_images_kind(
    sample: str, families: tuple[str, ...], tmp_path: Path, capsys
):
    out = tmp_path / "out"
    assert main(["--model", "auto", str(REPO / sample), "--out", str(out)]) == 0
    rows = read_csv(out / "predictions.csv")
    assert rows and all(r["model"].startswith(families) for r in rows)
    assert "does not look like" not in capsys.readouterr().err


def test_an_explicit_model_warns_once_per_mismatched_image(tmp_path: Path, capsys):
    photo = REPO / "samples/isic/images/ISIC_0000082.jpg"
    model = str(REPO / "models/dsb_unet_bn.onnx")
    assert main(["--model", model, str(photo), "--out", str(tmp_path / "o")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(lines) == 1
    assert "skin-lesion photos of isic_improved_unet" in lines[0] and "ISIC_0000082" in lines[0]
