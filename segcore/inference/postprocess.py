"""Clean-up of binary masks after thresholding, and connected-component counting (scipy.ndimage).

Defaults by dataset (`Postprocess.for_dataset`):
- ``isic`` (one skin lesion per photo): keep the largest component and fill holes;
- ``dsb`` and ``plain`` (many nuclei / objects): fill holes only, so every object is kept.

Components are 4-connected (``scipy.ndimage.label``'s default cross structure), so nuclei that
touch only at a corner count as two. Holes are found by labelling the background: a background
region that does not touch the image border is a hole. That is the result of
``scipy.ndimage.binary_fill_holes`` in linear time.

`to_image_size` turns a model-size probability map into the image-size mask. For an image larger
than the model input the clean-up runs at model resolution and only its outcome is carried to
full size: removed components and filled holes become probability 0 and 1 in the model-size map,
whose bilinear upsampling is thresholded. The full-size work is one resize and one comparison,
done in strips of rows in float32 into float16 probabilities and a bool mask, so a 79-megapixel
image needs no full-size float32 or label array.

scipy and scikit-image are imported inside the functions that use them, so importing this module
(for its settings and names) keeps every command's ``--help`` instant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image

#: Rows of full-size float32 probabilities resized at a time by `to_image_size`.
STRIP_ROWS = 256
#: float16's smallest normal number; `to_image_size` stores probabilities below it as 0.
F16_TINY = np.float32(np.finfo(np.float16).smallest_normal)


def count_components(mask: np.ndarray) -> int:
    """Number of 4-connected foreground regions in an HxW bool mask."""
    from scipy import ndimage

    return int(ndimage.label(mask)[1])


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected foreground region of an HxW bool mask (empty stays empty)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask.astype(bool, copy=True)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(sizes.argmax())


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions enclosed by foreground (not touching the image border)."""
    from scipy import ndimage

    background, n = ndimage.label(~mask)
    if n == 0:
        return mask.astype(bool, copy=True)
    border = np.unique(
        np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    )
    outside = np.zeros(n + 1, dtype=bool)
    outside[border] = True
    outside[0] = True  # label 0 is the foreground itself
    return mask | ~outside[background]


@dataclass(frozen=True)
class Postprocess:
    """Which clean-up steps to apply to a thresholded mask, in order: keep largest, fill holes."""

    keep_largest: bool = False
    fill_holes: bool = True

    @classmethod
    def for_dataset(cls, dataset: str) -> Postprocess:
        """Default settings: keep the largest component for ``isic`` lesions; fill holes always."""
        return cls(keep_largest=dataset == "isic", fill_holes=True)

    @classmethod
    def none(cls) -> Postprocess:
        """Settings that leave the mask untouched."""
        return cls(keep_largest=False, fill_holes=False)

    @classmethod
    def from_json(cls, obj: dict) -> Postprocess:
        """Settings from a model card's ``postprocess`` object (missing keys take the defaults)."""
        return cls(**{k: bool(obj[k]) for k in ("keep_largest", "fill_holes") if k in obj})

    def to_json(self) -> dict[str, bool]:
        """Plain dict for the model card."""
        return asdict(self)

    def apply(self, mask: np.ndarray) -> np.ndarray:
        """Apply the enabled steps to an HxW bool mask (returned as is when none is enabled)."""
        out = np.asarray(mask, dtype=bool)
        if self.keep_largest:
            out = keep_largest_component(out)
        if self.fill_holes:
            out = fill_holes(out)
        return out


@dataclass(frozen=True)
class ImageSizeMask:
    """A prediction at the image's size: probabilities, the cleaned mask and its component count."""

    probability: np.ndarray  # HxW float16 in [0, 1] (under 6.1e-5 stored as 0)
    mask: np.ndarray  # HxW bool
    components: int


def to_image_size(
    prob: np.ndarray, size: tuple[int, int], threshold: float, settings: Postprocess
) -> ImageSizeMask:
    """Resize a model-size HxW probability map to ``size`` (height, width) and make the mask.

    An image with no more pixels than the map is thresholded and cleaned at full size. A larger
    one is cleaned at the map's resolution and the outcome upsampled (see the module docstring);
    ``components`` then counts the cleaned mask at that resolution.
    """
    prob = np.asarray(prob, dtype=np.float32)
    height, width = size
    if height * width <= prob.size:
        full = _resize(prob, (height, width), (0, height, 0, width))
        mask = settings.apply(full > threshold)
        return ImageSizeMask(_float16(full), mask, count_components(mask))
    raw = prob > threshold
    kept = settings.apply(raw)
    probability = np.empty((height, width), dtype=np.float16)
    mask = np.empty((height, width), dtype=bool)

    def fill(rows: slice, strip: np.ndarray) -> None:
        probability[rows] = _float16(strip)
        np.greater(strip, threshold, out=mask[rows])

    _each_strip(prob, size, (0, height, 0, width), fill)
    changed = kept != raw
    if changed.any():
        decided = np.where(changed, kept.astype(np.float32), prob)
        y0, y1, x0, x1 = _affected(changed, size)

        def overwrite(rows: slice, strip: np.ndarray) -> None:
            np.greater(strip, threshold, out=mask[rows, x0:x1])

        _each_strip(decided, size, (y0, y1, x0, x1), overwrite)
    return ImageSizeMask(probability, mask, count_components(kept))


def _float16(prob: np.ndarray) -> np.ndarray:
    """``prob`` as float16, values under float16's smallest normal number (6.1e-5) as 0.

    numpy converts float16 subnormals about 18 times slower than normal numbers, and a model's
    background is mostly probabilities of 1e-6 and less.
    """
    return np.where(prob < F16_TINY, np.float32(0), prob).astype(np.float16)


def _affected(changed: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Full-size box (y0, y1, x0, x1) of the pixels whose bilinear support meets ``changed``."""
    h, w = changed.shape
    height, width = size
    # the filter reaches one source pixel when upsampling, the scale factor when downsampling
    pad = math.ceil(max(1.0, h / height, w / width)) + 1
    ys, xs = np.nonzero(changed.any(axis=1))[0], np.nonzero(changed.any(axis=0))[0]
    y0, y1 = max(0, ys[0] - pad), min(h, ys[-1] + 1 + pad)
    x0, x1 = max(0, xs[0] - pad), min(w, xs[-1] + 1 + pad)
    return (
        math.floor(y0 * height / h),
        math.ceil(y1 * height / h),
        math.floor(x0 * width / w),
        math.ceil(x1 * width / w),
    )


def _each_strip(
    prob: np.ndarray,
    size: tuple[int, int],
    box: tuple[int, int, int, int],
    use: Callable[[slice, np.ndarray], None],
) -> None:
    """Call ``use(rows, strip)`` on the ``box`` (y0, y1, x0, x1) of ``prob`` resized to ``size``.

    One float32 strip of at most `STRIP_ROWS` rows exists at a time.
    """
    y0, y1, x0, x1 = box
    for top in range(y0, y1, STRIP_ROWS):
        bottom = min(y1, top + STRIP_ROWS)
        use(slice(top, bottom), _resize(prob, size, (top, bottom, x0, x1)))


def _resize(prob: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """Rows y0:y1, columns x0:x1 of ``prob`` bilinearly resized to ``size``, as float32.

    Pillow samples a sub-box at the same positions as the whole resize, so strips put together
    equal one full-size resize (to float rounding).
    """
    h, w = prob.shape
    height, width = size
    y0, y1, x0, x1 = box
    source = (x0 * w / width, y0 * h / height, x1 * w / width, y1 * h / height)
    img = Image.fromarray(prob, mode="F")
    return np.asarray(img.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=source))
