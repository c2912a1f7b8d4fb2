"""The onnxruntime inference engine: decode any image, run an exported model, clean up the mask.

One `Engine` wraps one ONNX model (``<name>.onnx``) and its card (``<name>.json`` beside it, written
by ``python -m export``). It is safe to share between threads: it holds one InferenceSession (whose
``run`` is thread-safe) and no per-call state. Importing this module never imports TensorFlow or
Keras; pre-processing is `segcore.preprocess`, the same code training uses.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from segcore.instances import DecodeSettings, decode, measure_objects
from segcore.postprocess import Postprocess, count_components, to_image_size
from segcore.preprocess import (
    MAX_PIXELS,
    NORMALIZATION,
    ImageError,
    ImageSource,
    flip_views,
    merge_flips,
    open_image,
    prepare,
    to_model_input,
    to_rgb_array,
)
from segcore.tiling import predict_tiled

CARD_KEYS = ("input_size", "channels")
#: `Engine.load` keeps decoded pixels at least this many times the model input on each side.
REDUCE_TO = 2
REDUCIBLE_MODES = ("RGB", "RGBA", "L", "LA", "I", "F", "CMYK")
MODES = ("resize", "tiled")
OPTIMIZATION_LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class ModelError(ValueError):
    """A model file or card that cannot be used; the message names the file."""


@dataclass(frozen=True)
class LoadedImage:
    """An image decoded for the model: RGB pixels (JPEGs maybe at reduced scale) and full size."""

    pixels: np.ndarray
    width: int
    height: int
    seconds: float


@dataclass(frozen=True)
class Prediction:
    """One image's result, at the image's original size (after EXIF rotation)."""

    probability: np.ndarray  # HxW float16 in [0, 1] (consumers must not assume float32)
    mask: np.ndarray  # HxW bool, thresholded and post-processed
    width: int
    height: int
    area_px: int
    area_pct: float
    components: int
    seconds: float
    labels: np.ndarray | None = None  # HxW int32 instance ids, 0 = background (instance models)
    objects: list[dict] | None = None  # one dict per instance (segcore.instances.OBJECT_COLUMNS)

    @property
    def count(self) -> int:
        """Number of objects: instances for instance models, connected components otherwise."""
        return int(self.labels.max()) if self.labels is not None else self.components


EngineInput = ImageSource | np.ndarray | LoadedImage


def default_providers() -> list[str]:
    """CUDA then CPU when this onnxruntime build has CUDA, else CPU alone."""
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def quiet_onnxruntime_logs() -> None:
    """Show only fatal onnxruntime messages in this process: for entry points, never on import.

    On a machine without a usable GPU, onnxruntime-gpu logs the CUDA provider's "failed to load,
    falling back to CPU" at error level through its process-wide default logger, which session
    options do not reach. Real failures still raise Python exceptions.
    """
    ort.set_default_logger_severity(4)


def read_card(path: Path) -> dict:
    """Read a model card and check what the engine needs from it; raises ModelError.

    Checks: a JSON object with `CARD_KEYS`; ``input_size`` a positive whole number divisible by
    the model's stride (2 ** ``arch_kwargs.depth`` when the card names the depth); ``channels``
    1 or 3; ``threshold`` (when present) a number in [0, 1]; the normalization we implement.
    """
    try:
        card = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: model card not found (python -m export writes it)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable model card ({exc})") from exc
    if not isinstance(card, dict):
        raise ModelError(f"{path}: model card is not a JSON object")
    missing = [k for k in CARD_KEYS if k not in card]
    if missing:
        raise ModelError(f"{path}: model card lacks {', '.join(missing)}")
    arch = card.get("arch_kwargs")
    depth = _whole_number(arch.get("depth")) if isinstance(arch, dict) else None
    stride = 2**depth if depth is not None and depth >= 0 else 1
    size = _whole_number(card["input_size"])
    if size is None or size <= 0 or size % stride:
        rule = f" divisible by {stride} (2**depth, the model's stride)" if stride > 1 else ""
        raise ModelError(
            f"{path}: input_size must be a positive whole number{rule}, not {card['input_size']!r}"
        )
    if _whole_number(card["channels"]) not in (1, 3):
        raise ModelError(f"{path}: channels must be 1 or 3, not {card['channels']!r}")
    threshold = card.get("threshold")
    if "threshold" in card and not (_is_number(threshold) and 0.0 <= threshold <= 1.0):
        raise ModelError(f"{path}: threshold must be a number from 0 to 1, not {threshold!r}")
    if card.get("normalization", NORMALIZATION) != NORMALIZATION:
        raise ModelError(f"{path}: unsupported normalization {card['normalization']!r}")
    if card.get("mode", "resize") not in MODES:
        raise ModelError(f"{path}: unknown mode {card['mode']!r} (expected one of {MODES})")
    if card.get("mode") == "tiled" and "tile" not in card:
        raise ModelError(f"{path}: a tiled model card needs tile size and overlap")
    return card


def _is_number(value: object) -> bool:
    """True for a JSON number (int or float), false for bools, strings and the rest."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole_number(value: object) -> int | None:
    """A JSON number with no fraction as an int (256 or 256.0), else None."""
    if not _is_number(value) or value != value or not float(value).is_integer():
        return None
    return int(value)


class Engine:
    """An exported segmentation model ready to run on user images (thread-safe)."""

    def __init__(
        self,
        model_path: str | Path,
        card_path: str | Path | None = None,
        providers: Sequence[str] | None = None,
        *,
        max_pixels: int = MAX_PIXELS,
        threads: int | None = None,
    ) -> None:
        """Load ``model_path`` and its card (default: the ``.json`` beside it).

        ``providers`` defaults to `default_providers`; `providers` then lists those really in
        use. ``max_pixels`` caps the accepted image size; ``threads`` sets onnxruntime's
        intra-op threads (default: one per core).
        """
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: model file not found")
        self.card = read_card(
            Path(card_path) if card_path else self.model_path.with_suffix(".json")
        )
        self.name: str = self.card.get("name", self.model_path.stem)
        self.input_size = int(self.card["input_size"])
        self.channels = int(self.card["channels"])
        self.threshold = float(self.card.get("threshold", 0.5))
        pp = self.card.get("postprocess")
        self.postprocess = (
            Postprocess.from_json(pp)
            if pp
            else Postprocess.for_dataset(self.card.get("dataset", ""))
        )
        self.mode: str = self.card.get("mode", "resize")
        self.instances = (
            DecodeSettings.from_json(self.card["instances"]) if "instances" in self.card else None
        )
        self.max_pixels = max_pixels
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # measured by bench.session_options (bench/results/session-options-*.json): one thread
        # per core, no spinning, sequential execution were fastest for a batch-1 call followed
        # by full-size finishing, and as fast as any for batch 8; spinning workers steal the
        # cores that decoding, resizing and clean-up need next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # the card names the level whose parity with Keras export checked: ORT_ENABLE_ALL (NCHWc
        # layouts, ~16% faster on CPU) moved one instance-norm U-Net by 8e-4, EXTENDED by 4e-6
        level = self.card.get("ort_optimization", "extended")
        if level not in OPTIMIZATION_LEVELS:
            raise ModelError(f"{self.model_path}: unknown ort_optimization {level!r} in the card")
        options.graph_optimization_level = OPTIMIZATION_LEVELS[level]
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        try:
            self._session = ort.InferenceSession(
                str(self.model_path), options, providers=list(providers or default_providers())
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.model_path}: not a usable ONNX model ({exc})") from exc
        self.providers: list[str] = self._session.get_providers()
        inp = self._session.get_inputs()[0]
        if isinstance(inp.shape[-1], int) and inp.shape[-1] != self.channels:
            raise ModelError(
                f"{self.model_path}: input has {inp.shape[-1]} channels, card says {self.channels}"
            )
        self._input_name = inp.name
        self._output_name = self._session.get_outputs()[0].name

    def load(self, image: EngineInput) -> LoadedImage:
        """Decode a path, bytes, file object or array into RGB pixels; raises ImageError.

        JPEGs much larger than the model input decode at 1/2-1/8 scale (Pillow ``draft``), other
        formats are box-reduced after decoding (`REDUCE_TO` times the input size or more); the
        full size is kept so the mask comes back at the original size.
        """
        if isinstance(image, LoadedImage):
            return image
        start = time.perf_counter()
        if isinstance(image, np.ndarray):
            pixels = _array_to_rgb(image)
            height, width = pixels.shape[:2]
        else:
            # tiled models work at native scale: decode at full size
            draft = None if self.mode == "tiled" else (self.input_size, self.input_size)
            img = open_image(image, draft_size=draft, max_pixels=self.max_pixels)
            width, height = img.info["full_size"]
            pixels = to_rgb_array(img if self.mode == "tiled" else _reduced(img, self.input_size))
        if width * height > self.max_pixels:
            raise ImageError(
                f"{_display_name(image)}: {width}x{height} is above the "
                f"{self.max_pixels:,}-pixel limit"
            )
        return LoadedImage(pixels, width, height, time.perf_counter() - start)

    def probabilities(self, batch: np.ndarray, tta: bool = False) -> np.ndarray:
        """Run the model on NxHxWxC float32 input in [0, 1]; returns NxHxW probabilities (the
        main output channel; `channel_maps` has them all).

        ``tta`` averages the four flips (identity, horizontal, vertical, both) in one run call.
        """
        return self.channel_maps(batch, tta)[..., -1]

    def channel_maps(self, batch: np.ndarray, tta: bool = False) -> np.ndarray:
        """All output channels (N, H, W, K) of an NHWC float32 batch, flip-averaged with tta."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if tta:
            return merge_flips(np.split(self.channel_maps(np.concatenate(flip_views(batch))), 4))
        return self._session.run([self._output_name], {self._input_name: batch})[0]

    def tiled_channels(self, pixels: np.ndarray, tta: bool = False) -> np.ndarray:
        """HxWxK output channels of an HxWx3 uint8 image, by overlapping tiles at native scale."""
        tile = self.card["tile"]  # read_card checked that tiled cards have one
        depth = int(self.card.get("arch_kwargs", {}).get("depth", 4))
        return predict_tiled(
            to_model_input(pixels, self.channels),
            lambda batch: self.channel_maps(batch, tta),
            int(tile["size"]),
            float(tile["overlap"]),
            multiple=2**depth,
        )

    def _predict_tiled(
        self, im: LoadedImage, threshold: float | None, settings: Postprocess, tta: bool
    ) -> Prediction:
        """One image at native scale: tiles, then instance decoding or threshold + clean-up."""
        t0 = time.perf_counter()
        channels = self.tiled_channels(im.pixels, tta)
        prob = channels[..., -1]
        labels = objects = None
        if self.instances is not None:
            decoding = self.instances
            if threshold is not None:
                decoding = DecodeSettings(**{**decoding.to_json(), "foreground": float(threshold)})
            labels = decode(prob, channels[..., 0], decoding)
            objects = measure_objects(labels, im.pixels)
            mask = labels > 0
        else:
            mask = settings.apply(prob > (self.threshold if threshold is None else threshold))
        area = int(np.count_nonzero(mask))
        return Prediction(
            probability=prob,
            mask=mask,
            width=im.width,
            height=im.height,
            area_px=area,
            area_pct=100.0 * area / mask.size,
            components=count_components(mask),
            seconds=im.seconds + time.perf_counter() - t0,
            labels=labels,
            objects=objects,
        )

    def predict(
        self,
        image: EngineInput,
        *,
        threshold: float | None = None,
        tta: bool = False,
        postprocess: Postprocess | bool = True,
    ) -> Prediction:
        """Segment one image; see `predict_batch` for the options."""
        return self.predict_batch([image], threshold=threshold, tta=tta, postprocess=postprocess)[0]

    def predict_batch(
        self,
        images: Sequence[EngineInput],
        *,
        threshold: float | None = None,
        tta: bool = False,
        postprocess: Postprocess | bool = True,
        batch_size: int = 8,
    ) -> list[Prediction]:
        """Segment several images, ``batch_size`` per onnxruntime call; raises ImageError.

        ``threshold`` defaults to the card's; ``postprocess`` True uses the card's settings
        (`postprocess`), False none, or pass explicit `Postprocess` settings.
        """
        loaded = [self.load(im) for im in images]
        if self.mode == "tiled":
            settings = self._settings(postprocess)
            return [self._predict_tiled(im, threshold, settings, tta) for im in loaded]
        size = (self.input_size, self.input_size)
        results: list[Prediction] = []
        for start in range(0, len(loaded), max(1, batch_size)):
            chunk = loaded[start : start + batch_size]
            t0 = time.perf_counter()
            x = np.stack([prepare(im.pixels, size, self.channels) for im in chunk])
            probs = self.probabilities(x, tta=tta)
            shared = (time.perf_counter() - t0) / len(chunk)
            for im, prob in zip(chunk, probs, strict=True):
                results.append(
                    self.finish(
                        im,
                        prob,
                        threshold=threshold,
                        postprocess=postprocess,
                        seconds=im.seconds + shared,
                    )
                )
        return results

    def _settings(self, postprocess: Postprocess | bool) -> Postprocess:
        """The clean-up to apply: the card's (True), none (False), or the settings given."""
        if postprocess is True:
            return self.postprocess
        if postprocess is False:
            return Postprocess.none()
        return postprocess

    def finish(
        self,
        image: LoadedImage,
        prob: np.ndarray,
        *,
        threshold: float | None = None,
        postprocess: Postprocess | bool = True,
        seconds: float = 0.0,
    ) -> Prediction:
        """Turn one model-size probability map of ``image`` into its image-size `Prediction`.

        Options as in `predict_batch`; ``seconds`` already spent is added to the result's.
        """
        t0 = time.perf_counter()
        thr = self.threshold if threshold is None else float(threshold)
        out = to_image_size(prob, (image.height, image.width), thr, self._settings(postprocess))
        area = int(np.count_nonzero(out.mask))
        return Prediction(
            probability=out.probability,
            mask=out.mask,
            width=image.width,
            height=image.height,
            area_px=area,
            area_pct=100.0 * area / out.mask.size,
            components=out.components,
            seconds=seconds + time.perf_counter() - t0,
        )


def _reduced(img: Image.Image, input_size: int) -> Image.Image:
    """``img`` box-reduced by the largest whole factor keeping both sides >= REDUCE_TO x input.

    Converting a decoded 79-megapixel PNG to an array would copy it at full size; the model
    sees it at ``input_size`` anyway. Modes Pillow cannot reduce are returned as they are.
    """
    factor = min(img.width, img.height) // (REDUCE_TO * input_size)
    if factor < 2 or img.mode not in REDUCIBLE_MODES:
        return img
    return img.reduce(factor)


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB array from any image-like array (gray, RGBA, 16-bit, float)."""
    if array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
        return array
    try:
        return to_rgb_array(Image.fromarray(array))
    except (TypeError, ValueError) as exc:
        raise ImageError(
            f"<array>: not an image array (shape {array.shape}, {array.dtype})"
        ) from exc


def _display_name(image: EngineInput) -> str:
    """How error messages name an input: its path, a file object's name, or its kind."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    if isinstance(image, np.ndarray):
        return "<array>"
    return getattr(image, "name", "<bytes>")
