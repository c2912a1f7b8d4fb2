"""The napari dock widget: run a shipped segcore model on the selected image layer.

`segment_image` is a plain function (layer in, layer-data tuple out) that scripts and tests call
directly. `segment_widget` is the docked form (napari's Plugins menu): its Segment button plans
the job at once (a stack without a plane or projection is refused there, in one line) and runs
it in a napari `thread_worker`, as stardist-napari does, so the viewer stays responsive; a
progress bar in napari's activity dock advances block by block for a layer above the engine's
in-memory cap (sent through the block-wise path: `segcore.napari.widget_core.segment_steps`). When
it finishes, the result is added as a Labels layer named with the model and the count, the
per-object table as the layer's ``features``, on the image's scale and position.
"""

# No `from __future__ import annotations` here: magicgui resolves `segment_widget`'s return
# annotation at runtime, and a string "GeneratorWorker" fails there (ModuleNotFoundError).
from collections.abc import Generator

import napari
from magicgui import magic_factory
from napari.qt.threading import GeneratorWorker, thread_worker

from segcore.napari.widget_core import (
    LabelsResult,
    engine_for,
    layer_source,
    model_choices,
    model_path,
    run_steps,
    segment_steps,
    step_count,
)


def plan(
    image: napari.layers.Image | None,
    model: str | None,
    tta: bool,
    plane: int,
    project_max: bool,
) -> tuple:
    """The job for a layer: (steps generator, its step count, model name), checked before
    anything runs; ValueError (an ImageError) for a missing layer or a stack without plane or
    projection."""
    if image is None:
        raise ValueError("choose an image layer to segment")
    name = model or model_choices()[0]
    engine = engine_for(model_path(name))
    source = layer_source(
        image.data,
        bool(image.rgb),
        plane=None if plane < 0 else plane,
        project="max" if project_max else None,
    )
    return segment_steps(engine, source, tta=tta), step_count(engine, source), name


def layer_tuple(
    result: LabelsResult, image: napari.layers.Image, name: str
) -> napari.types.LayerDataTuple:
    """The Labels layer's (data, attributes, "labels") tuple, on the image's scale and place."""
    attributes = {
        "name": result.name,
        "features": result.features,
        "scale": tuple(image.scale[-2:]),
        "translate": tuple(image.translate[-2:]),
        "metadata": {"segcore_model": name, "count": result.count},
        "multiscale": isinstance(result.labels, list),
    }
    return (result.labels, attributes, "labels")


def segment_image(
    image: napari.layers.Image,
    model: str | None = None,
    tta: bool = False,
    plane: int = -1,
    project_max: bool = False,
) -> napari.types.LayerDataTuple:
    """Segment ``image`` (an Image layer, RGB or one channel) with the shipped model ``model``
    (None: the best one by test Dice) in this thread; a Z or T stack by its ``plane`` (-1: none)
    or its maximum projection; returns the Labels layer's (data, attributes, "labels") tuple."""
    steps, _, name = plan(image, model, tta, plane, project_max)
    return layer_tuple(run_steps(steps), image, name)


def start_worker(
    viewer: napari.Viewer,
    image: napari.layers.Image,
    model: str | None = None,
    tta: bool = False,
    plane: int = -1,
    project_max: bool = False,
) -> GeneratorWorker:
    """Plan the job, then run it in a started napari thread worker with a progress bar; the
    Labels layer is added to ``viewer`` when it returns (an error becomes napari's notice)."""
    steps, total, name = plan(image, model, tta, plane, project_max)

    def work() -> Generator[int, None, LabelsResult]:
        """One yield per finished step (napari's bar counts yields); returns the result."""
        while True:
            try:
                done, _ = next(steps)
            except StopIteration as stop:
                return stop.value
            yield done

    run = thread_worker(work, progress={"total": total, "desc": f"segcore: {name} on {image.name}"})
    worker = run()
    worker.returned.connect(
        lambda result: viewer.add_layer(
            napari.layers.Layer.create(*layer_tuple(result, image, name))
        )
    )
    worker.start()
    return worker


@magic_factory(
    call_button="Segment",
    model={"choices": lambda _widget: model_choices(), "label": "model"},
    tta={"label": "flip averaging (4x slower)"},
    plane={"label": "stack plane (-1: none)", "min": -1},
    project_max={"label": "max projection of a stack"},
)
def segment_widget(
    viewer: napari.Viewer,
    image: napari.layers.Image,
    model: str | None = None,
    tta: bool = False,
    plane: int = -1,
    project_max: bool = False,
) -> GeneratorWorker:
    """The docked form of `start_worker`: returns the running worker (the layer follows)."""
    return start_worker(viewer, image, model, tta, plane, project_max)
