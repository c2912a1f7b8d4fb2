"""The words of a BioImage Model Zoo package: README, citations, tags and training-data facts.

Everything here is read from the model card (what the model was trained on, how it was scored,
its test metrics, its decoding settings), so a package says what segcore knows of the model and
nothing more. Pure text: no bioimageio import.
"""

from __future__ import annotations

from dataclasses import dataclass

import segcore
from segcore.card import ModelCard


@dataclass(frozen=True)
class Citation:
    """A reference: its text and a DOI (or, when it has none, a URL)."""

    text: str
    doi: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class DatasetFacts:
    """What a package says about a training set: words, citation, licence, tags, modality."""

    name: str
    description: str
    citation: Citation | None  # None: a user's data set without a reference
    url: str
    data_license: str
    data_license_id: str | None  # SPDX id of the data set's licence
    creators: str
    weights_license: str  # SPDX id of the package (the weights inherit a non-commercial data set)
    tags: tuple[str, ...]
    modality: str
    target: str


UNET = Citation(
    "Ronneberger O., Fischer P., Brox T. (2015). U-Net: Convolutional Networks for Biomedical "
    "Image Segmentation. MICCAI 2015, LNCS 9351, 234-241.",
    doi="10.1007/978-3-319-24574-4_28",
)
IMPROVED_UNET = Citation(
    "Isensee F., Kickingereder P., Wick W., Bendszus M., Maier-Hein K. H. (2018). Brain Tumor "
    "Segmentation and Radiomics Survival Prediction: Contribution to the BRATS 2017 Challenge. "
    "BrainLes 2017, LNCS 10670, 287-297.",
    doi="10.1007/978-3-319-75238-9_25",
)
BATCH_NORM = Citation(
    "Ioffe S., Szegedy C. (2015). Batch Normalization: Accelerating Deep Network Training by "
    "Reducing Internal Covariate Shift. ICML 2015.",
    url="https://arxiv.org/abs/1502.03167",
)
#: Extra references per architecture (the U-Net paper is always cited).
ARCH_CITATIONS = {"improved_unet": (IMPROVED_UNET,), "unet_bn": (BATCH_NORM,)}

DSB = DatasetFacts(
    name="2018 Data Science Bowl stage 1 nuclei (BBBC038)",
    description="Light-microscopy images of nuclei (fluorescence, brightfield and histology "
    "stains, many cell types and magnifications) with one mask per nucleus, from the 2018 Data "
    "Science Bowl stage 1 training set (community-corrected release), split 80/10/10 for "
    "training, validation and test.",
    citation=Citation(
        "Caicedo J. C., Goodman A., Karhohs K. W., et al. (2019). Nucleus segmentation across "
        "imaging experiments: the 2018 Data Science Bowl. Nature Methods 16, 1247-1253.",
        doi="10.1038/s41592-019-0612-7",
    ),
    url="https://bbbc.broadinstitute.org/BBBC038",
    data_license="CC0 1.0",
    data_license_id="CC0-1.0",
    creators="Broad Bioimage Benchmark Collection (Caicedo et al.)",
    weights_license="MIT",
    tags=("nuclei", "fluorescence-light-microscopy", "brightfield", "2d", "instance-segmentation"),
    modality="fluorescence and brightfield light microscopy, stained histology",
    target="nuclei",
)
ISIC = DatasetFacts(
    name="ISIC 2017 Challenge, Part 1: lesion segmentation",
    description="2,000 dermoscopy photographs of skin lesions with a lesion mask each (ISIC 2017 "
    "Challenge training set, resized to 256x256), split 80/10/10 for training, validation and "
    "test.",
    citation=Citation(
        "Codella N. C. F., Gutman D., Celebi M. E., et al. (2018). Skin lesion analysis toward "
        "melanoma detection: A challenge at the 2017 International Symposium on Biomedical "
        "Imaging (ISBI), hosted by the International Skin Imaging Collaboration (ISIC). "
        "ISBI 2018, 168-172.",
        doi="10.1109/ISBI.2018.8363547",
    ),
    url="https://challenge.isic-archive.com/data/",
    data_license="CC BY-NC 4.0",
    data_license_id="CC-BY-NC-4.0",
    creators="International Skin Imaging Collaboration (Codella et al.)",
    weights_license="CC-BY-NC-4.0",
    tags=("skin-lesion", "dermoscopy", "photography", "2d", "semantic-segmentation"),
    modality="dermoscopy (RGB photographs of skin)",
    target="skin lesion",
)
DATASETS = {"dsb": DSB, "isic": ISIC}


def dataset_facts(card: ModelCard) -> DatasetFacts:
    """The known facts of the card's dataset family, or facts built from its ``source`` fields."""
    known = DATASETS.get(card.family)
    if known is not None:
        return known
    source = str(card.get("source") or f"the {card.dataset or 'user'} data set")
    url = str(card.get("source_url") or "")
    return DatasetFacts(
        name=source[:120],
        description=f"Images and masks of {source}.",
        citation=Citation(source, url=url) if url else None,
        url=url,
        data_license="see the data set",
        data_license_id=None,
        creators="the data set's authors",
        weights_license="MIT",
        tags=("2d", "semantic-segmentation"),
        modality="images",
        target="objects",
    )


def citations(card: ModelCard) -> list[Citation]:
    """The U-Net, the architecture's own papers and the training set."""
    arch = ARCH_CITATIONS.get(card.arch, ())
    data = dataset_facts(card).citation
    return [UNET, *arch, *([data] if data else [])]


def _metrics_table(metrics: dict) -> str:
    """A Markdown table of the card's test metrics (numbers only)."""
    rows = [
        f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |"
        for key, value in metrics.items()
        if isinstance(value, (int, float))
    ]
    return "\n".join(["| metric | value |", "| --- | --- |", *rows])


def _labels_section(card: ModelCard) -> str:
    """How to turn an instance model's two output channels into one id per nucleus."""
    s = card.instances
    channels = card.get("target_channels", [s.markers, "foreground"])
    markers, relief = (
        (f"whose distance value is above {s.distance}", "the inverted distance map")
        if s.markers == "distance"
        else (f"whose boundary probability is below {s.boundary}", "the inverted foreground")
    )
    return f"""## From the two channels to one label per nucleus

The output has two channels: `{channels[0]}` (channel 0) and `{channels[1]}` (channel 1, the
nuclei mask). The package gives probabilities; labels need one more step:

- with segcore: `python -m segcore.predict --model {card.name}.onnx IMAGE --out DIR` writes
  `*_labels.png` (one id per nucleus), `*_objects.csv` and a QuPath-ready GeoJSON; the napari
  plugin shows them as a Labels layer;
- anywhere else (Fiji, ilastik, Python), the watershed recipe with the settings in this package's
  `config.segcore.instances`: (1) the nuclei are the pixels whose foreground probability is above
  {s.foreground}; (2) the markers are the connected pieces of the nuclei {markers}, dropping
  pieces under {s.min_marker_px} pixels; (3) flood the markers over {relief} within the
  nuclei (a marker-controlled watershed, e.g. MorphoLibJ's "Marker-controlled Watershed" in
  Fiji, or scikit-image's `watershed`); (4) pieces of the nuclei that hold no marker keep one
  label each; (5) drop objects under {s.min_size_px} pixels and those whose highest foreground
  probability is under {s.min_peak}.
"""


def _clean_up(card: ModelCard) -> str:
    """The card's mask clean-up in words (``fill holes, keep the largest object``, or none)."""
    steps = {"fill_holes": "fill holes", "keep_largest": "keep the largest object"}
    chosen = [words for key, words in steps.items() if (card.get("postprocess") or {}).get(key)]
    return ", ".join(chosen) or "none"


def readme(card: ModelCard) -> str:
    """The package's README (Markdown): training data, scoring, metrics, use, limits, labels."""
    facts = dataset_facts(card)
    metrics = card.test_metrics
    size = card.input_size
    size_rule = (
        f"any height and width that are multiples of {card.stride} (the model's stride); it was "
        f"trained on {size}-pixel crops at the images' own scale, so run it at native "
        "resolution, tiling large images"
        if card.mode == "tiled"
        else f"multiples of {card.stride}; it was trained on whole images resized to "
        f"{size}x{size}, so resize an image to that size first (the test tensors are) and scale "
        "the result back"
    )
    text = f"""# {card.name}

A {card.arch} (U-Net family) for {facts.target} segmentation, trained and exported
by segcore {segcore.__version__} (ONNX weights, opset {card.get("opset", "?")}, precision
{card.get("precision", "fp32")}).

## Training data
{facts.description} Source: {facts.url or "not recorded"} (licence: {facts.data_license}).

## Training
Loss {card.get("loss", "?")}, batch size {card.get("batch_size", "?")}, learning rate
{card.get("lr", "?")}, {card.get("epochs", "?")} epochs (best epoch {card.get("best_epoch", "?")}
kept), split {card.get("split", "?")} (train, validation, test) with seed {card.get("seed", "?")}.

## Validation
How it was scored: see below; the numbers are segcore's own evaluation, written into the model
card at export, not a re-run by this package.

### How it was scored
On the held-out {card.get("test_split", "test")} split ({metrics.get("n_images", "?")} images):
Dice, IoU, precision, recall and accuracy of the mask at threshold
{card.threshold} after segcore's clean-up ({_clean_up(card)}); for nuclei
models also the DSB 2018 score (mean average precision over IoU 0.5-0.95), F1 at IoU 0.5 and the
relative count error.

{_metrics_table(metrics)}

## Input and output
Input: one image, axes batch, y, x, channel ({card.channels} channel(s), 8-bit), divided by 255
(`scale_linear`); {size_rule}. Output: sigmoid probabilities in [0, 1], same height and width;
the mask is the last channel above {card.threshold}.

## Intended use and limits
Intended use: {facts.target} segmentation in images like the training set ({facts.modality}).
Limits: images unlike the training set (other modalities, stains, magnifications, 16-bit data
with a different intensity range) may fail silently; check results against a few hand-made
annotations before trusting counts or areas. Not a diagnostic device.
"""
    return text + ("\n" + _labels_section(card) if card.instances is not None else "")
