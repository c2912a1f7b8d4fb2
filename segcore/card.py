"""The model card: one typed reader, validator and set of defaults for ``models/<name>.json``.

The card is the contract between training and inference: everything the engine does to an image
(input size and channels, intensity mapping, resize or native-scale tiles, threshold,
post-processing, instance decoding) is read from it. `ModelCard.read` checks a card once, with a
one-line `ModelError` naming the file for anything the engine could not use safely, and fills the
defaults in one place; the rest of the card (training facts, scores, statistics) stays available
as `ModelCard.raw` for the pages that show it. `ModelCard.for_run` builds the same object from a
training run's config, so evaluation of a Keras model runs the very pipeline the ONNX model gets.
Pure Python: reading a card imports neither onnxruntime nor Keras.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from segcore.errors import ModelError
from segcore.inference.instances import MARKERS, DecodeSettings
from segcore.inference.intensity import DEFAULT_RULE, RULES
from segcore.inference.postprocess import Postprocess
from segcore.inference.preprocess import (
    DEFAULT_THRESHOLD,
    NORMALIZATION,
    NORMALIZATIONS,
    PERCENTILES,
)
from segcore.kinds import KINDS

#: Keys every card must have.
REQUIRED = ("input_size", "channels")
#: How the engine fits an image to the model: resized to ``input_size``, or native-scale tiles.
MODES = ("resize", "tiled")
#: onnxruntime graph optimisation levels a card may name (export checked parity at that level).
ORT_LEVELS = ("basic", "extended", "all")
#: Depth (down-sampling steps) of a card that does not name one: the registry's default.
DEFAULT_DEPTH = 4
#: The largest tile side accepted (pixels) and the largest overlap between tiles: an overlap of
#: 0.999 moves a 1024 tile by one pixel, a million model runs for a 1024x1024 image.
MAX_TILE = 8192
MAX_OVERLAP = 0.9
#: Families of data sets with bundled samples; a card's dataset may carry a suffix (``dsb256``).
FAMILIES = ("isic", "dsb")
#: Median equivalent diameter of the DSB training nuclei in pixels (10,727 nuclei of every other
#: training image of the shipped split); a card's ``object_diameter_px`` overrides it.
TYPICAL_DIAMETER_PX = 18.0


@dataclass(frozen=True)
class TileSpec:
    """Native-scale tiling: window side in pixels and the fraction by which windows overlap."""

    size: int
    overlap: float

    def to_json(self) -> dict:
        """Plain dict for the card."""
        return {"size": self.size, "overlap": self.overlap}


@dataclass(frozen=True)
class ModelCard:
    """A checked model card: the settings the engine follows, typed and defaulted."""

    name: str
    input_size: int
    channels: int
    dataset: str = ""
    arch: str = "?"
    depth: int = DEFAULT_DEPTH
    normalization: str = NORMALIZATION
    threshold: float = DEFAULT_THRESHOLD
    mode: str = "resize"
    tile: TileSpec | None = None
    instances: DecodeSettings | None = None
    #: Decoding settings for images of one kind (`segcore.kinds`), chosen on that kind's
    #: validation images; other kinds use ``instances``.
    instances_by_kind: dict[str, DecodeSettings] = field(default_factory=dict)
    postprocess: Postprocess = field(default_factory=Postprocess)
    ort_optimization: str = "extended"
    #: Low and high percentiles of the ``percentile`` normalisation (card key
    #: ``normalization_percentiles``), mapped to 0 and 1.
    percentiles: tuple[float, float] = PERCENTILES
    #: The intensity rule for files wider than 8 bits (`segcore.inference.intensity`), defaults filled in.
    intensity: dict = field(default_factory=lambda: dict(DEFAULT_RULE))
    #: Bright-field images are inverted before the model (`segcore.kinds.invert_brightfield`).
    invert_brightfield: bool = False
    #: Typical object diameter in the training images, pixels (``--object-diameter`` scales to it).
    object_diameter_px: float = TYPICAL_DIAMETER_PX
    #: The training sources with their licences and citations (``sources`` of the card).
    sources: tuple[dict, ...] = ()
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def stride(self) -> int:
        """The model's size divisor (2**depth): input sides must be multiples of it."""
        return 2**self.depth

    @property
    def family(self) -> str:
        """The dataset family (``isic``, ``dsb``) the dataset name starts with, else the name."""
        low = self.dataset.lower()
        return next((f for f in FAMILIES if low.startswith(f)), low)

    @property
    def outputs(self) -> int:
        """Output channels the model must have: the marker channel and foreground, or one."""
        return 2 if self.instances is not None else 1

    def decoding_for(self, kind: str | None) -> DecodeSettings | None:
        """The decoding settings for an image of ``kind`` (``instances`` when the card has none
        of its own for that kind; None for a model without instances)."""
        if kind is None:
            return self.instances
        return self.instances_by_kind.get(kind, self.instances)

    @property
    def test_metrics(self) -> dict:
        """The test scores the card records (empty when none)."""
        metrics = self.raw.get("test_metrics")
        return metrics if isinstance(metrics, dict) else {}

    def get(self, key: str, default: Any = None) -> Any:
        """A field of the card as written (for display), ``default`` when absent."""
        return self.raw.get(key, default)

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        """Read and check the card at ``path``; ModelError naming the file otherwise."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"{path}: model card not found (python -m export writes it)") from None
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: unreadable model card ({exc})") from exc
        return cls.from_json(data, source=str(path), default_name=path.stem)

    @classmethod
    def from_json(cls, data: object, source: str = "<card>", default_name: str = "") -> ModelCard:
        """Check a card's dict (see `read`); ``source`` names it in messages."""
        if not isinstance(data, dict):
            raise ModelError(f"{source}: model card is not a JSON object")
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise ModelError(f"{source}: model card lacks {', '.join(missing)}")
        return _Checker(data, source).card(default_name)


class _Checker:
    """Checks one card's fields in turn; every failure is a ModelError naming the card."""

    def __init__(self, data: dict, source: str) -> None:
        self.data, self.source = data, source

    def fail(self, message: str) -> ModelError:
        return ModelError(f"{self.source}: {message}")

    def card(self, default_name: str) -> ModelCard:
        d = self.data
        depth = self.depth()
        mode = d.get("mode", "resize")
        if mode not in MODES:
            raise self.fail(f"unknown mode {mode!r} (expected one of {', '.join(MODES)})")
        level = d.get("ort_optimization", "extended")
        if level not in ORT_LEVELS:
            raise self.fail(f"unknown ort_optimization {level!r}")
        normalization = d.get("normalization", NORMALIZATION)
        if normalization not in NORMALIZATIONS:
            raise self.fail(
                f"unsupported normalization {normalization!r} (expected one of "
                f"{', '.join(NORMALIZATIONS)})"
            )
        invert = d.get("invert_brightfield", False)
        if not isinstance(invert, bool):
            raise self.fail(f"invert_brightfield must be true or false, not {invert!r}")
        diameter = d.get("object_diameter_px", TYPICAL_DIAMETER_PX)
        if not (is_number(diameter) and diameter > 0):
            raise self.fail(f"object_diameter_px must be a number above 0, not {diameter!r}")
        return ModelCard(
            name=str(d.get("name") or default_name or "model"),
            input_size=self.input_size(2**depth),
            channels=self.channels(),
            dataset=str(d.get("dataset") or ""),
            arch=str(d.get("arch") or "?"),
            depth=depth,
            threshold=self.probability("threshold", DEFAULT_THRESHOLD),
            mode=mode,
            tile=self.tile(2**depth) if mode == "tiled" else None,
            instances=self.instances(),
            instances_by_kind=self.instances_by_kind(),
            postprocess=self.postprocess(),
            ort_optimization=level,
            normalization=normalization,
            percentiles=self.percentiles(),
            intensity=self.intensity(),
            invert_brightfield=invert,
            object_diameter_px=float(diameter),
            sources=self.sources(),
            raw=d,
        )

    def percentiles(self) -> tuple[float, float]:
        value = self.data.get("normalization_percentiles", PERCENTILES)
        if not (
            isinstance(value, list | tuple)
            and len(value) == 2
            and all(is_number(v) for v in value)
            and 0.0 <= value[0] < value[1] <= 100.0
        ):
            raise self.fail(
                f"normalization_percentiles must be [low, high] with 0 <= low < high <= 100, "
                f"not {value!r}"
            )
        return float(value[0]), float(value[1])

    def intensity(self) -> dict:
        obj = self.data.get("intensity") or {}
        if not isinstance(obj, dict):
            raise self.fail(f"intensity must be an object, not {obj!r}")
        rule = {**DEFAULT_RULE, **obj}
        if rule["rule"] not in RULES:
            raise self.fail(
                f"unknown intensity rule {rule['rule']!r} (expected one of {', '.join(RULES)})"
            )
        for key in ("low", "high"):
            if not (is_number(rule[key]) and 0.0 <= rule[key] <= 100.0):
                raise self.fail(f"intensity.{key} must be a percentile 0-100, not {rule[key]!r}")
        for key in ("target_low", "target_high"):
            if not is_number(rule[key]):
                raise self.fail(f"intensity.{key} must be a number, not {rule[key]!r}")
        if not rule["low"] < rule["high"] or not rule["target_low"] < rule["target_high"]:
            raise self.fail("intensity: low must be below high, target_low below target_high")
        return rule

    def sources(self) -> tuple[dict, ...]:
        value = self.data.get("sources") or []
        if not isinstance(value, list) or not all(
            isinstance(v, dict) and isinstance(v.get("name"), str) and v["name"] for v in value
        ):
            raise self.fail("sources must be a list of {name, licence, citation} objects")
        for source in value:
            for key in ("licence", "citation"):
                if not isinstance(source.get(key, ""), str):
                    raise self.fail(f"sources: {key} of {source['name']!r} must be text")
        return tuple(dict(v) for v in value)

    def depth(self) -> int:
        kwargs = self.data.get("arch_kwargs", {})
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise self.fail(f"arch_kwargs must be an object, not {kwargs!r}")
        depth = whole_number(kwargs.get("depth", DEFAULT_DEPTH))
        if depth is None or not 0 <= depth <= 8:
            raise self.fail(
                f"arch_kwargs.depth must be a whole number 0-8, not {kwargs['depth']!r}"
            )
        return depth

    def input_size(self, stride: int) -> int:
        size = whole_number(self.data["input_size"])
        if size is None or size <= 0 or size % stride or size > MAX_TILE:
            rule = f" divisible by {stride} (2**depth, the model's stride)" if stride > 1 else ""
            raise self.fail(
                f"input_size must be a positive whole number{rule}, not {self.data['input_size']!r}"
            )
        return size

    def channels(self) -> int:
        channels = whole_number(self.data["channels"])
        if channels not in (1, 3):
            raise self.fail(f"channels must be 1 or 3, not {self.data['channels']!r}")
        return channels

    def probability(self, key: str, default: float, obj: dict | None = None) -> float:
        obj = self.data if obj is None else obj
        value = obj.get(key, default)
        if not (is_number(value) and 0.0 <= value <= 1.0):
            raise self.fail(f"{key} must be a number from 0 to 1, not {value!r}")
        return float(value)

    def tile(self, stride: int) -> TileSpec:
        tile = self.data.get("tile")
        if not isinstance(tile, dict):
            raise self.fail("a tiled model card needs tile size and overlap")
        size = whole_number(tile.get("size"))
        if size is None or size < stride or size % stride or size > MAX_TILE:
            raise self.fail(
                f"tile size must be a multiple of {stride} up to {MAX_TILE}, not {tile.get('size')!r}"
            )
        overlap = tile.get("overlap")
        if not (is_number(overlap) and 0.0 <= overlap <= MAX_OVERLAP):
            raise self.fail(
                f"tile overlap must be a number from 0 to {MAX_OVERLAP}, not {overlap!r}"
            )
        return TileSpec(size, float(overlap))

    def instances(self) -> DecodeSettings | None:
        return self.decode_settings(self.data.get("instances"), "instances")

    def decode_settings(self, obj: object, where: str) -> DecodeSettings | None:
        """``obj`` checked as decoding settings (None stays None); ``where`` names it."""
        if obj is None:
            return None
        if not isinstance(obj, dict):
            raise self.fail(f"{where} must be an object, not {obj!r}")
        if obj.get("markers", "boundary") not in MARKERS:
            raise self.fail(f"{where}.markers must be one of {', '.join(MARKERS)}")
        for key in ("foreground", "boundary", "distance", "min_peak"):
            self.probability(key, 0.5, obj)
        for key in ("min_marker_px", "min_size_px"):
            value = whole_number(obj.get(key, 1))
            if value is None or value < 0:
                raise self.fail(f"{where}.{key} must be a whole number >= 0, not {obj[key]!r}")
        return DecodeSettings.from_json(obj)

    def instances_by_kind(self) -> dict[str, DecodeSettings]:
        """``instances_by_kind``: kind -> settings over ``instances`` (only known kinds)."""
        obj = self.data.get("instances_by_kind") or {}
        base = self.data.get("instances")
        if not isinstance(obj, dict) or (obj and not isinstance(base, dict)):
            raise self.fail("instances_by_kind must map image kinds to settings, with instances")
        common: dict = base if isinstance(base, dict) else {}
        by_kind: dict[str, DecodeSettings] = {}
        for kind, settings in obj.items():
            if kind not in KINDS:
                raise self.fail(f"instances_by_kind: unknown kind {kind!r} ({', '.join(KINDS)})")
            if not isinstance(settings, dict):
                raise self.fail(f"instances_by_kind.{kind} must be an object, not {settings!r}")
            decoded = self.decode_settings({**common, **settings}, f"instances_by_kind.{kind}")
            if decoded is not None:  # always, for an object
                by_kind[kind] = decoded
        return by_kind

    def postprocess(self) -> Postprocess:
        obj = self.data.get("postprocess")
        if not obj:
            return Postprocess.for_dataset(str(self.data.get("dataset") or ""))
        if not isinstance(obj, dict) or not all(isinstance(v, bool) for v in obj.values()):
            raise self.fail(f"postprocess must map step names to true/false, not {obj!r}")
        return Postprocess.from_json(obj)


def is_number(value: object) -> TypeGuard[int | float]:
    """True for a finite JSON number (int or float), false for bools, NaN, strings and the rest."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def whole_number(value: object) -> int | None:
    """A JSON number with no fraction as an int (256 or 256.0), else None."""
    if not is_number(value) or not float(value).is_integer():
        return None
    return int(value)
