"""A training run's settings (`TrainConfig`, the flags) and its recorded config (`RunConfig`,
``config.json``): one dataclass each, one reader each. Light: no Keras import.

``config.json`` holds every `TrainConfig` field (with ``arch_kwargs`` the full keyword arguments the
model was built with) and what the run found and used: the detected layout, dataset name,
normalisation, threshold, parameter count, backend, device, library versions, and after training
its time and best epoch. Evaluation, decoding tuning, resume and export read it through
`RunConfig.read`, which names the file in a one-line `DataError` when it is not a run's config.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from segcore.card import ModelCard, TileSpec
from segcore.data.sources import (
    SourcesSplit,
    dataset_name,
    folder_name,
    sources_name,
    split_sources,
)
from segcore.data.split import parse_fractions
from segcore.errors import DataError
from segcore.inference.preprocess import (
    DEFAULT_THRESHOLD,
    NORMALIZATION,
    NORMALIZATIONS,
    PERCENTILES,
)
from segcore.paths import samples_dir

SAMPLES_DIR = samples_dir() / "isic"
SCHEDULES = ("plateau", "cosine")
TARGETS = ("mask", "instance")  # semantic mask, or nuclei as objects (segcore.inference.instances)
TILE_OVERLAP = 0.25  # tiled (native-scale) prediction of instance models: overlap between tiles
CONFIG_FILE = "config.json"
#: The decoding settings tuned on the validation split (`segcore.training.tuning`), beside it.
DECODE_FILE = "decode.json"
DEMO_SIZING: dict[str, Any] = {
    "base_filters": 8,
    "depth": 3,
    "img_size": 96,
    "epochs": 40,
    "batch_size": 8,
    "lr": 3e-3,
    "schedule": "cosine",
}
#: The losses `segcore.training.losses` implements, by name (``--loss``).
LOSSES = ("bce", "dice", "bce_dice", "focal", "tversky")
RESUMABLE = ("epochs", "time_limit", "patience", "workers", "distribute")  # may change on resume
#: A global batch larger than this is refused: a typo (16000) would exhaust memory at the first step.
MAX_BATCH_SIZE = 4096
#: Largest training image side (the shipped models use 96 to 512; above this a model no
#: longer fits a GPU, and a resumed config.json asking for more is refused, not allocated).
MAX_IMG_SIZE = 4096
#: Largest filter count of the first level (the reports' U-Net starts at 64).
MAX_BASE_FILTERS = 512
#: Deepest U-Net (levels of pooling).
MAX_DEPTH = 8
#: Most epochs a run may have (a resumed state.json claiming more is not a state this wrote).
MAX_EPOCHS = 1_000_000
#: Build keyword arguments that come from their own flags, not from ``arch_kwargs``.
FLAG_KWARGS = ("channels", "depth", "base_filters", "out_channels")


@dataclass
class TrainConfig:
    """Every setting of a run; written to config.json and read back by --resume."""

    data: str | list[str] = str(SAMPLES_DIR)  # one folder, or several (``--data A --data B``)
    format: str = "auto"
    arch: str = "unet_bn"
    base_filters: int | None = None
    depth: int = 4
    img_size: int = 128
    channels: int = 3
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    loss: str = "bce_dice"
    schedule: str = "plateau"
    patience: int = 15
    split: str = "0.8,0.1,0.1"
    seed: int = 42
    init_seed: int | None = None  # weights and augmentation (default: seed, which makes the split)
    out: str = ""
    mixed_precision: bool = False
    tensorboard: bool = False
    distribute: str = "none"
    augment: bool = True
    skip_unmatched: bool = False
    workers: int = 0
    time_limit: float = 0.0
    target: str = "mask"
    markers: str = "boundary"
    init_from: str = ""
    stain_jitter: float = 0.0  # HED jitter of colour-stained images (segcore.data.stain)
    invert_brightfield: bool = False  # bright-field images inverted before the model (the card)
    normalization: str = NORMALIZATION  # model input: pixel / 255, or per-image percentiles
    blur_noise: float = 0.0  # probability of a Gaussian blur, and of Gaussian noise, per crop
    source_weights: str = ""  # "W1,W2,...": sampling weight of each --data folder (default 1 each)
    arch_kwargs: dict = field(default_factory=dict)

    @property
    def member_seed(self) -> int:
        """The seed of the weights and augmentation: --init-seed, else --seed."""
        return self.seed if self.init_seed is None else self.init_seed

    @property
    def is_demo(self) -> bool:
        """True for the no-argument demo on the bundled samples."""
        return self.data == str(SAMPLES_DIR)

    @property
    def data_dirs(self) -> list[str]:
        """The dataset folders of the run (one or several sources)."""
        return [self.data] if isinstance(self.data, str) else list(self.data)

    def find_data(self) -> SourcesSplit:
        """The samples of every ``--data`` folder and their seeded split (`split_sources`; a
        folder holding no data set raises DataError). Light: ``segcore.train`` calls it before
        Keras loads, so a wrong folder is named at once, not after seconds of start-up."""
        fractions = parse_fractions(self.split)
        return split_sources(
            self.data_dirs, self.format, bool(self.skip_unmatched), fractions, self.seed
        )

    @property
    def weights(self) -> list[float]:
        """The sampling weight of each source (`data_dirs`), 1.0 each by default."""
        if not self.source_weights:
            return [1.0] * len(self.data_dirs)
        return [float(w) for w in self.source_weights.split(",")]

    def build_kwargs(self) -> dict:
        """Keyword arguments for `segcore.models.build` (recorded in config.json and the card)."""
        from segcore.inference.instances import target_channels

        kwargs = dict(self.arch_kwargs, channels=self.channels, depth=self.depth)
        if self.target == "instance":
            kwargs["out_channels"] = len(target_channels(self.markers))
        if self.base_filters:
            kwargs["base_filters"] = self.base_filters
        return kwargs


def flag(key: str) -> str:
    """The command-line flag of a TrainConfig field (``img_size`` -> ``--img-size``)."""
    return "--" + key.replace("_", "-")


def check_config(cfg: TrainConfig) -> None:
    """Raise DataError (one line naming the flag) for a setting training cannot use."""
    at_least = {"epochs": 1, "batch_size": 1, "depth": 1, "patience": 1, "workers": 0}
    for key, low in at_least.items():
        if getattr(cfg, key) < low:
            raise DataError(f"{flag(key)} {getattr(cfg, key)}: must be at least {low}")
    at_most = {
        "batch_size": MAX_BATCH_SIZE,
        "img_size": MAX_IMG_SIZE,
        "depth": MAX_DEPTH,
        "epochs": MAX_EPOCHS,
    }
    for key, high in at_most.items():
        if getattr(cfg, key) > high:
            raise DataError(f"{flag(key)} {getattr(cfg, key)}: must be at most {high}")
    if cfg.base_filters is not None and not 1 <= cfg.base_filters <= MAX_BASE_FILTERS:
        raise DataError(f"--base-filters {cfg.base_filters}: must be 1 to {MAX_BASE_FILTERS}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise DataError(f"--lr {cfg.lr}: must be a positive number")
    if not 0 <= cfg.stain_jitter < 1:
        raise DataError(f"--stain-jitter {cfg.stain_jitter}: must be in [0, 1)")
    if not 0 <= cfg.blur_noise <= 1:
        raise DataError(f"--blur-noise {cfg.blur_noise}: must be a probability in [0, 1]")
    _check_sources(cfg)
    if not (math.isfinite(cfg.time_limit) and cfg.time_limit >= 0):
        raise DataError(f"--time-limit {cfg.time_limit}: must be 0 (none) or positive")
    _check_choices(cfg)
    step = 2**cfg.depth
    if cfg.img_size < step or cfg.img_size % step:
        raise DataError(
            f"--img-size {cfg.img_size}: must be a multiple of {step} (2**depth, --depth "
            f"{cfg.depth}), e.g. {max(step, round(cfg.img_size / step) * step)}"
        )
    fractions = parse_fractions(cfg.split)
    if fractions[1] <= 0 or fractions[2] <= 0:
        raise DataError(
            f"--split {cfg.split}: validation and test fractions must be above 0 "
            "(the best epoch is chosen on validation and scored on test)"
        )


def _check_sources(cfg: TrainConfig) -> None:
    """The --data folders (at least one, no repeats) and their --source-weights."""
    dirs = cfg.data_dirs
    if not dirs:
        raise DataError("--data: give at least one dataset folder")
    if len({str(Path(d).resolve()) for d in dirs}) < len(dirs):
        raise DataError(f"--data {' '.join(dirs)}: a folder is given twice")
    if not cfg.source_weights:
        return
    try:
        weights = [float(w) for w in cfg.source_weights.split(",")]
    except ValueError:
        raise DataError(
            f"--source-weights {cfg.source_weights}: expected numbers like 1,3"
        ) from None
    if len(weights) != len(dirs):
        raise DataError(
            f"--source-weights {cfg.source_weights}: {len(weights)} weight(s) for "
            f"{len(dirs)} --data folder(s)"
        )
    if not all(math.isfinite(w) and 0 < w <= 100 for w in weights):
        raise DataError(f"--source-weights {cfg.source_weights}: each must be in (0, 100]")


def _check_choices(cfg: TrainConfig) -> None:
    """The named settings (a resumed config.json may hold anything) against their choices."""
    from segcore.data.layouts import FORMATS
    from segcore.inference.instances import MARKERS
    from segcore.models import ARCHITECTURES
    from segcore.training.distribute import STRATEGIES

    choices = {
        "format": FORMATS,
        "arch": tuple(ARCHITECTURES),
        "loss": LOSSES,
        "schedule": SCHEDULES,
        "distribute": STRATEGIES,
        "target": TARGETS,
        "markers": MARKERS,
        "channels": (1, 3),
        "normalization": NORMALIZATIONS,
    }
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise DataError(
                f"{flag(key)} {getattr(cfg, key)!r}: choose one of "
                f"{', '.join(str(a) for a in allowed)}"
            )


def recorded_format(cfg: TrainConfig, found: str) -> str:
    """The layout config.json records (and a resume reads back): the one ``found`` for one
    folder; for several, the flag as given, since each folder is detected on its own (recording
    the first folder's layout would name every source after it on resume)."""
    return found if len(cfg.data_dirs) == 1 else cfg.format


def source_names(cfg: TrainConfig) -> list[str]:
    """The dataset name of each ``--data`` folder of a run (`segcore.data.sources.folder_name`)."""
    return [folder_name(d, cfg.format) for d in cfg.data_dirs]


def run_dataset(cfg: TrainConfig, fmt: str) -> str:
    """The dataset name of a run: its folder's (``fmt`` is its layout), or its sources' joined."""
    if len(cfg.data_dirs) == 1:
        return dataset_name(fmt, cfg.data_dirs[0])
    return sources_name(source_names(cfg))


def read_decode(run_dir: str | Path) -> dict:
    """The run's decode.json ({"instances": ..., "tile": ..., "val": ...}), or {} before tuning;
    DataError naming the file when it is not one."""
    path = Path(run_dir) / DECODE_FILE
    if not path.is_file():
        return {}
    try:
        decoded = json.loads(path.read_text())
        if not isinstance(decoded, dict) or not isinstance(decoded.get("instances", {}), dict):
            raise ValueError("not an object with 'instances'")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable decoding settings ({exc})") from None
    return decoded


def init_path(source: str) -> Path:
    """The model file --init-from names (a .keras file, or a run folder's best.keras)."""
    path = Path(source)
    if path.is_dir():
        path = path / "best.keras"
    if not path.is_file():
        raise DataError(f"--init-from {source}: no such model (a .keras file or a run folder)")
    return path


@dataclass(frozen=True)
class RunConfig:
    """A run folder's config.json: the settings it trained with and what it recorded."""

    settings: TrainConfig
    dataset: str
    arch_kwargs: dict
    threshold: float = DEFAULT_THRESHOLD
    tile: TileSpec | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def depth(self) -> int:
        """Down-sampling steps of the model (its stride is 2**depth)."""
        return int(self.arch_kwargs.get("depth", self.settings.depth))

    @classmethod
    def read(cls, run_dir: str | Path) -> RunConfig:
        """Read ``run_dir/config.json``; DataError naming the file when it is not a run's config."""
        path = Path(run_dir) / CONFIG_FILE
        if not path.is_file():
            raise DataError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                f"{path}: not a usable run config ({type(exc).__name__}: {exc})"
            ) from None

    @classmethod
    def from_json(cls, saved: dict) -> RunConfig:
        """A RunConfig from config.json's dict (ValueError/KeyError/TypeError when malformed)."""
        known = {k: saved[k] for k in TrainConfig.__dataclass_fields__ if k in saved}
        built = dict(saved.get("arch_kwargs") or {})
        known["arch_kwargs"] = {k: v for k, v in built.items() if k not in FLAG_KWARGS}
        settings = TrainConfig(**known)
        check_config(settings)
        tile = saved.get("tile")
        threshold = float(saved.get("threshold", DEFAULT_THRESHOLD))
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold {threshold} is not in [0, 1]")
        return cls(
            settings=settings,
            dataset=str(saved["dataset"]),
            arch_kwargs=built or settings.build_kwargs(),
            threshold=threshold,
            tile=TileSpec(int(tile["size"]), float(tile["overlap"])) if tile else None,
            raw=saved,
        )

    def card(self, instances: dict | None = None, tile: TileSpec | None = None) -> ModelCard:
        """The model card this run's Keras model is evaluated under (no post-processing: the
        Keras scores are the raw model's; export adds the card's clean-up)."""
        s = self.settings
        data = {
            "name": Path(s.out).name or s.arch,
            "arch": s.arch,
            "arch_kwargs": self.arch_kwargs,
            "dataset": self.dataset,
            "input_size": s.img_size,
            "channels": s.channels,
            "normalization": self.raw.get("normalization", NORMALIZATION),
            "normalization_percentiles": self.raw.get(
                "normalization_percentiles", list(PERCENTILES)
            ),
            "threshold": self.threshold,
            "postprocess": {"keep_largest": False, "fill_holes": False},
        }
        if s.invert_brightfield:
            data["invert_brightfield"] = True
        tile = tile or self.tile
        if s.target == "instance" and tile is not None:
            data |= {"mode": "tiled", "tile": tile.to_json()}
        if s.target == "instance":
            data["instances"] = {**(instances or {}), "markers": s.markers}
        return ModelCard.from_json(data, source=f"{s.out or 'run'}/{CONFIG_FILE}")

    def resumed(self, given: dict) -> TrainConfig:
        """The settings with the RESUMABLE flags the user gave; DataError for any other change."""
        changed = [
            k for k, v in given.items() if k not in RESUMABLE and v != getattr(self.settings, k)
        ]
        if changed:
            k = changed[0]
            raise DataError(
                f"{flag(k)} cannot change on resume (the run has {getattr(self.settings, k)!r}); "
                f"only {', '.join(flag(r) for r in RESUMABLE)} can; start a new run with --out"
            )
        cfg = TrainConfig(
            **(asdict(self.settings) | {k: given[k] for k in RESUMABLE if k in given})
        )
        check_config(cfg)
        return cfg
