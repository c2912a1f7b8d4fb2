"""Objects as GeoJSON in QuPath's import convention (File > Import objects, or drag and drop).

One Feature per object: its outline as a Polygon in pixel coordinates (QuPath places them on the
image's pixel grid), and properties QuPath reads: ``objectType: detection`` (a detection, not an
annotation), a ``classification`` (name and RGB colour: QuPath colours and counts objects by it)
and the ``measurements`` (name -> number), which become the objects' measurement table. When the
pixel size is known, the measurements gain micrometre columns (`MICRON_COLUMNS`).
"""

from __future__ import annotations

#: QuPath's class for segcore's objects, and its colour in QuPath's viewer.
CLASSIFICATION = {"name": "Nucleus", "color": [255, 200, 0]}
MICRON_COLUMNS = ("area_um2", "centroid_x_um", "centroid_y_um", "equivalent_diameter_um")


def add_microns(row: dict, pixel_size_um: float | None) -> dict:
    """``row`` with the µm / µm² columns added when ``pixel_size_um`` is known (else as it is)."""
    if not pixel_size_um:
        return row
    s = float(pixel_size_um)
    return {
        **row,
        "area_um2": round(row["area_px"] * s * s, 4),
        "centroid_x_um": round(row["centroid_x"] * s, 4),
        "centroid_y_um": round(row["centroid_y"] * s, 4),
        "equivalent_diameter_um": round(row["equivalent_diameter"] * s, 4),
    }


def detection(row: dict, ring: list[list[float]], pixel_size_um: float | None = None) -> dict:
    """One QuPath detection: the closed ``ring`` [[x, y], ...], the class, and ``row``'s numbers
    (``id`` kept as ``label``) as measurements, with µm columns when the pixel size is known."""
    full = add_microns(row, pixel_size_um) if "area_px" in row else row
    measurements = {
        k: v
        for k, v in full.items()
        if k != "id" and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "objectType": "detection",
            "label": int(row["id"]),
            "classification": dict(CLASSIFICATION),
            "measurements": measurements,
        },
    }


def feature_collection(features: list[dict]) -> dict:
    """A GeoJSON FeatureCollection of ``features``."""
    return {"type": "FeatureCollection", "features": features}
