"""Nuclei as objects: instance targets for training, watershed decoding, per-object measurements.

Instance models predict two sigmoid channels, in this order (`TARGET_CHANNELS`): the nuclei's
inner *boundary* ring (where touching nuclei meet it is the separating line) and the
*foreground* (the semantic mask, last, so it stays the main output every semantic consumer
reads). This is the body/border scheme of the DSB 2018 winners' U-Nets: body = foreground
without boundary.

Decoding (`decode`) is a marker-controlled watershed (scikit-image): markers are the connected
bodies (foreground > t and boundary < b) larger than a minimum size, flooded over the inverted
foreground probability within the thresholded foreground; foreground components that hold no
marker (very small nuclei) keep one label each. Pure numpy/scipy/scikit-image: no Keras.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from skimage.measure import regionprops_table
from skimage.segmentation import find_boundaries, watershed

TARGET_CHANNELS = ("boundary", "foreground")
OBJECT_COLUMNS = (
    "id",
    "area_px",
    "centroid_x",
    "centroid_y",
    "bbox_x0",
    "bbox_y0",
    "bbox_x1",
    "bbox_y1",
    "equivalent_diameter",
    "eccentricity",
    "mean_intensity",
)


def labels_from_masks(masks: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """HxW int32 label image from per-object bool masks (ids 1..n in order; overlaps: last wins)."""
    labels = np.zeros(shape, dtype=np.int32)
    for i, m in enumerate(masks, start=1):
        labels[m] = i
    return labels


def instance_targets(labels: np.ndarray, boundary_width: int = 2) -> np.ndarray:
    """HxWx2 uint8 {0, 1} training target (boundary, foreground) from an HxW label image.

    The boundary is each object's inner ring, ``boundary_width`` pixels thick; between two
    touching objects it is both rings, so body = foreground & ~boundary separates them.
    """
    labels = np.asarray(labels)
    fg = labels > 0
    ring = find_boundaries(labels, mode="inner")
    if boundary_width > 1:
        ring = ndimage.binary_dilation(ring, iterations=boundary_width - 1) & fg
    return np.stack([ring, fg], axis=-1).astype(np.uint8)


@dataclass(frozen=True)
class DecodeSettings:
    """Watershed decoding parameters (stored in the model card's ``instances``)."""

    foreground: float = 0.5  # foreground probability threshold: the objects' extent
    boundary: float = 0.5  # boundary probability below which a foreground pixel is body
    min_marker_px: int = 4  # smaller body components are not markers
    min_size_px: int = 8  # objects smaller than this after flooding are dropped

    @classmethod
    def from_json(cls, obj: dict) -> DecodeSettings:
        """Settings from a card's ``instances`` dict (unknown keys ignored, missing = default)."""
        fields = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls, k))(v) for k, v in obj.items() if k in fields})

    def to_json(self) -> dict:
        """Plain dict for the model card."""
        return asdict(self)


def decode(
    foreground: np.ndarray, boundary: np.ndarray, settings: DecodeSettings = DecodeSettings()
) -> np.ndarray:
    """HxW int32 labels (0 = background, ids 1..n) from foreground and boundary probability maps."""
    fg = np.asarray(foreground, dtype=np.float32)
    mask = fg > settings.foreground
    body = mask & (np.asarray(boundary, dtype=np.float32) < settings.boundary)
    markers, n = ndimage.label(body)
    if n:
        sizes = np.bincount(markers.ravel(), minlength=n + 1)
        small = sizes < settings.min_marker_px
        small[0] = False
        if small.any():
            keep = np.cumsum(~small) - 1  # new ids for kept markers; background stays 0
            keep[small] = 0
            markers = keep[markers].astype(np.int32)
    labels = watershed(-fg, markers, mask=mask) if markers.any() else np.zeros_like(markers)
    orphans, n_orphans = ndimage.label(mask & (labels == 0))
    if n_orphans:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return remove_small(labels.astype(np.int32), settings.min_size_px)


def remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Drop objects smaller than ``min_size`` pixels and renumber the rest 1..n in order."""
    sizes = np.bincount(labels.ravel())
    keep = sizes >= max(1, min_size)
    keep[0] = False
    ids = np.zeros(sizes.size, dtype=np.int32)
    ids[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return ids[labels]


def distance_watershed(mask: np.ndarray, min_distance: int = 3, min_size: int = 8) -> np.ndarray:
    """Classic split of a semantic mask: watershed on its distance transform from local maxima.

    The baseline the instance model is compared against (markers = peaks of the Euclidean
    distance transform at least ``min_distance`` apart, within each connected component).
    """
    from skimage.feature import peak_local_max

    mask = np.asarray(mask, dtype=bool)
    components, _ = ndimage.label(mask)
    dist = ndimage.distance_transform_edt(mask)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=mask)
    orphans, n = ndimage.label(mask & (labels == 0))
    if n:
        labels = np.where(orphans > 0, orphans + labels.max(), labels)
    return remove_small(labels.astype(np.int32), min_size)


def measure_objects(labels: np.ndarray, image: np.ndarray) -> list[dict]:
    """One dict per object (keys `OBJECT_COLUMNS`), measured with skimage's regionprops_table.

    Coordinates are pixels with x to the right and y down; the bounding box is half-open
    [x0, x1) x [y0, y1); mean intensity is of the image's luma (0-255).
    """
    if not np.any(labels):
        return []
    image = np.asarray(image)
    gray = image if image.ndim == 2 else image[..., :3] @ np.array([0.299, 0.587, 0.114])
    t = regionprops_table(
        np.asarray(labels, dtype=np.int32),
        intensity_image=gray.astype(np.float32),
        properties=(
            "label",
            "area",
            "centroid",
            "bbox",
            "equivalent_diameter_area",
            "eccentricity",
            "intensity_mean",
        ),
    )
    rows = []
    for i in range(len(t["label"])):
        rows.append(
            {
                "id": int(t["label"][i]),
                "area_px": int(t["area"][i]),
                "centroid_x": round(float(t["centroid-1"][i]), 2),
                "centroid_y": round(float(t["centroid-0"][i]), 2),
                "bbox_x0": int(t["bbox-1"][i]),
                "bbox_y0": int(t["bbox-0"][i]),
                "bbox_x1": int(t["bbox-3"][i]),
                "bbox_y1": int(t["bbox-2"][i]),
                "equivalent_diameter": round(float(t["equivalent_diameter_area"][i]), 3),
                "eccentricity": round(float(t["eccentricity"][i]), 4),
                "mean_intensity": round(float(t["intensity_mean"][i]), 3),
            }
        )
    return rows
