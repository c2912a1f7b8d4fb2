"""The Segment page in AppTest: uploads with and without truth, bad files, models, samples."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pagetools import (
    ISIC_IMAGE,
    ISIC_TRUTH,
    SAMPLES,
    captions,
    metrics,
    problems,
    texts,
    warnings,
)
from PIL import Image

from segcore.inference.engine import Engine
from segcore.inference.preprocess import load_mask
from segcore.scoring.scores import dice, iou


def upload(at, key: str, path: Path, mime: str = "image/png") -> None:
    """Stage a file from disk in the uploader ``key`` (the next run sees it)."""
    at.file_uploader(key=key).upload(path.name, path.read_bytes(), mime)


def the_one_error(at, name: str, data: bytes) -> str:
    """Upload a bad file ``name`` before the ISIC sample, run, and return the one error shown,
    checking that there is no traceback and that the good image still went through."""
    at.file_uploader(key="images").upload(name, data, "image/png")
    upload(at, "images", ISIC_IMAGE, "image/jpeg")
    at.run()
    assert not at.exception
    errors = problems(at)
    assert len(errors) == 1, errors
    assert "Lesion area" in metrics(at)
    return errors[0]


@pytest.fixture
def bright_app(bright_page):
    """The Segment page over the hand-made models (``bright_gray`` is the ISIC one)."""
    return bright_page("segment")


def test_renders_and_invites_an_upload(bright_app):
    assert not problems(bright_app)
    assert bright_app.selectbox(key="segment-model").value == "bright_gray"
    assert "Upload one or more images" in texts(bright_app)
    assert len(bright_app.file_uploader) == 2
    # the caps, and the command for files above them, before anything is uploaded
    assert "Up to 25 MB and 25 megapixels per file" in texts(bright_app)
    assert "python -m segcore.predict --model models/nuclei_instance_unet_bn.onnx" in texts(
        bright_app
    )


def test_no_models_says_how_to_export(app_env, open_page):
    app_env()
    at = open_page("segment")
    assert not problems(at)
    assert "python -m export RUN_DIR" in texts(at)


def test_upload_without_truth_shows_mask_area_and_time(bright_app):
    upload(bright_app, "images", ISIC_IMAGE, "image/jpeg")
    bright_app.run()
    assert not problems(bright_app)
    assert captions(bright_app) == [
        "Image",
        "Prediction",
        "Overlay",
    ]
    shown = metrics(bright_app)
    assert {"Lesion area", "Lesion pixels", "Time"} <= set(shown)
    assert "Dice" not in shown
    assert len(bright_app.get("download_button")) == 2  # the CSV and the mask


def test_upload_with_truth_shows_the_engines_dice(bright_app, bright_models_dir: Path):
    upload(bright_app, "images", ISIC_IMAGE, "image/jpeg")
    upload(bright_app, "truths", ISIC_TRUTH)
    bright_app.run()
    assert not problems(bright_app)
    engine = Engine(bright_models_dir / "bright_gray.onnx")
    pred = engine.predict(ISIC_IMAGE.read_bytes()).mask
    truth = load_mask(ISIC_TRUTH)
    shown = metrics(bright_app)
    assert shown["Dice"] == f"{dice(truth, pred):.3f}"
    assert shown["IoU"] == f"{iou(truth, pred):.3f}"
    assert captions(bright_app) == [
        "Image",
        "Ground truth",
        "Prediction",
        "Overlay · truth outline (green)",
    ]  # the prediction stays beside the truth
    assert "mean Dice" in texts(bright_app)
    assert f"Ground truth: {ISIC_TRUTH.name}" in texts(bright_app)
    pairs = bright_app.dataframe[0].value
    assert pairs.to_dict("records") == [{"image": ISIC_IMAGE.name, "ground truth": ISIC_TRUTH.name}]


def test_corrupt_upload_is_named_and_the_good_one_still_renders(bright_app):
    error = the_one_error(bright_app, "broken.png", b"not an image")
    assert error.startswith("broken.png: this file is not a readable")
    assert "PNG, JPEG, TIFF, BMP, GIF or WebP" in error
    assert "Error" not in error  # no Python exception names
    assert ISIC_IMAGE.name in texts(bright_app)


def test_unmatched_truth_is_reported(bright_app):
    upload(bright_app, "images", ISIC_IMAGE, "image/jpeg")
    bright_app.file_uploader(key="truths").upload(
        "other_segmentation.png", ISIC_TRUTH.read_bytes(), "image/png"
    )
    bright_app.run()
    assert not problems(bright_app)
    assert any("1 mask matched no uploaded image" in w for w in warnings(bright_app))
    pairs = bright_app.dataframe[0].value.to_dict("records")
    assert {"image": "no image", "ground truth": "other_segmentation.png"} in pairs
    assert "Dice" not in metrics(bright_app)


def test_switching_models_changes_what_is_measured(bright_app):
    upload(bright_app, "images", ISIC_IMAGE, "image/jpeg")
    bright_app.run()
    assert "Lesion area" in metrics(bright_app)
    bright_app.selectbox(key="segment-model").set_value("bright").run()
    assert not problems(bright_app)
    assert {"Objects", "Area"} <= set(metrics(bright_app))
    assert "Trained on **plain**" in texts(bright_app)


def test_bundled_sample_runs_with_its_truth(bright_app):
    sample = bright_app.selectbox(key="sample")
    assert ISIC_IMAGE.name in sample.options
    sample.set_value(ISIC_IMAGE.name).run()
    assert not problems(bright_app)
    assert "Dice" in metrics(bright_app)


def test_threshold_and_tta_apply(bright_app, bright_models_dir: Path):
    upload(bright_app, "images", ISIC_IMAGE, "image/jpeg")
    bright_app.slider(key="threshold-bright_gray").set_value(0.3)
    bright_app.toggle(key="segment-tta").set_value(True)
    bright_app.run()
    assert not problems(bright_app)
    engine = Engine(bright_models_dir / "bright_gray.onnx")
    pred = engine.predict(ISIC_IMAGE.read_bytes(), threshold=0.3, tta=True)
    assert metrics(bright_app)["Lesion pixels"] == f"{pred.area_px:,}"


@pytest.mark.slow
def test_real_exported_unet_segments_a_sample(app_env, tiny_models_dir: Path, open_page):
    app_env(models=tiny_models_dir, samples=SAMPLES)
    at = open_page("segment")
    upload(at, "images", ISIC_IMAGE, "image/jpeg")
    at.run()
    assert not problems(at)
    assert {"Objects", "Area", "Time"} <= set(metrics(at))


def test_an_unexpected_failure_is_a_message_not_a_traceback(
    app_env, bright_models_dir: Path, open_page, monkeypatch
):
    """A bug (here: the card reader raising something no one expects) is one message on the page;
    a bad card itself is a ModelError, listed as a skipped model (tests/test_card.py)."""

    def broken(cls, path):
        raise RuntimeError("a bug")

    monkeypatch.setattr("segcore.card.ModelCard.read", classmethod(broken))
    app_env(models=bright_models_dir)
    at = open_page("segment")
    assert not at.exception
    assert any("unexpected problem" in e.value for e in at.error)


def test_markdown_in_a_file_name_is_shown_as_typed(bright_app):
    name = "![t](http://host/x.png) a.jpg"
    bright_app.file_uploader(key="images").upload(name, ISIC_IMAGE.read_bytes(), "image/jpeg")
    bright_app.run()
    assert not problems(bright_app)
    markdown = "\n".join(str(m.value) for m in [*bright_app.markdown, *bright_app.caption])
    assert "![t](http" not in markdown  # escaped: no image syntax reaches the browser
    assert name in texts(bright_app)  # but the reader sees the name as typed


def test_an_image_above_the_pixel_limit_is_refused_in_plain_words(bright_app):
    buffer = io.BytesIO()
    Image.new("L", (6000, 5000)).save(buffer, "PNG")  # 30 megapixels, a few KB on disk
    error = the_one_error(bright_app, "huge.png", buffer.getvalue())
    assert error.startswith("huge.png: 6000x5000 pixels")
    assert "limit of 25 megapixels" in error


def test_overlay_opacity_and_probability_view(bright_app):
    upload(bright_app, "images", ISIC_IMAGE, "image/jpeg")
    bright_app.run()
    overlay_default = bright_app.image[2].value
    bright_app.slider(key="segment-opacity").set_value(1.0)
    bright_app.toggle(key="segment-probability").set_value(True)
    bright_app.run()
    assert not problems(bright_app)
    assert captions(bright_app) == ["Image", "Prediction", "Overlay", "Probability (yellow = sure)"]
    assert bright_app.image[2].value != overlay_default  # the overlay was redrawn


def test_automatic_model_choice_per_image(bright_app):
    at = bright_app
    at.selectbox(key="segment-model").set_value("Automatic (per image)")
    upload(at, "images", ISIC_IMAGE, "image/jpeg")
    at.run()
    assert not problems(at)
    # the hand-made cards have no image statistics: the first model is used, nobody is warned
    assert "segmented with **bright**" in texts(at)
    assert not any("does not look like" in w for w in warnings(at))


def test_a_truncated_image_is_reported_in_plain_words(bright_app):
    whole = ISIC_TRUTH.read_bytes()
    bright_app.file_uploader(key="images").upload("cut.png", whole[: len(whole) // 2], "image/png")
    bright_app.run()
    assert not bright_app.exception
    assert problems(bright_app) == [
        "cut.png: the image could not be decoded; the file may be truncated or damaged."
    ]
