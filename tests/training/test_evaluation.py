"""``python -m segcore.evaluate RUN_DIR [--tta]``: per-image scores recomputed independently,
the summary JSON, triptych pictures, unreadable test images, and the picture helpers."""

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

from segcore.commands.evaluate import main
from segcore.data import load_sample, read_split
from segcore.inference.preprocess import prepare, resize_probabilities
from segcore.inference.visualize import contour, mask_to_rgb, overlay, triptych
from segcore.paths import REPO_ROOT as REPO
from segcore.scoring.scores import SCORE_NAMES, binary_scores
from segcore.training.evaluation import load_model, predict_batch


@pytest.fixture
def run_copy(tiny_run_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the shared tiny run folder (evaluation writes into it)."""
    return Path(shutil.copytree(tiny_run_dir, tmp_path / "run"))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_evaluate_writes_csv_json_and_triptychs(run_copy: Path, capsys):
    assert main([str(run_copy)]) == 0
    out = capsys.readouterr().out
    assert "test dice mean" in out
    assert "test_per_image.csv" in out and "test_metrics.json" in out and "triptychs" in out
    test = read_split(run_copy / "split.json")["test"]
    rows = read_rows(run_copy / "test_per_image.csv")
    assert list(rows[0]) == ["image", *SCORE_NAMES, "thresholded_jaccard", "kind"]
    assert [r["image"] for r in rows] == [s.name for s in test]
    summary = json.loads((run_copy / "test_metrics.json").read_text())
    assert summary["n_images"] == len(test) and summary["tta"] is False
    # bright disks on a dark field: fluorescence-like, every image of that kind
    assert {r["kind"] for r in rows} == {"fluorescence"}
    by_kind = summary["by_kind"]
    assert set(by_kind) == {"all", "fluorescence"}
    assert by_kind["fluorescence"]["n_images"] == len(test)
    assert by_kind["all"]["dice"] == pytest.approx(summary["dice"]["mean"])
    floor = [float(r["iou"]) if float(r["iou"]) >= 0.65 else 0.0 for r in rows]
    assert summary["thresholded_jaccard"]["mean"] == pytest.approx(np.mean(floor), abs=1e-4)
    for name in SCORE_NAMES:
        values = [float(r[name]) for r in rows]
        assert summary[name]["mean"] == pytest.approx(np.mean(values), abs=1e-4)
        assert summary[name]["median"] == pytest.approx(np.median(values), abs=1e-4)
    pictures = sorted(p.name for p in (run_copy / "triptychs").glob("*.png"))
    assert any(p.startswith("worst_") for p in pictures)
    assert any(p.startswith("random_") for p in pictures)
    with Image.open(run_copy / "triptychs" / pictures[0]) as img:
        assert img.size == (3 * 256 + 4, 256 + 32)


def test_per_image_scores_equal_binary_scores_recomputed(run_copy: Path):
    import keras

    assert main([str(run_copy)]) == 0
    model = keras.saving.load_model(run_copy / "best.keras", compile=False)
    rows = {r["image"]: r for r in read_rows(run_copy / "test_per_image.csv")}
    for sample in read_split(run_copy / "split.json")["test"]:
        image, truth = load_sample(sample)
        prob = model.predict(prepare(image, (32, 32))[None], verbose=0)[0, ..., -1]
        pred = resize_probabilities(prob, truth.shape) > 0.5  # scored at the original size
        expected = binary_scores(truth, pred)
        for name in SCORE_NAMES:
            assert float(rows[sample.name][name]) == pytest.approx(expected[name], abs=1e-4)


def test_tta_outputs_and_flip_average(run_copy: Path):
    import keras

    plain = (run_copy / "test_metrics.json").read_text()
    assert main([str(run_copy), "--tta"]) == 0
    n_test = len(read_split(run_copy / "split.json")["test"])
    summary = json.loads((run_copy / "test_metrics_tta.json").read_text())
    assert summary["tta"] is True and summary["n_images"] == n_test
    assert len(read_rows(run_copy / "test_per_image_tta.csv")) == n_test
    assert (run_copy / "test_metrics.json").read_text() == plain  # written beside, not over

    model = keras.saving.load_model(run_copy / "best.keras", compile=False)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)

    def probs(batch):
        return np.asarray(model.predict(batch, verbose=0))[..., -1]

    manual = (
        probs(x)
        + probs(x[:, :, ::-1])[:, :, ::-1]
        + probs(x[:, ::-1])[:, ::-1]
        + probs(x[:, ::-1, ::-1])[:, ::-1, ::-1]
    ) / 4
    np.testing.assert_allclose(predict_batch(model, x, tta=True), manual, atol=1e-6)
    np.testing.assert_allclose(predict_batch(model, x), probs(x), atol=1e-6)
    assert not np.allclose(manual, probs(x), atol=1e-4)  # the flips do matter for this model


def test_unreadable_test_image_is_skipped(run_copy: Path, tiny_dataset_dir: Path, capsys):
    data = Path(shutil.copytree(tiny_dataset_dir, run_copy.parent / "data"))
    split = json.loads((run_copy / "split.json").read_text())
    split["root"] = str(data)
    (run_copy / "split.json").write_text(json.dumps(split))
    broken = data / split["test"][0]["image"]
    broken.write_bytes(b"not a png")
    assert main([str(run_copy)]) == 0
    assert broken.name in capsys.readouterr().err
    rows = read_rows(run_copy / "test_per_image.csv")
    assert len(rows) == len(split["test"]) - 1
    assert broken.stem not in {r["image"] for r in rows}


def test_cli_without_best_model_exits_2(tmp_path: Path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(REPO))
    proc = subprocess.run(
        [sys.executable, "-m", "segcore.evaluate", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: ") and "best.keras" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_batch_size_and_threshold_flags(run_copy: Path):
    assert main([str(run_copy)]) == 0
    default = read_rows(run_copy / "test_per_image.csv")
    assert main([str(run_copy), "--batch-size", "1"]) == 0  # same scores, batch by batch
    assert read_rows(run_copy / "test_per_image.csv") == default
    assert main([str(run_copy), "--threshold", "0.999"]) == 0
    strict = json.loads((run_copy / "test_metrics.json").read_text())
    assert strict["threshold"] == 0.999
    split = read_split(run_copy / "split.json")
    model = load_model(run_copy)
    for sample, row in zip(split["test"], read_rows(run_copy / "test_per_image.csv"), strict=True):
        image, truth = load_sample(sample)
        prob = predict_batch(model, prepare(image, (32, 32), 3)[None])[0]
        pred = resize_probabilities(prob, truth.shape) > 0.999
        assert float(row["dice"]) == pytest.approx(binary_scores(truth, pred)["dice"], abs=1e-4)


@pytest.mark.parametrize(
    "argv", [["--threshold", "1.5"], ["--threshold", "x"], ["--batch-size", "0"]]
)
def test_bad_flags_are_usage_errors(argv, run_copy: Path, capsys):
    assert main([str(run_copy), *argv]) == 2  # one line naming the flag, before Keras loads
    err = capsys.readouterr().err
    assert err.startswith(f"error: {argv[0]} {argv[1]}") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("name", "content"),
    [("best.keras", b"PK\x03\x04 not a keras zip"), ("config.json", b"{}"), ("split.json", b"x")],
)
def test_files_evaluation_cannot_use_exit_2_naming_them(run_copy: Path, name, content, capsys):
    (run_copy / name).write_bytes(content)
    assert main([str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run_copy / name}: ") and err.count("\n") == 1, err


# --- pictures -----------------------------------------------------------------------------------


def test_contour_is_the_outline():
    mask = np.zeros((8, 8), dtype=bool)
    mask[2:6, 2:6] = True
    edge = contour(mask)
    assert edge.sum() == 12  # a 4x4 square has 12 boundary pixels
    assert not edge[3:5, 3:5].any() and edge[2, 2:6].all()
    assert contour(mask, width=2).sum() == 16


def test_overlay_tints_only_the_mask():
    image = np.full((10, 10, 3), 100, np.uint8)
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 2:8] = True
    out = overlay(image, mask, color=(255, 0, 0), opacity=0.5)
    np.testing.assert_array_equal(out[~mask], image[~mask])
    np.testing.assert_array_equal(out[2, 2], (0, 0, 0))  # outline: dark inside light
    np.testing.assert_allclose(out[4, 4], (177, 50, 50), atol=1)  # inside: half tint


def test_triptych_panels():
    image = np.zeros((20, 40, 3), np.uint8)
    image[..., 2] = 200
    truth = np.zeros((20, 40), dtype=bool)
    truth[:, :20] = True
    pic = triptych(image, truth, np.zeros_like(truth), "caption", height=20)
    assert pic.size == (3 * 40 + 4, 20 + 32)  # caption line, then a title over each panel
    arr = np.asarray(pic)
    np.testing.assert_array_equal(arr[32 + 10, 10], (0, 0, 200))  # the image
    np.testing.assert_array_equal(arr[32 + 10, 42 + 5], (255, 255, 255))  # truth, left half
    np.testing.assert_array_equal(arr[32 + 10, 42 + 35], (0, 0, 0))  # truth, right half
    for left in (0, 42, 84):  # each panel's title is drawn in its band
        assert (arr[16:32, left : left + 40] < 128).any()
    np.testing.assert_array_equal(mask_to_rgb(truth)[0, 0], (255, 255, 255))
    assert triptych(image, truth, truth).size == (3 * 512 + 4, 256 + 16)  # titles, no caption
