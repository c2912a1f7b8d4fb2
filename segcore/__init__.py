"""segcore: U-Net segmentation for biomedical images (ISIC lesions, DSB nuclei)."""

__version__ = "0.1.0"
