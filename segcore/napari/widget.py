"""The napari dock widget: run a shipped segcore model on the selected image layer.

`segment_image` is a plain function (layer in, layer-data tuple out) that scripts and tests call
directly; `segment_widget` is its magicgui form, which napari docks from the Plugins menu and
whose result napari adds as a Labels layer named with the model and the count, the per-object
table as the layer's ``features``, on the image's scale and position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from magicgui import magic_factory

from segcore.napari.widget_core import (
    engine_for,
    layer_pixels,
    model_choices,
    model_path,
    segment_pixels,
)

if TYPE_CHECKING:
    import napari


def segment_image(
    image: napari.layers.Image,
    model: str | None = None,
    tta: bool = False,
    plane: int = -1,
    project_max: bool = False,
) -> napari.types.LayerDataTuple:
    """Segment ``image`` (an Image layer, RGB or one channel) with the shipped model ``model``
    (None: the best one by test Dice); a Z or T stack by its ``plane`` (-1: none) or its maximum
    projection (`segcore.napari.widget_core.layer_pixels`); returns the Labels layer's (data,
    attributes, "labels") tuple."""
    if image is None:
        raise ValueError("choose an image layer to segment")
    name = model or model_choices()[0]
    engine = engine_for(model_path(name))
    pixels = layer_pixels(
        image.data,
        bool(image.rgb),
        plane=None if plane < 0 else plane,
        project="max" if project_max else None,
    )
    result = segment_pixels(engine, pixels, tta=tta)
    attributes = {
        "name": result.name,
        "features": result.features,
        "scale": tuple(image.scale[-2:]),
        "translate": tuple(image.translate[-2:]),
        "metadata": {"segcore_model": name, "count": result.count},
    }
    return (result.labels, attributes, "labels")


segment_widget = magic_factory(
    segment_image,
    call_button="Segment",
    model={"choices": lambda _widget: model_choices(), "label": "model"},
    tta={"label": "flip averaging (4x slower)"},
    plane={"label": "stack plane (-1: none)", "min": -1},
    project_max={"label": "max projection of a stack"},
)
