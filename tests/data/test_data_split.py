"""Train/val/test split: deterministic by seed, disjoint and complete, fractions, split.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segcore.data import Sample, make_split, read_split, write_split
from segcore.data.split import parse_fractions
from segcore.errors import DataError


def fake_samples(n: int, root: Path = Path("/data")) -> list[Sample]:
    return [
        Sample(root / "images" / f"s{i:03d}.png", (root / "masks" / f"s{i:03d}.png",))
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("fractions", "n", "sizes"),
    [
        ((0.8, 0.1, 0.1), 100, (80, 10, 10)),
        ((0.8, 0.1, 0.1), 24, (20, 2, 2)),
        ((0.6, 0.2, 0.2), 100, (60, 20, 20)),
        ((0.6, 0.2, 0.2), 12, (8, 2, 2)),
        ((0.8, 0.1, 0.1), 5, (3, 1, 1)),  # val and test get at least one image
        ((1.0, 0.0, 0.0), 7, (7, 0, 0)),
    ],
)
def test_split_sizes(fractions, n, sizes):
    split = make_split(fake_samples(n), fractions, seed=0)
    assert tuple(len(split[k]) for k in ("train", "val", "test")) == sizes


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.6, 0.2, 0.2)])
def test_split_is_disjoint_and_complete(fractions):
    samples = fake_samples(57)
    split = make_split(samples, fractions, seed=3)
    parts = [set(split[k]) for k in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == len(samples)
    assert set().union(*parts) == set(samples)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_split_is_deterministic_by_seed():
    samples = fake_samples(40)
    a = make_split(samples, (0.6, 0.2, 0.2), seed=7)
    b = make_split(list(samples), (0.6, 0.2, 0.2), seed=7)
    c = make_split(samples, (0.6, 0.2, 0.2), seed=8)
    assert a == b
    assert a["test"] != c["test"]
    assert a["train"] != samples[:24]  # shuffled, not the first files


def test_too_few_samples():
    with pytest.raises(DataError, match="too few"):
        make_split(fake_samples(2), (0.8, 0.1, 0.1), seed=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.8,0.1,0.1", (0.8, 0.1, 0.1)), ("0.6, 0.2, 0.2", (0.6, 0.2, 0.2)), ("1,0,0", (1, 0, 0))],
)
def test_parse_fractions(text, expected):
    assert parse_fractions(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["", "0.8,0.2", "0.5,0.5,0.5", "a,b,c", "0.8;0.1;0.1", "-0.1,0.6,0.5", "0.7,0.1,0.1"]
)
def test_bad_split_strings_are_rejected(text):
    with pytest.raises(DataError, match="--split"):
        parse_fractions(text)


def test_write_read_split_round_trip(tmp_path: Path):
    root = tmp_path / "dataset"
    samples = fake_samples(10, root)
    split = make_split(samples, (0.6, 0.2, 0.2), seed=1)
    path = tmp_path / "split.json"
    write_split(path, split, root, {"seed": 1, "fractions": "0.6,0.2,0.2"})
    obj = json.loads(path.read_text())
    assert obj["root"] == str(root.resolve())
    assert obj["seed"] == 1 and obj["fractions"] == "0.6,0.2,0.2"
    assert obj["test"][0]["image"].startswith("images/")  # stored relative to the root
    assert read_split(path) == split
    moved = tmp_path / "elsewhere"
    back = read_split(path, root=moved)
    assert [s.image for s in back["train"]] == [
        moved / s.image.relative_to(root) for s in split["train"]
    ]
