"""segcore's web app: ``streamlit run streamlit_app.py`` (pages in ``pages/``).

Pages: Segment (upload images, get masks), Gallery (bundled samples scored), Training (curves),
Benchmarks (accuracy and speed) and Models (the model cards). The app runs onnxruntime only;
it never imports TensorFlow.
"""

import logging

import streamlit as st

from segcore.app.ui import follow_deep_link

st.set_page_config(page_title="segcore", page_icon=":material/biotech:", layout="wide")

PAGES = [
    st.Page("pages/segment.py", title="Segment", icon=":material/draw:", default=True),
    st.Page("pages/gallery.py", title="Gallery", icon=":material/grid_view:"),
    st.Page("pages/training.py", title="Training", icon=":material/show_chart:"),
    st.Page("pages/benchmarks.py", title="Benchmarks", icon=":material/speed:"),
    st.Page("pages/models.py", title="Models", icon=":material/description:"),
]

page = st.navigation(PAGES)
follow_deep_link()
st.sidebar.caption(
    "U-Net segmentation of skin lesions (ISIC) and cell nuclei (DSB), run with onnxruntime."
)
try:
    page.run()
except Exception as exc:  # a page bug must not show a traceback to the user
    logging.getLogger("segcore.app").exception("page %s failed", page.title)
    st.error(f"This page hit an unexpected problem: {type(exc).__name__}: {exc}")
