"""The model card: the JSON written beside each exported ONNX model (``models/<name>.json``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from segcore.data.imagestats import run_image_stats
from segcore.run_config import RunConfig, read_decode
from segcore.scoring.scores import SCORE_NAMES

SOURCES = {
    "isic": {
        "source": "ISIC 2017 Challenge, Part 1 lesion segmentation (International Skin Imaging "
        "Collaboration), CC BY-NC 4.0",
        "source_url": "https://challenge.isic-archive.com/data/",
        "licence": "CC BY-NC 4.0",
        "citation": "Codella et al., ISBI 2018 (arXiv:1710.05006)",
    },
    "dsb": {
        "source": "2018 Data Science Bowl stage1_train nuclei (Broad Bioimage Benchmark "
        "Collection BBBC038, Caicedo et al. 2019), CC0",
        "source_url": "https://bbbc.broadinstitute.org/BBBC038",
        "licence": "CC0 1.0",
        "citation": "Caicedo et al., Nature Methods 16, 1247-1253 (2019), "
        "doi:10.1038/s41592-019-0612-7",
    },
    "monuseg2018": {
        "source": "MoNuSeg 2018 training set: 30 H&E tiles of TCGA slides at 40x, 7 organs "
        "(Kumar et al.), CC BY-NC-SA 4.0",
        "source_url": "https://monuseg.grand-challenge.org/",
        "licence": "CC BY-NC-SA 4.0",
        "citation": "Kumar et al., IEEE TMI 36(7), 1550-1560 (2017), "
        "doi:10.1109/TMI.2017.2677499; Kumar et al., IEEE TMI 39(5), 1380-1391 (2020), "
        "doi:10.1109/TMI.2019.2947628",
    },
}
#: The credit of data the project does not know.
USER_DATA = {
    "source": "user-provided images and masks",
    "source_url": "",
    "licence": "",
    "citation": "",
}

#: Run config keys copied into the card as they are.
CONFIG_KEYS = (
    "arch",
    "arch_kwargs",
    "dataset",
    "channels",
    "normalization",
    "threshold",
    "params",
    "loss",
    "batch_size",
    "lr",
    "split",
    "seed",
    "train_seconds",
    "best_epoch",
    "device",
    "backend",
    "library_versions",
)


def source_credit(dataset: str, counts: dict | None = None) -> dict:
    """Data credit and licence of a dataset name (user data is credited as such). A run on
    several sources (``dsb+monuseg2018``) is credited source by source: ``sources`` lists each
    one's name, licence, citation, address and images per split part (``counts``, from the run's
    config), and ``source``/``licence`` join them, so the card and every package made from it
    carry every training source's licence."""
    names = dataset.split("+")
    if len(names) == 1:
        return {k: v for k, v in SOURCES.get(dataset, USER_DATA).items() if k != "citation"}
    sources = [
        {"name": n, **SOURCES.get(n, USER_DATA), "images": (counts or {}).get(n, {})} for n in names
    ]
    return {
        "source": "; ".join(s["source"] for s in sources),
        "source_url": " ".join(s["source_url"] for s in sources if s["source_url"]),
        "licence": "; ".join(f"{s['name']}: {s['licence'] or 'unknown'}" for s in sources),
        "sources": sources,
    }


def keras_means(test_metrics: dict | None) -> dict | None:
    """test_metrics.json ({"dice": {"mean": ..}, ..}) reduced to {"n_images", "dice": mean, ..}."""
    if not test_metrics:
        return None
    out = {"n_images": test_metrics.get("n_images")}
    for k in SCORE_NAMES:
        value = test_metrics.get(k)
        out[k] = value.get("mean") if isinstance(value, dict) else value
    return out


def relative_run_dir(run_dir: Path, root: Path | None = None) -> str:
    """The run folder as the card records it: relative to ``root`` (default: the working
    directory, where ``runs/`` lives) when inside it, else its own name, never an absolute path
    of the training machine."""
    path = Path(run_dir).resolve()
    try:
        return path.relative_to((root or Path.cwd()).resolve()).as_posix()
    except ValueError:
        return path.name


def base_card(name: str, config: dict, run_dir: Path, postprocess: dict) -> dict:
    """The card fields known before the ONNX is checked: identity, input and training facts."""
    card = {"name": name, **{k: config.get(k) for k in CONFIG_KEYS}}
    stats = run_image_stats(run_dir)
    if config.get("invert_brightfield"):  # a pre-processing step the engine must repeat
        card["invert_brightfield"] = True
    if config.get("normalization") == "percentile":
        card["normalization_percentiles"] = config.get("normalization_percentiles", [1.0, 99.8])
    card.update(
        input_size=int(config["img_size"]),
        normalization=config.get("normalization", "divide_by_255"),
        threshold=float(config.get("threshold", 0.5)),
        epochs=config.get("epochs_completed", config.get("epochs")),
        epochs_planned=config.get("epochs"),
        postprocess=postprocess,
        run_dir=relative_run_dir(run_dir),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        image_stats=stats,
        kinds=list((stats or {}).get("kinds") or {}),  # what --model auto sends to the model
        **source_credit(config["dataset"], config.get("sources")),
    )
    order = ("name", "arch", "arch_kwargs", "dataset", "input_size", "channels")
    return {k: card[k] for k in order} | card


def instance_card(run_dir: Path, config: RunConfig) -> dict:
    """Card fields of an instance model: tiled mode, tile, target channels, decoding settings.

    Decoding settings and the tile are the ones tuned on the validation split
    (``RUN_DIR/decode.json``, written by ``python -m segcore.commands.instance_eval RUN_DIR --tune``);
    the defaults otherwise. Empty for semantic models.
    """
    if config.settings.target != "instance":
        return {}
    tuned = read_decode(run_dir)
    settings = config.card(tuned.get("instances")).instances
    if settings is None:
        raise ValueError(f"{run_dir}: an instance run's card without decoding settings")
    instances = settings.to_json()
    fields = {
        "target": "instance",
        "mode": "tiled",
        "tile": tuned.get("tile", config.raw["tile"]),
        "target_channels": config.raw["target_channels"],
        "instances": instances,
        "threshold": instances["foreground"],
    }
    if "val" in tuned:
        fields["instances_val_metrics"] = tuned["val"]
    return fields
