"""The onnxruntime inference engine: decode any image, run an exported model, clean up the mask.

One `Engine` wraps one model and its card (`segcore.card.ModelCard`): by default an ONNX model
(``<name>.onnx``) run by onnxruntime (`segcore.inference.onnx_runner.OnnxRunner`) with the card beside it
(``<name>.json``, written by ``python -m export``). The pipeline around the model is the same for
any runner (`Engine.from_runner`: evaluation passes a Keras model's): decoding, pre-processing,
whole-image or tiled run, test-time flips, post-processing and instance decoding, all read from
the card. It is safe to share between threads: the runner's session is thread-safe and the engine
keeps no per-call state. Importing this module never imports TensorFlow or Keras. Pixels become
model input through the card's one input contract (`segcore.inference.model_input.InputContract`), the
same one the block-wise path, the app and napari use: a 16-bit PNG and the same plane in a
16-bit TIFF reach the model alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from segcore.card import ModelCard, TileSpec
from segcore.errors import ImageError, ModelError
from segcore.inference.instances import DecodeSettings, decode, measure_objects
from segcore.inference.model_input import ImageMapping, InputContract, raw_array, raw_pixels
from segcore.inference.postprocess import Postprocess, count_components, to_image_size
from segcore.inference.preprocess import (
    MAX_PIXELS,
    ImageSource,
    flip_averaged,
    open_image,
    resize_image,
)
from segcore.inference.tiling import predict_tiled
from segcore.kinds import image_kind

#: `Engine.load` keeps decoded pixels at least this many times the model input on each side.
REDUCE_TO = 2
REDUCIBLE_MODES = ("RGB", "RGBA", "L", "LA", "I", "F", "CMYK")
#: Tiles per run call at native scale: one 1024x1024 tile of the nuclei U-Net already holds
#: hundreds of MB of activations (four per call: 2.4 GB for a 1100x1100 image, one: 1.05 GB).
TILE_BATCH = 1
#: A model runner: NHWC float32 batch in [0, 1] -> NHWK output channels (the main one last).
Runner = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LoadedImage:
    """An image decoded for the model (JPEGs maybe at reduced scale) and its full size.

    ``pixels`` is the 8-bit RGB view (`segcore.inference.model_input.InputContract.view`: overlays, the
    image's kind); ``raw`` the pixels of their own type (HxWxC) the model input is made from and
    measurements are taken on (``pixels`` when None); ``mapping`` their intensity mapping (fitted
    by the engine when None).
    """

    pixels: np.ndarray
    width: int
    height: int
    seconds: float
    raw: np.ndarray | None = None
    mapping: ImageMapping | None = None

    @property
    def source(self) -> np.ndarray:
        """The raw pixels (HxWxC): ``raw``, else the RGB ``pixels``."""
        return self.pixels if self.raw is None else self.raw


#: The columns of a prediction's figures in every CSV (`segcore.commands.predict` and the app).
FIGURE_COLUMNS = ("width", "height", "area_px", "area_pct", "components", "count", "seconds")


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
    objects: list[dict] | None = (
        None  # one dict per instance (segcore.inference.instances.OBJECT_COLUMNS)
    )

    @classmethod
    def of(
        cls,
        probability: np.ndarray,
        mask: np.ndarray,
        seconds: float,
        components: int | None = None,
        labels: np.ndarray | None = None,
        objects: list[dict] | None = None,
    ) -> Prediction:
        """A prediction with its area and component count measured from ``mask``."""
        area = int(np.count_nonzero(mask))
        return cls(
            probability=probability,
            mask=mask,
            width=int(mask.shape[1]),
            height=int(mask.shape[0]),
            area_px=area,
            area_pct=100.0 * area / mask.size,
            components=count_components(mask) if components is None else components,
            seconds=seconds,
            labels=labels,
            objects=objects,
        )

    def instance_labels(self) -> np.ndarray:
        """The instance labels of an instance model's prediction (ValueError for another)."""
        if self.labels is None:
            raise ValueError("not an instance model's prediction: no labels")
        return self.labels

    @property
    def count(self) -> int:
        """Number of objects: instances for instance models, connected components otherwise."""
        return int(self.labels.max()) if self.labels is not None else self.components

    def figures(self) -> dict[str, int | float]:
        """The scalar figures (`FIGURE_COLUMNS`) as plain Python numbers."""
        return {
            "width": self.width,
            "height": self.height,
            "area_px": self.area_px,
            "area_pct": float(self.area_pct),
            "components": int(self.components),
            "count": self.count,
            "seconds": float(self.seconds),
        }


def figure_cells(figures: dict) -> dict[str, str | int]:
    """A prediction's figures (`Prediction.figures`) as CSV cells: the one row shape of
    ``predictions.csv`` and the app's batch CSV (area to 0.001 %, seconds to 0.1 ms)."""
    cells: dict[str, str | int] = {k: figures.get(k, "") for k in FIGURE_COLUMNS}
    cells["area_pct"] = f"{figures.get('area_pct', 0.0):.3f}"
    cells["seconds"] = f"{figures.get('seconds', 0.0):.4f}"
    return cells


EngineInput = ImageSource | np.ndarray | LoadedImage


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
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"{model_path}: model file not found")
        card = ModelCard.read(Path(card_path) if card_path else model_path.with_suffix(".json"))
        from segcore.inference.onnx_runner import (
            OnnxRunner,  # onnxruntime loads with the first engine
        )

        runner = OnnxRunner(model_path, card, providers, threads)
        self._setup(card, runner, max_pixels)
        self.model_path: Path | None = model_path
        self.providers: list[str] = runner.providers

    @classmethod
    def from_runner(
        cls, card: ModelCard, runner: Runner, *, max_pixels: int = MAX_PIXELS
    ) -> Engine:
        """An engine around any runner (evaluation passes a Keras model's)."""
        engine = cls.__new__(cls)
        engine._setup(card, runner, max_pixels)
        engine.model_path = None
        engine.providers = []
        return engine

    @property
    def model_file(self) -> Path:
        """The ONNX file this engine runs (ValueError for an engine around another runner)."""
        if self.model_path is None:
            raise ValueError(f"{self.name}: this engine runs no model file")
        return self.model_path

    def _setup(self, card: ModelCard, runner: Runner, max_pixels: int) -> None:
        self.card = card
        self.name = card.name
        self.input_size = card.input_size
        self.channels = card.channels
        self.threshold = card.threshold
        self.postprocess = card.postprocess
        self.mode = card.mode
        self.instances = card.instances
        self.max_pixels = max_pixels
        self.contract = InputContract.of(card)
        self._run = runner

    @property
    def runner(self) -> Runner:
        """What runs the model on an NHWC batch: give it to `from_runner` for an engine with
        other card settings around the same loaded model."""
        return self._run

    def load(self, image: EngineInput) -> LoadedImage:
        """Decode a path, bytes, file object or array into raw pixels, their mapping and their
        8-bit view (`LoadedImage`); raises ImageError.

        JPEGs much larger than the model input decode at 1/2-1/8 scale (Pillow ``draft``), other
        formats are box-reduced after decoding (`REDUCE_TO` times the input size or more); the
        full size is kept so the mask comes back at the original size. A `LoadedImage` without a
        mapping gets one.
        """
        if isinstance(image, LoadedImage):
            if image.mapping is not None:
                return image
            mapping = self.contract.fit_image(image.source)
            return LoadedImage(
                image.pixels, image.width, image.height, image.seconds, image.raw, mapping
            )
        start = time.perf_counter()
        if isinstance(image, np.ndarray):
            raw = raw_array(image)
            height, width = raw.shape[:2]
        else:
            # tiled models work at native scale: decode at full size
            draft = None if self.mode == "tiled" else (self.input_size, self.input_size)
            img = open_image(image, draft_size=draft, max_pixels=self.max_pixels)
            width, height = img.info["full_size"]
            raw = raw_pixels(img if self.mode == "tiled" else _reduced(img, self.input_size))
        if width * height > self.max_pixels:
            raise ImageError(
                f"{_display_name(image)}: {width}x{height} is above the "
                f"{self.max_pixels:,}-pixel limit"
            )
        mapping = self.contract.fit_image(raw)
        view = self.contract.view(raw, mapping)
        return LoadedImage(view, width, height, time.perf_counter() - start, raw, mapping)

    def model_input(self, image: LoadedImage) -> np.ndarray:
        """HxWxC float32 model input of a loaded image at its decoded size (the contract)."""
        image = self.load(image)
        assert image.mapping is not None  # `load` fits the mapping of an image without one
        return self.contract.model_input(image.source, image.mapping)

    def resized_input(self, image: LoadedImage) -> np.ndarray:
        """Model input of a resize-mode model: the raw pixels resized to the card's input size
        (8-bit RGB as Pillow resizes them in training, wider types as float32), then mapped."""
        image = self.load(image)
        assert image.mapping is not None  # `load` fits the mapping of an image without one
        size = (self.input_size, self.input_size)
        raw = image.source
        if raw.dtype == np.uint8 and raw.shape[-1] == 3:
            resized = resize_image(raw, size)
        else:
            resized = np.stack(
                [_resize_plane(raw[..., c], size) for c in range(raw.shape[-1])], axis=-1
            )
        return self.contract.model_input(resized, image.mapping)

    def probabilities(self, batch: np.ndarray, tta: bool = False) -> np.ndarray:
        """Run the model on NxHxWxC float32 input in [0, 1]; returns NxHxW probabilities (the
        main output channel; `channel_maps` has them all).

        ``tta`` averages the four flips (identity, horizontal, vertical, both) in one run call.
        """
        return self.channel_maps(batch, tta)[..., -1]

    def channel_maps(self, batch: np.ndarray, tta: bool = False) -> np.ndarray:
        """All output channels (N, H, W, K) of an NHWC float32 batch, flip-averaged with tta."""
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return np.asarray((flip_averaged(self._run) if tta else self._run)(batch))

    def decoding_for(self, pixels: np.ndarray) -> DecodeSettings | None:
        """The card's decoding settings for an HxWx3 uint8 image (a `LoadedImage`'s view):
        those of its kind (`segcore.kinds.image_kind`) when the card has per-kind settings, else
        ``instances``."""
        if not self.card.instances_by_kind:
            return self.instances
        return self.card.decoding_for(image_kind(pixels))

    def tiled_channels(self, image: EngineInput, tta: bool = False) -> np.ndarray:
        """HxWxK output channels of an image (raw pixels, a file or a `LoadedImage`) by
        overlapping tiles at native scale."""
        tile = self.card.tile
        if tile is None:  # resize-mode models: one window of the card's input size
            tile = TileSpec(self.input_size, 0.0)
        return predict_tiled(
            self.model_input(self.load(image)),
            lambda batch: self.channel_maps(batch, tta),
            tile.size,
            tile.overlap,
            multiple=self.card.stride,
            batch_size=TILE_BATCH,
        )

    def _predict_tiled(
        self, im: LoadedImage, threshold: float | None, settings: Postprocess, tta: bool
    ) -> Prediction:
        """One image at native scale: tiles, then instance decoding or threshold + clean-up."""
        t0 = time.perf_counter()
        channels = self.tiled_channels(im, tta)
        prob = channels[..., -1]
        labels = objects = None
        if self.instances is not None:
            decoding = self.decoding_for(im.pixels) or self.instances
            if threshold is not None:
                decoding = DecodeSettings(**{**decoding.to_json(), "foreground": float(threshold)})
            labels = decode(prob, channels[..., 0], decoding)
            objects = measure_objects(labels, im.source)  # raw values, as the block-wise path
            mask = labels > 0
        else:
            mask = settings.apply(prob > (self.threshold if threshold is None else threshold))
        seconds = im.seconds + time.perf_counter() - t0
        return Prediction.of(prob, mask, seconds, labels=labels, objects=objects)

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
        results: list[Prediction] = []
        for start in range(0, len(loaded), max(1, batch_size)):
            chunk = loaded[start : start + batch_size]
            t0 = time.perf_counter()
            x = np.stack([self.resized_input(im) for im in chunk])
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
        seconds += time.perf_counter() - t0
        return Prediction.of(out.probability, out.mask, seconds, components=out.components)


def _reduced(img: Image.Image, input_size: int) -> Image.Image:
    """``img`` box-reduced by the largest whole factor keeping both sides >= REDUCE_TO x input.

    Converting a decoded 79-megapixel PNG to an array would copy it at full size; the model
    sees it at ``input_size`` anyway. Modes Pillow cannot reduce are returned as they are.
    """
    factor = min(img.width, img.height) // (REDUCE_TO * input_size)
    if factor < 2 or img.mode not in REDUCIBLE_MODES:
        return img
    return img.reduce(factor)


def _resize_plane(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An HxW plane of any type resized to (height, width) as float32 (bilinear, antialiased)."""
    h, w = size
    if plane.shape == (h, w):
        return plane.astype(np.float32)
    img = Image.fromarray(np.ascontiguousarray(plane, dtype=np.float32))
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def _display_name(image: EngineInput) -> str:
    """How error messages name an input: its path, a file object's name, or its kind."""
    if isinstance(image, (str, os.PathLike)):
        return str(image)
    if isinstance(image, np.ndarray):
        return "<array>"
    return getattr(image, "name", "<bytes>")
