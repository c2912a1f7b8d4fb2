"""``python -m segcore.data.pack``: a resized plain-layout copy that trains like the original."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from segcore.data import find_samples, load_sample, make_split
from segcore.data.pack import main, pack
from segcore.inference.preprocess import resize_mask


def test_pack_dsb_merges_and_resizes(dsb_dir: Path, tmp_path: Path):
    dst = tmp_path / "packed"
    assert pack(dsb_dir, dst, 16) == 4
    fmt, packed = find_samples(dst)
    assert fmt == "plain" and len(packed) == 4
    assert json.loads((dst / "dataset.json").read_text())["dataset"] == "dsb"
    _, original = find_samples(dsb_dir)
    assert [s.name for s in packed] == [s.name for s in original]
    for src, copy in zip(original, packed, strict=True):
        image, mask = load_sample(copy)
        assert image.shape == (16, 16, 3) and mask.shape == (16, 16)
        np.testing.assert_array_equal(mask, resize_mask(load_sample(src)[1], (16, 16)))
    # the same seed and fractions pick the same images in the copy
    a = make_split(original, (0.5, 0.25, 0.25), seed=4)
    b = make_split(packed, (0.5, 0.25, 0.25), seed=4)
    assert [s.name for s in a["test"]] == [s.name for s in b["test"]]


def test_pack_copies_jpegs_already_at_size(isic_dir: Path, tmp_path: Path):
    dst = tmp_path / "packed"
    assert pack(isic_dir, dst, 32) == 6
    src = isic_dir / "images" / "ISIC_0000000.jpg"
    assert (dst / "images" / "ISIC_0000000.jpg").read_bytes() == src.read_bytes()
    assert (dst / "masks" / "ISIC_0000000.png").exists()


def test_pack_cli_bad_source(tmp_path: Path, capsys):
    assert main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
