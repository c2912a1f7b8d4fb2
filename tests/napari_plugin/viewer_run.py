"""The napari viewer check, run in a fresh process by ``test_napari_plugin``.

napari's OpenGL canvas crashes (segmentation fault) in a process that has already loaded
TensorFlow or JAX, as the full test session has; a child process keeps the check independent of
test order. It docks the widget in a real viewer, segments the bundled nuclei sample with the
shipped model, calls the plain function too, saves a window screenshot and prints one line: `MARKER` and the JSON result.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

#: Starts the result line (napari or Qt may print other lines).
MARKER = "viewer-result:"


def settle(seconds: float = 0.3) -> None:
    """Let Qt lay the window out."""
    from qtpy.QtWidgets import QApplication

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def main(model: str, screenshot: str) -> dict:
    """Segment the nuclei sample in a docked widget; what the test checks, as a dict."""
    import napari

    from segcore.napari import samples
    from segcore.napari.widget import segment_image, segment_widget

    viewer = napari.Viewer(show=True)
    ((pixels, meta, _),) = samples.nuclei_sample()
    layer = viewer.add_image(pixels, **meta)
    viewer.window.resize(1400, 800)
    widget = segment_widget()
    viewer.window.add_dock_widget(widget, name="Segment (segcore)", area="right")
    widget.image.value = layer
    widget.model.value = model
    widget()  # runs in a thread worker: the viewer stays responsive, the layer follows
    end = time.monotonic() + 240
    while len(viewer.layers) < 2 and time.monotonic() < end:
        settle(0.1)
    labels = viewer.layers[-1]
    settle()
    viewer.reset_view()
    viewer.screenshot(screenshot, canvas_only=False, flash=False)
    data, attributes, kind = segment_image(layer, model)
    result = {
        "layer_type": type(labels).__name__,
        "name": labels.name,
        "count": int(labels.data.max()),
        "features_index": [int(i) for i in labels.features["index"]],
        "feature_columns": list(labels.features.columns),
        "plain_kind": kind,
        "plain_equal": bool(np.array_equal(data, labels.data)),
        "plain_name": attributes["name"],
    }
    viewer.close()
    return result


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    print(MARKER, json.dumps(main(sys.argv[1], sys.argv[2])), flush=True)
