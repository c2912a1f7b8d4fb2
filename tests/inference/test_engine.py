"""The onnxruntime engine: every kind of input image, batching, TTA, post-processing, threads."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcore.errors import ImageError, ModelError
from segcore.inference.engine import Engine, LoadedImage, Prediction
from segcore.scoring.scores import dice


@pytest.fixture(scope="module")
def bright(bright_models_dir: Path) -> Engine:
    """The hand-made RGB engine (mask = bright pixels, card dataset ``plain``)."""
    return Engine(bright_models_dir / "bright.onnx")


@pytest.fixture(scope="module")
def tiny(tiny_models_dir: Path) -> Engine:
    """The engine on the exported tiny U-Net."""
    return Engine(tiny_models_dir / "tiny_unet.onnx")


def save(image: Image.Image, path: Path, **kwargs) -> Path:
    image.save(path, **kwargs)
    return path


def test_engine_reads_card_and_providers(bright: Engine):
    assert bright.name == "bright"
    assert (bright.input_size, bright.channels, bright.threshold) == (32, 3, 0.5)
    assert bright.postprocess.fill_holes and not bright.postprocess.keep_largest
    assert bright.providers and bright.providers[-1] == "CPUExecutionProvider"


def test_missing_model_or_card(tmp_path: Path, bright_models_dir: Path):
    with pytest.raises(ModelError, match="model file not found"):
        Engine(tmp_path / "nope.onnx")
    lone = tmp_path / "lone.onnx"
    lone.write_bytes((bright_models_dir / "bright.onnx").read_bytes())
    with pytest.raises(ModelError, match="model card not found"):
        Engine(lone)
    (tmp_path / "lone.json").write_text('{"channels": 3}')
    with pytest.raises(ModelError, match="input_size"):
        Engine(lone)


def test_card_channels_must_match_model(tmp_path: Path, bright_models_dir: Path):
    model = tmp_path / "m.onnx"
    model.write_bytes((bright_models_dir / "bright.onnx").read_bytes())
    (tmp_path / "m.json").write_text('{"input_size": 32, "channels": 1}')
    with pytest.raises(ModelError, match="channels"):
        Engine(model)


def test_prediction_fields(bright: Engine, disk_image):
    image, truth = disk_image(32, 32, [(8, 8, 5), (24, 24, 4), (8, 24, 3)])
    pred = bright.predict(image)
    assert isinstance(pred, Prediction)
    assert (pred.width, pred.height) == (32, 32)
    assert pred.probability.shape == pred.mask.shape == (32, 32)
    assert pred.probability.dtype == np.float16 and pred.mask.dtype == bool
    assert np.array_equal(pred.mask, truth)
    assert pred.area_px == truth.sum()
    assert pred.area_pct == pytest.approx(100 * truth.sum() / truth.size)
    assert pred.components == 3
    assert pred.seconds > 0


def test_threshold_override(bright: Engine, disk_image):
    image, _ = disk_image(32, 32, [(16, 16, 6)])
    assert bright.predict(image, threshold=0.0).mask.all()
    assert not bright.predict(image, threshold=1.0).mask.any()


@pytest.mark.parametrize(
    ("fmt", "mode", "suffix"),
    [
        ("JPEG", "RGB", ".jpg"),
        ("PNG", "RGB", ".png"),
        ("TIFF", "RGB", ".tif"),
        ("BMP", "RGB", ".bmp"),
        ("PNG", "RGBA", ".png"),
        ("PNG", "L", ".png"),
        ("PNG", "I;16", ".png"),
        ("TIFF", "I;16", ".tiff"),
    ],
)
def test_every_image_kind(bright: Engine, disk_image, tmp_path: Path, fmt, mode, suffix):
    image, truth = disk_image(45, 61, [(22, 30, 14)])  # odd size, not square
    if mode == "RGBA":
        img = Image.fromarray(np.dstack([image, np.full(truth.shape, 255, np.uint8)]))
    elif mode == "L":
        img = Image.fromarray(image).convert("L")
    elif mode == "I;16":
        img = Image.fromarray(image[..., 0].astype(np.uint16) * 257)
        assert img.mode == "I;16"
    else:
        img = Image.fromarray(image)
    path = save(img, tmp_path / f"x{suffix}", format=fmt)
    for source in (path, str(path), path.read_bytes(), io.BytesIO(path.read_bytes())):
        pred = bright.predict(source)
        assert pred.mask.shape == (45, 61)
        assert (pred.width, pred.height) == (61, 45)
        assert dice(truth, pred.mask) > 0.9


def test_grayscale_model(bright_models_dir: Path, disk_image):
    engine = Engine(bright_models_dir / "bright_gray.onnx")
    assert engine.channels == 1
    image, truth = disk_image(40, 40, [(20, 20, 10), (3, 3, 2)])
    pred = engine.predict(image)
    assert pred.components == 1  # isic card: only the largest component is kept
    assert dice(truth, pred.mask) > 0.9


def test_exif_rotated_jpeg_mask_at_rotated_size(bright: Engine, disk_image, tmp_path: Path):
    image, truth = disk_image(30, 50, [(15, 10, 8)])  # stored 50 wide x 30 high
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = save(Image.fromarray(image), tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    pred = bright.predict(path)
    assert pred.mask.shape == (50, 30)
    assert (pred.width, pred.height) == (30, 50)
    assert dice(np.rot90(truth, k=-1), pred.mask) > 0.9


def test_big_jpeg_decodes_reduced_but_mask_full_size(bright: Engine, disk_image, tmp_path: Path):
    image, truth = disk_image(600, 900, [(300, 450, 200)])
    path = save(Image.fromarray(image), tmp_path / "big.jpg", quality=90)
    loaded = bright.load(path)
    assert (loaded.width, loaded.height) == (900, 600)
    assert loaded.pixels.shape[0] < 600 and loaded.pixels.shape[0] >= bright.input_size
    pred = bright.predict(path)
    assert pred.mask.shape == (600, 900)
    assert dice(truth, pred.mask) > 0.95
    exif = Image.Exif()
    exif[0x0112] = 8  # displayed rotated 90 degrees counter-clockwise
    rotated = save(Image.fromarray(image), tmp_path / "rot.jpg", exif=exif.tobytes(), quality=90)
    loaded = bright.load(rotated)
    assert (loaded.width, loaded.height) == (600, 900) and loaded.pixels.shape[0] < 900
    pred = bright.predict(rotated)
    assert pred.mask.shape == (900, 600)
    assert dice(np.rot90(truth), pred.mask) > 0.95


def test_big_png_is_reduced_after_decoding_but_mask_full_size(
    bright: Engine, disk_image, tmp_path: Path
):
    image, truth = disk_image(400, 650, [(200, 300, 120), (60, 560, 30)])
    path = save(Image.fromarray(image), tmp_path / "big.png")
    loaded = bright.load(path)
    assert (loaded.width, loaded.height) == (650, 400)
    # box-reduced by a whole factor, keeping both sides >= 2x the 32-pixel input
    assert loaded.pixels.shape == (-(-400 // 6), -(-650 // 6), 3)  # Pillow rounds up
    pred = bright.predict(path)
    assert pred.mask.shape == pred.probability.shape == (400, 650)
    assert pred.probability.dtype == np.float16
    assert dice(truth, pred.mask) > 0.95
    assert pred.components == 2
    assert pred.area_px == np.count_nonzero(pred.mask)


def test_too_large_and_unreadable_images(bright_models_dir: Path, tmp_path: Path):
    engine = Engine(bright_models_dir / "bright.onnx", max_pixels=10_000)
    big = save(Image.new("RGB", (101, 100)), tmp_path / "big.png")
    with pytest.raises(
        ImageError, match=r"big\.png: 101x100 image is above the 10,000-pixel limit"
    ):
        engine.predict(big)
    with pytest.raises(ImageError, match="pixel limit"):
        engine.predict(np.zeros((200, 200, 3), np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageError, match="bad.png"):
        engine.predict(bad)
    with pytest.raises(ImageError, match="not found"):
        engine.predict(tmp_path / "missing.jpg")


def test_array_inputs(bright: Engine, disk_image):
    image, truth = disk_image(32, 32, [(16, 16, 8)])
    gray = image[..., 0]
    rgba = np.dstack([image, np.full((32, 32), 255, np.uint8)])
    for array in (image, gray, rgba):
        assert np.array_equal(bright.predict(array).mask, truth)
    with pytest.raises(ImageError, match="array"):
        bright.load(np.zeros((2, 2, 2, 2), np.uint8))
    loaded = bright.load(image)
    assert isinstance(loaded, LoadedImage) and bright.load(loaded) is loaded


def test_engine_postprocess_options(bright_models_dir: Path, disk_image):
    engine = Engine(bright_models_dir / "bright_gray.onnx")  # isic card: keep largest + fill
    image, _ = disk_image(32, 32, [(14, 14, 10), (29, 29, 2)])
    image[12:16, 12:16] = 0  # a dark hole inside the big disk
    raw = engine.predict(image, postprocess=False)
    assert raw.components == 2 and not raw.mask[13, 13]
    clean = engine.predict(image)
    assert clean.components == 1 and clean.mask[13, 13]
    from segcore.inference.postprocess import Postprocess

    holes_only = engine.predict(image, postprocess=Postprocess(keep_largest=False))
    assert holes_only.components == 2 and holes_only.mask[13, 13]


def test_tta_undoes_each_flip(bright: Engine, disk_image):
    # the bright model is pixel-wise, so flip averaging must give back the plain result exactly
    image, _ = disk_image(32, 32, [(6, 9, 5), (20, 25, 7)])
    plain = bright.predict(image)
    tta = bright.predict(image, tta=True)
    np.testing.assert_allclose(tta.probability, plain.probability, atol=1e-6)


@pytest.mark.slow
def test_tta_is_mean_of_flips(tiny: Engine, disk_image):
    image, _ = disk_image(32, 32, [(10, 12, 7)])
    x = (image.astype(np.float32) / 255)[None]
    flips = [
        tiny.probabilities(x),
        tiny.probabilities(x[:, :, ::-1])[:, :, ::-1],
        tiny.probabilities(x[:, ::-1])[:, ::-1],
        tiny.probabilities(x[:, ::-1, ::-1])[:, ::-1, ::-1],
    ]
    np.testing.assert_allclose(tiny.probabilities(x, tta=True), np.mean(flips, axis=0), atol=1e-6)


@pytest.mark.slow
def test_batch_equals_one_by_one(tiny: Engine, disk_image):
    images = [
        disk_image(h, w, [(h // 2, w // 2, 9)], seed=h)[0]
        for h, w in [(32, 32), (40, 57), (99, 31)]
    ]
    batched = tiny.predict_batch(images, batch_size=2)
    for image, pred in zip(images, batched, strict=True):
        single = tiny.predict(image)
        np.testing.assert_allclose(pred.probability, single.probability, atol=1e-5)
        assert np.array_equal(pred.mask, single.mask)


@pytest.mark.slow
def test_threads_share_one_engine(tiny: Engine, disk_image):
    images = [disk_image(48, 48, [(24, 24, 5 + i)], seed=i)[0] for i in range(6)]
    cases = [(k, tta) for tta in (False, True) for k in range(6)]
    expected = {c: tiny.predict(images[c[0]], tta=c[1]).probability for c in cases}

    def work(case: tuple[int, bool]) -> np.ndarray:
        return tiny.predict(images[case[0]], tta=case[1]).probability

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(work, cases * 4))
    for case, result in zip(cases * 4, results, strict=True):
        np.testing.assert_array_equal(result, expected[case])


def test_importing_engine_and_predict_skips_tensorflow():
    code = (
        "import segcore.inference.engine, segcore.commands.predict, sys; "
        "bad = [m for m in sys.modules if m.startswith(('tensorflow', 'keras'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_card_chooses_the_checked_graph_optimization(tiny_models_dir: Path, tmp_path: Path) -> None:
    """The engine uses the optimisation level export checked; every level agrees; bad names fail."""
    import json
    import shutil

    card = json.loads((tiny_models_dir / "tiny_unet.json").read_text())
    assert card["ort_optimization"] in ("all", "extended")
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    outputs = {}
    for level in ("basic", "extended", "all", "fastest"):
        shutil.copyfile(tiny_models_dir / "tiny_unet.onnx", tmp_path / f"{level}.onnx")
        (tmp_path / f"{level}.json").write_text(json.dumps(card | {"ort_optimization": level}))
        if level == "fastest":
            with pytest.raises(ModelError, match="ort_optimization"):
                Engine(tmp_path / f"{level}.onnx")
            continue
        outputs[level] = Engine(tmp_path / f"{level}.onnx").probabilities(x)
    np.testing.assert_allclose(outputs["all"], outputs["basic"], atol=1e-4)
    np.testing.assert_allclose(outputs["extended"], outputs["basic"], atol=1e-5)
