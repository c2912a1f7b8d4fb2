"""napari sample data: the bundled real samples (see samples/README.md for their credits)."""

from __future__ import annotations

from pathlib import Path

from segcore.inference.preprocess import load_image
from segcore.paths import samples_dir

#: The bundled images offered (relative to samples/): a crowded nuclei field and a lesion.
NUCLEI = "dsb/stage1_train/8d29c5a03e0560c8f9338e8eb7bccf47930149c8173f9ba4b9279fb87d86cf6d"
LESION = "isic/images/ISIC_0000219.jpg"


def _image_layer(path: Path, name: str) -> list[tuple]:
    """One Image layer of the RGB image at ``path``."""
    return [(load_image(path), {"name": name, "rgb": True}, "image")]


def nuclei_sample() -> list[tuple]:
    """A DSB 2018 nuclei image (fluorescence, 696x520, 37 annotated nuclei)."""
    folder = samples_dir() / NUCLEI / "images"
    return _image_layer(next(folder.glob("*.png")), "nuclei (DSB 2018)")


def lesion_sample() -> list[tuple]:
    """An ISIC 2017 dermoscopy image (256x256)."""
    return _image_layer(samples_dir() / LESION, "lesion (ISIC 2017)")
