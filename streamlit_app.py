"""segcore's web app: ``streamlit run streamlit_app.py`` (pages in ``pages/``).

Pages: Segment (upload images, get masks), Gallery (bundled samples scored), Training (curves),
Benchmarks (accuracy and speed), Variants (the U-Net variants compared) and Models (the model
cards); `segcore.app.navigation` lists them. The app runs onnxruntime only; it never imports TensorFlow.
"""

from segcore.app.navigation import run_app

run_app()
