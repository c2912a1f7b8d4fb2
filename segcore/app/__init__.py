"""App-side logic behind the Streamlit pages: model discovery, the image-to-model fit check,
segmentation of uploads, pictures, gallery scoring, training curves and benchmark tables.

`navigation`, `ui` and `results` hold the Streamlit pieces (the page list and sidebar links, cached
engines and the model picker, the Segment page's result view); every other module here imports
neither Streamlit nor TensorFlow, so it is tested on its own.
"""
