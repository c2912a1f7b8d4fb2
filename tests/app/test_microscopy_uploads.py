"""Microscopy TIFF uploads on the Segment page: 16-bit, multi-channel and z-stack files are read
as the command line reads them, with the channel and plane offered as choices."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from handmade_models import write_nuclei_model
from pagetools import SAMPLES, captions, problems, texts
from PIL import Image

from segcore.app.microscopy_upload import PlaneChoice, command_flags, microscopy_image
from segcore.app.segment import Upload, check_upload, objects_csv, segment_upload
from segcore.errors import ImageError
from segcore.inference.engine import Engine

NUCLEI = next((SAMPLES / "dsb" / "stage1_train").glob("12f89395ad5d*"))  # fluorescence


def nuclei_gray() -> np.ndarray:
    """The real fluorescence sample as an 8-bit grey plane, stretched to the full range (the
    hand-made model finds pixels brighter than 0.38)."""
    path = next((NUCLEI / "images").glob("*.png"))
    with Image.open(path) as im:
        gray = np.asarray(im.convert("L")).astype(np.float32)
    return np.rint(gray * 255 / gray.max()).astype(np.uint8)


def tiff_bytes(array: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    return Engine(write_nuclei_model(tmp_path_factory.mktemp("nuclei")))


def segmented(engine: Engine, name: str, data: bytes, choice: PlaneChoice | None = None):
    return segment_upload(engine, Upload(name, data), threshold=None, tta=False, choice=choice)


def test_a_16_bit_tiff_segments_as_the_same_pixels_in_8_bit(engine: Engine):
    gray = nuclei_gray()
    reference = segmented(engine, "n.png", png_bytes(gray))
    assert reference.count > 5
    wide = segmented(engine, "n.tif", tiff_bytes(gray.astype(np.uint16) * 257))
    assert wide.mask_png == reference.mask_png and wide.count == reference.count
    assert "bit_depth" in wide.source
    # a 12-bit camera's values in a 16-bit file are divided by 4095, not 65535: still found
    camera = segmented(engine, "n12.tif", tiff_bytes(gray.astype(np.uint16) * 16))
    assert abs(camera.count - reference.count) <= 0.1 * reference.count


def test_two_channels_use_the_one_named_like_a_nuclear_stain(engine: Engine):
    gray = nuclei_gray().astype(np.uint16) * 257
    other = np.full_like(gray, 20000)  # a bright, flat second channel: no nuclei in it
    data = tiff_bytes(
        np.stack([other, gray]),
        photometric="minisblack",
        metadata={"axes": "CYX", "Channel": {"Name": ["GFP", "DAPI"]}, "PhysicalSizeX": 0.5},
        ome=True,
    )
    image = microscopy_image("two.ome.tif", data)
    assert image is not None and image.channels == 2
    check_upload(Upload("two.ome.tif", data))  # within the caps, size read from the metadata
    dapi = segmented(engine, "two.ome.tif", data)
    assert "channel 1 (DAPI)" in dapi.source and dapi.count > 5
    first = segmented(engine, "two.ome.tif", data, PlaneChoice(channel="0"))
    assert first.count != dapi.count
    assert dapi.pixel_size_um == 0.5
    table = objects_csv(dapi).splitlines()
    assert "area_um2" in table[0] and len(table) == dapi.count + 1
    assert command_flags(PlaneChoice(channel="1")) == "--channel 1"


def test_a_z_stack_is_projected_or_one_plane_is_taken(engine: Engine):
    gray = nuclei_gray()
    stack = np.stack([np.zeros_like(gray), gray, gray // 4]).astype(np.uint16) * 257
    data = tiff_bytes(stack, metadata={"axes": "ZYX"}, ome=True)
    projected = segmented(engine, "z.ome.tif", data, PlaneChoice(project="max"))
    reference = segmented(engine, "n.png", png_bytes(gray))
    assert projected.count == reference.count and "maximum projection" in projected.source
    assert segmented(engine, "z.ome.tif", data, PlaneChoice(z=0)).count == 0
    with pytest.raises(ImageError, match="refused without --z K or --project max"):
        segmented(engine, "z.ome.tif", data)


def test_a_plain_8_bit_tiff_is_read_as_before():
    assert microscopy_image("rgb.tif", tiff_bytes(np.zeros((8, 8, 3), np.uint8))) is None
    assert microscopy_image("x.png", b"anything") is None
    with pytest.raises(ImageError, match="broken.tif"):
        microscopy_image("broken.tif", b"II*\x00garbage")


def test_the_page_offers_the_channel_and_the_plane(bright_page, tmp_path: Path):
    at = bright_page("segment")
    gray = nuclei_gray().astype(np.uint16) * 257
    channels = tiff_bytes(
        np.stack([gray // 8, gray]),
        photometric="minisblack",
        metadata={"axes": "CYX", "Channel": {"Name": ["actin", "Hoechst"]}},
        ome=True,
    )
    stack = tiff_bytes(np.stack([gray, gray // 2]), metadata={"axes": "ZYX"}, ome=True)
    at.file_uploader(key="images").upload("cells.ome.tif", channels, "image/tiff")
    at.file_uploader(key="images").upload("stack.tif", stack, "image/tiff")
    at.run()
    assert not problems(at)
    channel = next(s for s in at.selectbox if s.key.startswith("channel-cells.ome.tif"))
    assert channel.value == "1 · Hoechst" and channel.options == ["0 · actin", "1 · Hoechst"]
    z = next(s for s in at.selectbox if s.key.startswith("z-stack.tif"))
    assert z.value == "maximum projection"
    shown = texts(at)
    assert "--channel 1" in shown and "--project max" in shown
    assert "2 channels" in shown and "2 z planes" in shown
    assert captions(at).count("Image") == 2  # both segmented
    z.set_value("plane 1").run()
    assert not problems(at) and "--z 1" in texts(at)


@pytest.mark.parametrize("kwargs", [{}, {"compression": "zlib"}, {"byteorder": ">"}])
def test_an_upload_reads_the_same_pixels_stored_any_way(kwargs: dict):
    stack = np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)
    image = microscopy_image("s.tif", tiff_bytes(stack, metadata={"axes": "ZYX"}, **kwargs))
    chosen, _ = image.select(z=2)
    np.testing.assert_array_equal(chosen.read(5, 30, 10, 20)[..., 0], stack[2, 5:30, 10:20])


@pytest.mark.parametrize("step", [1, 3, 7, 600])
def test_a_preview_maps_every_nth_pixel_of_the_plane(step: int):
    from segcore.app.microscopy_upload import plane_pixels

    stack = (np.arange(2 * 700 * 900) % 4000 + 1).reshape(2, 700, 900).astype(np.uint16)
    data = tiff_bytes(stack, metadata={"axes": "ZYX"}, compression="zlib", tile=(256, 256))
    image = microscopy_image("s.tif", data)
    full, _ = plane_pixels(image, PlaneChoice(z=1), 10**7)
    preview, _ = plane_pixels(image, PlaneChoice(z=1), 10**7, step=step)
    np.testing.assert_array_equal(preview, full[::step, ::step])
