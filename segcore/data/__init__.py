"""Dataset handling: find image/mask pairs, split them, decode and cache, feed batches."""

from segcore.data.layouts import (
    FORMATS,
    Sample,
    find_samples,
    load_labels,
    load_sample,
)
from segcore.data.split import make_split, read_split, write_split
from segcore.errors import DataError

__all__ = [
    "FORMATS",
    "DataError",
    "Sample",
    "find_samples",
    "load_labels",
    "load_sample",
    "make_split",
    "read_split",
    "write_split",
]
