"""The objects table and the outlines GeoJSON of a large image, written as its blocks finish.

Rows and features are appended block by block to files under temporary names; `ObjectStreams`
renames both when the image is complete (`close`), so a reader never sees half a table. The
GeoJSON follows QuPath's convention: one detection per nucleus, with a classification and the
measurements as properties. With a pixel size the table and the measurements gain micrometre
columns (`MICRON_COLUMNS`).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import TextIO

import numpy as np
from scipy import ndimage

from segcore.atomic import temporary_name
from segcore.inference.instances import OBJECT_COLUMNS
from segcore.io.geojson import MICRON_COLUMNS, add_microns, detection
from segcore.io.instance_io import outline_ring


def object_columns(pixel_size_um: float | None) -> tuple[str, ...]:
    """The table's columns: `OBJECT_COLUMNS`, then the µm columns when the pixel size is known."""
    return OBJECT_COLUMNS + (MICRON_COLUMNS if pixel_size_um else ())


class ObjectStreams:
    """``<stem>_objects.csv`` and ``<stem>_outlines.geojson`` in ``out_dir``, block by block."""

    def __init__(self, out_dir: Path, stem: str, pixel_size_um: float | None = None) -> None:
        """Open both files under temporary names (removing those a killed run left)."""
        self.csv_path = Path(out_dir) / f"{stem}_objects.csv"
        self.geojson_path = Path(out_dir) / f"{stem}_outlines.geojson"
        for path in (self.csv_path, self.geojson_path):
            for stale in path.parent.glob(f".tmp-*-{path.name}"):
                stale.unlink(missing_ok=True)
        self.pixel_size_um = pixel_size_um
        self._csv: TextIO = open(temporary_name(self.csv_path), "w", newline="")
        self._geo: TextIO = open(temporary_name(self.geojson_path), "w")
        self._writer = csv.DictWriter(
            self._csv, fieldnames=object_columns(pixel_size_um), lineterminator="\n"
        )
        self._writer.writeheader()
        self._geo.write('{"type":"FeatureCollection","features":[')
        self._first = True

    def write(self, rows: list[dict], labels: np.ndarray, top: int, left: int) -> None:
        """Append one block's nuclei: ``rows`` (global ids) and their ``labels`` crop at
        (top, left) in the image."""
        rows = [add_microns(r, self.pixel_size_um) for r in rows]
        self._writer.writerows(rows)
        boxes = ndimage.find_objects(labels)
        for row in rows:
            box = boxes[row["id"] - 1] if row["id"] <= len(boxes) else None
            if box is None:
                continue
            ring = outline_ring(labels[box] == row["id"], box[0].start + top, box[1].start + left)
            self._geo.write(("" if self._first else ",") + json.dumps(detection(row, ring)))
            self._first = False
        self._csv.flush()
        self._geo.flush()

    def close(self) -> None:
        """Finish both files and rename them to their real names."""
        self._geo.write("]}")
        for handle, path in ((self._csv, self.csv_path), (self._geo, self.geojson_path)):
            handle.close()
            os.replace(temporary_name(path), path)

    def abandon(self) -> None:
        """Close and remove the temporary files (the image failed)."""
        for handle, path in ((self._csv, self.csv_path), (self._geo, self.geojson_path)):
            handle.close()
            temporary_name(path).unlink(missing_ok=True)
