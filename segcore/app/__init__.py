"""App-side logic behind the Streamlit pages: model discovery, segmentation of uploads, gallery
scoring, training curves and benchmark tables.

Every module here except `ui` imports neither Streamlit nor TensorFlow, so it is tested on its
own; `ui` holds the Streamlit pieces the pages share (cached engines, the model picker).
"""
