"""What a training target changes in a run, in one place: semantic masks vs nuclei as objects.

A `TargetSpec` says how the data are cached, which Keras feeders draw batches from the cache,
which loss is minimised, which metric picks the best epoch, and what the run's config.json
records for inference (tiles, channels). `spec_for` returns the spec of ``--target``.

- ``mask``: images and masks resized to ``--img-size``; the best epoch has the highest val Dice.
- ``instance``: full-size images with per-nucleus targets (marker channel + foreground), random
  native-scale crops of ``--img-size``; the best epoch has the lowest validation loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segcore.data.augment import AugmentConfig
from segcore.data.layouts import Sample
from segcore.kinds import invert_brightfield_all
from segcore.run_config import TILE_OVERLAP, TrainConfig
from segcore.training.callbacks import monitor_for
from segcore.training.distribute import Topology, global_batch_size


@dataclass(frozen=True)
class Feeders:
    """The training and validation batch feeders of a run and their cache sizes."""

    train: Any
    val: Any
    n_train: int
    n_val: int


@dataclass(frozen=True)
class TargetSpec:
    """The parts of a run that depend on its target (see the module docstring)."""

    name: str
    feeders: Callable[[TrainConfig, dict[str, list[Sample]], int, int, Topology], Feeders]

    @property
    def monitor(self) -> tuple[str, str]:
        """(metric, "max"/"min") that picks the best epoch."""
        return monitor_for(self.name)

    def loss(self, cfg: TrainConfig) -> Callable:
        """The Keras loss of this target."""
        from segcore.inference.instances import target_channels
        from segcore.training.losses import get_instance_loss, get_loss

        if self.name == "instance":
            return get_instance_loss(cfg.loss, len(target_channels(cfg.markers)))
        return get_loss(cfg.loss)

    def recorded(self, cfg: TrainConfig) -> dict:
        """What config.json records for inference beyond the settings."""
        if self.name != "instance":
            return {}
        from segcore.inference.instances import target_channels

        return {
            "mode": "tiled",
            "tile": {"size": cfg.img_size, "overlap": TILE_OVERLAP},
            "target_channels": list(target_channels(cfg.markers)),
        }


def _augment(cfg: TrainConfig) -> AugmentConfig | None:
    if not cfg.augment:
        return None
    return AugmentConfig(
        stain_jitter=cfg.stain_jitter, blur_prob=cfg.blur_noise, noise_prob=cfg.blur_noise
    )


def _weights(cfg: TrainConfig) -> dict[str, float]:
    """The sampling weight of each source by its name (as `Sample.source` holds it)."""
    from segcore.run_config import source_names

    if len(cfg.data_dirs) == 1:
        return {}
    return dict(zip(source_names(cfg), cfg.weights, strict=True))


def _mask_feeders(
    cfg: TrainConfig, split: dict[str, list[Sample]], epoch: int, workers: int, topology: Topology
) -> Feeders:
    """Resized image/mask caches and their shuffled, augmented batches."""
    from segcore.data.cache import build_cache
    from segcore.training.feeders import CachedBatches

    train = _nonempty(build_cache(split["train"], cfg.img_size, workers))
    val = build_cache(split["val"], cfg.img_size, workers)
    if cfg.invert_brightfield:
        invert_brightfield_all(train.images)
        invert_brightfield_all(val.images)
    n_val = usable_validation(len(val), topology)
    shard = (topology.process_id, topology.processes)
    train_feed = CachedBatches(
        train.images,
        train.masks,
        global_batch_size(cfg.batch_size, len(train), topology),
        cfg.channels,
        augment=_augment(cfg),
        normalization=cfg.normalization,
        shuffle=True,
        seed=cfg.member_seed,
        epoch=epoch,
        drop_remainder=True,
        shard=shard,
        workers=workers,
        max_queue_size=16,
    )
    val_feed = CachedBatches(
        val.images[:n_val],
        val.masks[:n_val],
        global_batch_size(cfg.batch_size, n_val, topology),
        cfg.channels,
        shard=shard,
        normalization=cfg.normalization,
    )
    return Feeders(train_feed, val_feed, len(train), len(val))


def _instance_feeders(
    cfg: TrainConfig, split: dict[str, list[Sample]], epoch: int, workers: int, topology: Topology
) -> Feeders:
    """Full-size instance caches and their native-scale crops."""
    from segcore.data.crops import build_instance_cache
    from segcore.training.feeders import NativeCrops

    train = _nonempty(build_instance_cache(split["train"], workers, cfg.markers))
    val = build_instance_cache(split["val"], workers, cfg.markers)
    if cfg.invert_brightfield:
        invert_brightfield_all(train.images)
        invert_brightfield_all(val.images)
    batch = global_batch_size(cfg.batch_size, len(train), topology)
    train_feed = NativeCrops(
        train,
        cfg.img_size,
        batch,
        cfg.channels,
        augment=_augment(cfg),
        seed=cfg.member_seed,
        epoch=epoch,
        workers=workers,
        max_queue_size=16,
        normalization=cfg.normalization,
        weights=_weights(cfg),
    )
    val_feed = NativeCrops(
        val, cfg.img_size, batch, cfg.channels, train=False, normalization=cfg.normalization
    )
    return Feeders(train_feed, val_feed, len(train), len(val))


def _nonempty(cache: Any) -> Any:
    """The training cache, or DataError when none of its images could be read."""
    from segcore.errors import DataError

    if len(cache) == 0:
        raise DataError("no readable training images")
    return cache


def usable_validation(n_val: int, topology: Topology) -> int:
    """How many validation images a run uses: a multiple of the devices (every batch splits
    over them); DataError when there are fewer images than devices."""
    import logging

    from segcore.errors import DataError

    if topology.strategy is not None or topology.devices <= 1:
        return n_val
    usable = n_val // topology.devices * topology.devices
    if usable == 0:
        raise DataError(f"{n_val} validation images: fewer than the {topology.devices} devices")
    if usable < n_val:
        logging.getLogger(__name__).warning(
            "validating on %d of %d images (a multiple of %d devices)",
            usable,
            n_val,
            topology.devices,
        )
    return usable


SPECS = {
    "mask": TargetSpec("mask", _mask_feeders),
    "instance": TargetSpec("instance", _instance_feeders),
}


def spec_for(target: str) -> TargetSpec:
    """The spec of a ``--target`` name."""
    return SPECS[target]
