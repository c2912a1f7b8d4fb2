"""The napari plugin (optional extra ``napari``): a segment widget, a reader, sample data.

napari finds it through the ``napari.manifest`` entry point (``napari.yaml`` here). Importing
this package imports neither napari nor Qt; only the widget module loads magicgui.
"""
