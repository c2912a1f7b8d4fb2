"""Microscopy files: lazy reading, axes, channels, z-stacks, pixel sizes, stems, intensity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from segcore.errors import ImageError
from segcore.inference.intensity import IntensityMapping, card_rule, fit_mapping, sample_pixels
from segcore.io.microscopy import open_microscopy, stem_of


def test_stems_keep_double_extensions():
    assert stem_of(Path("a/x.ome.tif")) == "x"
    assert stem_of(Path("x.OME.TIFF")) == "x"
    assert stem_of(Path("slide.ome.zarr")) == "slide"
    assert stem_of(Path("y.tif")) == "y"
    assert stem_of(Path("z.png")) == "z"


def test_pyramidal_two_channel_ome_tiff(tmp_path: Path):
    data = np.arange(2 * 300 * 280, dtype=np.uint16).reshape(2, 300, 280)
    path = tmp_path / "p.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as w:
        meta = {"axes": "CYX", "PhysicalSizeX": 0.5, "Channel": {"Name": ["GFP", "Hoechst"]}}
        w.write(data, tile=(128, 128), subifds=1, metadata=meta)
        w.write(data[:, ::2, ::2], tile=(128, 128), subfiletype=1)
    image = open_microscopy(path)
    assert (image.height, image.width, image.channels) == (300, 280, 2)
    assert image.channel_names == ("GFP", "Hoechst") and image.pixel_size_um == 0.5
    chosen, notes = image.select()
    assert chosen.channel == 1 and "Hoechst" in notes[0]  # named like a nuclear stain
    region = chosen.read(10, 20, 30, 35)
    assert region.shape == (10, 5, 1) and region.dtype == np.uint16
    np.testing.assert_array_equal(region[..., 0], data[1, 10:20, 30:35])
    by_name, _ = image.select("gfp")
    assert by_name.channel == 0
    with pytest.raises(ImageError, match="--channel DAPI"):
        image.select("DAPI")


def test_z_stack_is_refused_or_chosen_or_projected(tmp_path: Path):
    stack = np.zeros((3, 40, 50), dtype=np.uint16)
    stack[0, 5, 5], stack[2, 5, 6] = 100, 200
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, stack, imagej=True, metadata={"axes": "ZYX"})
    image = open_microscopy(path)
    assert image.planes == 3
    with pytest.raises(ImageError, match="3 z planes.*--z K or --project max"):
        image.select()
    plane, notes = image.select(z=2)
    assert plane.read(0, 40, 0, 50)[5, 6, 0] == 200 and "z=2" in notes[0]
    projected, notes = image.select(project="max")
    region = projected.read(0, 40, 0, 50)[..., 0]
    assert region[5, 5] == 100 and region[5, 6] == 200 and "maximum" in notes[0]
    with pytest.raises(ImageError, match="--z 3"):
        image.select(z=3)


def test_three_plane_16_bit_tiff_is_not_rgb(tmp_path: Path):
    pages = tmp_path / "pages.tif"
    tifffile.imwrite(pages, np.zeros((3, 20, 30), np.uint16), photometric="minisblack")
    image = open_microscopy(pages)
    assert (image.channels, image.planes, image.is_rgb) == (1, 3, False)  # a stack, refused
    samples = tmp_path / "samples.tif"
    data = np.stack([np.full((20, 30), v, np.uint16) for v in (10, 20, 30)])
    tifffile.imwrite(samples, data, photometric="rgb", planarconfig="separate")
    chosen, notes = open_microscopy(samples).select()
    assert not chosen.is_rgb and chosen.read(0, 20, 0, 30).shape == (20, 30, 1)
    assert "3 channels, using channel 0" in notes[0]
    assert chosen.read(0, 1, 0, 1)[0, 0, 0] == 10


def test_rgb_8_bit_keeps_colour_and_imagej_pixel_size(tmp_path: Path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.full((20, 30, 3), 7, np.uint8), photometric="rgb")
    image, notes = open_microscopy(path).select()
    assert image.is_rgb and image.read(0, 20, 0, 30).shape == (20, 30, 3)
    ij = tmp_path / "ij.tif"
    tifffile.imwrite(
        ij,
        np.zeros((20, 30), np.uint16),
        imagej=True,
        resolution=(4.0, 4.0),
        metadata={"unit": "um"},
    )
    assert open_microscopy(ij).pixel_size_um == pytest.approx(0.25)


def test_ome_zarr_input(tmp_path: Path):
    import zarr

    path = tmp_path / "img.ome.zarr"
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    data = np.arange(2 * 32 * 48, dtype=np.uint16).reshape(2, 32, 48)
    group.create_array("0", shape=data.shape, chunks=(1, 16, 16), dtype="uint16")[:] = data
    axes = [{"name": "c", "type": "channel"}] + [
        {"name": n, "type": "space", "unit": "micrometer"} for n in "yx"
    ]
    scale = [{"type": "scale", "scale": [1.0, 0.4, 0.4]}]
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": axes,
            "datasets": [{"path": "0", "coordinateTransformations": scale}],
        }
    ]
    group.attrs["omero"] = {"channels": [{"label": "DAPI"}, {"label": "actin"}]}
    image, notes = open_microscopy(path).select()
    assert image.axes == "CYX" and image.pixel_size_um == pytest.approx(0.4)
    assert image.channel == 0 and "DAPI" in notes[0]
    np.testing.assert_array_equal(image.read(3, 9, 4, 20)[..., 0], data[0, 3:9, 4:20])


def test_not_a_tiff_is_one_error(tmp_path: Path):
    path = tmp_path / "bad.tif"
    path.write_bytes(b"not a tiff")
    with pytest.raises(ImageError, match="bad.tif: not a readable TIFF"):
        open_microscopy(path)


def test_a_truncated_compressed_tiff_fails_when_read_naming_the_file(tmp_path: Path):
    whole = tmp_path / "whole.ome.tif"
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4096, (512, 512), dtype=np.uint16)
    tifffile.imwrite(whole, pixels, tile=(256, 256), compression="zlib", metadata={"axes": "YX"})
    cut = tmp_path / "cut.ome.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])  # a copy stopped early
    image = open_microscopy(cut)  # the header is whole: the damage shows when tiles are read
    with pytest.raises(ImageError, match=r"cut.ome.tif: damaged or truncated image data"):
        image.read(0, 512, 0, 512)


def test_percentile_mapping_fitted_once_from_a_sample():
    rng = np.random.default_rng(0)
    image = rng.integers(100, 4000, size=(600, 700, 1)).astype(np.uint16)
    calls = []

    def read(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        calls.append((y1 - y0) * (x1 - x0))
        return image[y0:y1, x0:x1]

    rule = card_rule({"intensity": {"rule": "percentile"}})
    mapping = fit_mapping(image.dtype, rule, lambda: sample_pixels(read, 600, 700))
    assert mapping.rule == "percentile"
    low, high = np.percentile(image, [rule["low"], rule["high"]])
    out = mapping.apply(np.array([[[low], [high]]], dtype=np.uint16))
    np.testing.assert_allclose(out.ravel(), [rule["target_low"], rule["target_high"]], atol=2e-3)
    assert fit_mapping(np.dtype(np.uint8), rule, lambda: 1 / 0) == IntensityMapping("divide_by_255")
    dtype_range = fit_mapping(image.dtype, {**rule, "rule": "dtype_range"}, lambda: 1 / 0)
    assert dtype_range.apply(np.array([[[65535]]], np.uint16))[0, 0, 0] == pytest.approx(1.0)


def test_bit_depth_rule_divides_by_the_detector_range():
    rule = card_rule({})
    assert rule["rule"] == "bit_depth"
    twelve = fit_mapping(np.dtype(np.uint16), rule, lambda: np.array([[0], [4000]]))
    assert twelve.scale == pytest.approx(1 / 4095)
    full = fit_mapping(np.dtype(np.uint16), rule, lambda: np.array([[0], [65535]]))
    assert full.apply(np.array([[[257 * 200]]], np.uint16))[0, 0, 0] == pytest.approx(200 / 255)
    with pytest.raises(ValueError, match="unknown intensity rule"):
        card_rule({"intensity": {"rule": "magic"}})


def test_uncompressed_single_strip_tiff_is_memory_mapped(tmp_path: Path):
    data = np.arange(300 * 200, dtype=np.uint16).reshape(300, 200)
    tifffile.imwrite(tmp_path / "plain.tif", data)  # one strip: zarr would decode it whole
    image = open_microscopy(tmp_path / "plain.tif")
    assert isinstance(image.array, np.memmap)
    np.testing.assert_array_equal(image.read(10, 20, 5, 9)[..., 0], data[10:20, 5:9])
    tifffile.imwrite(tmp_path / "zipped.tif", data, compression="zlib")
    assert not isinstance(open_microscopy(tmp_path / "zipped.tif").array, np.ndarray)
