"""The words of a BioImage Model Zoo package: README, citations, tags and training-data facts.

Everything here is read from the model card (what the model was trained on, how it was scored,
its test metrics, its decoding settings), so a package says what segcore knows of the model and
nothing more. Pure text: no bioimageio import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import segcore
from segcore.card import ModelCard
from segcore.inference.preprocess import PERCENTILE_CLIP


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
    citations: tuple[Citation, ...]  # empty: a user's data set without a reference
    url: str
    data_license: str
    data_license_id: str | None  # SPDX id of the data set's licence (the strictest of several)
    creators: str
    weights_license: str  # SPDX id of the package (the weights inherit a non-commercial data set)
    tags: tuple[str, ...]
    modality: str
    target: str
    #: Every training source as the card lists it (name, source, source_url, licence, citation,
    #: images); empty for a card with one data set and no ``sources``.
    sources: tuple[dict, ...] = ()


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
    citations=(
        Citation(
            "Caicedo J. C., Goodman A., Karhohs K. W., et al. (2019). Nucleus segmentation across "
            "imaging experiments: the 2018 Data Science Bowl. Nature Methods 16, 1247-1253.",
            doi="10.1038/s41592-019-0612-7",
        ),
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
    citations=(
        Citation(
            "Codella N. C. F., Gutman D., Celebi M. E., et al. (2018). Skin lesion analysis toward "
            "melanoma detection: A challenge at the 2017 International Symposium on Biomedical "
            "Imaging (ISBI), hosted by the International Skin Imaging Collaboration (ISIC). "
            "ISBI 2018, 168-172.",
            doi="10.1109/ISBI.2018.8363547",
        ),
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


#: A Creative Commons licence as cards write it (``CC BY-NC-SA 4.0``, ``CC0 1.0``).
CC_LICENCE = re.compile(r"CC(?:0|[ -]BY(?P<terms>(?:-(?:NC|SA|ND))*))[ -](?P<version>\d\.\d)", re.I)
#: The package licence when every training source is public domain (CC0) or none is known.
DEFAULT_WEIGHTS_LICENSE = "MIT"


def licence_id(licence: str) -> str | None:
    """The SPDX id of a Creative Commons licence written as cards write it, else None."""
    match = CC_LICENCE.search(licence or "")
    if match is None:
        return None
    terms, version = (match["terms"] or "").upper(), match["version"]
    return f"CC0-{version}" if match[0].upper().startswith("CC0") else f"CC-BY{terms}-{version}"


def weights_licence(licences: list[str]) -> str:
    """The package's licence (SPDX) from its training sources' licences: the weights keep every
    source's terms (BY, NC, SA, ND); all public domain or unknown: `DEFAULT_WEIGHTS_LICENSE`."""
    ids = [i for i in map(licence_id, licences) if i and not i.startswith("CC0")]
    if not ids:
        return DEFAULT_WEIGHTS_LICENSE
    terms = "".join(t for t in ("-NC", "-ND", "-SA") if any(t in i for i in ids))
    if "-ND" in terms and "-SA" in terms:  # ND sources cannot be re-shared: ND wins
        terms = terms.replace("-SA", "")
    return f"CC-BY{terms}-4.0"


def strictest_id(licences: list[str]) -> str | None:
    """The most restrictive SPDX id among ``licences`` (most terms), None when none is known."""
    ids = [i for i in map(licence_id, licences) if i]
    return max(ids, key=lambda i: (not i.startswith("CC0"), i.count("-")), default=None)


def source_citation(source: dict) -> Citation | None:
    """A source's reference: the known data set's, else its card text with the first DOI in it
    (or its address); None when it has neither."""
    known = DATASETS.get(str(source.get("name", "")).lower())
    if known is not None and known.citations:
        return known.citations[0]
    text = str(source.get("citation") or "").strip()
    doi = re.search(r"doi:\s*(10\.\S+?)[;,)]?(?:\s|$)", text)
    url = str(source.get("source_url") or "").split(" ")[0] or None
    if not text or (doi is None and url is None):
        return None
    return Citation(text, doi=doi[1] if doi else None, url=None if doi else url)


def _several_sources(card: ModelCard) -> DatasetFacts:
    """Facts of a card trained on several sources (its ``sources``): each named, credited and
    cited; the package takes the terms of all their licences."""
    sources = card.sources
    known = [DATASETS[k] for s in sources if (k := str(s["name"]).lower()) in DATASETS]
    licences = [str(s.get("licence") or "") for s in sources]
    lines = [
        f"{s['name']}: {s.get('source') or 'user-provided images'} "
        f"(licence: {s.get('licence') or 'unknown'})"
        for s in sources
    ]
    return DatasetFacts(
        name=" + ".join(str(s["name"]) for s in sources),
        description=f"{len(sources)} training sources, split one by one: " + "; ".join(lines) + ".",
        citations=tuple(c for s in sources if (c := source_citation(s)) is not None),
        url=" ".join(str(s.get("source_url") or "") for s in sources).strip(),
        data_license="; ".join(f"{s['name']}: {s.get('licence') or 'unknown'}" for s in sources),
        data_license_id=strictest_id(licences),
        creators="; ".join(f.creators for f in known) or "the data sets' authors",
        weights_license=weights_licence(licences),
        tags=tuple(dict.fromkeys(t for f in known for t in f.tags)) or ("2d",),
        modality="; ".join(dict.fromkeys(f.modality for f in known)) or "images",
        target=known[0].target if known else "objects",
        sources=tuple(sources),
    )


def dataset_facts(card: ModelCard) -> DatasetFacts:
    """The facts of the card's training data: each of its ``sources`` when it lists several, the
    known facts of its dataset family, or facts built from its ``source`` and ``licence``."""
    if len(card.sources) > 1:
        return _several_sources(card)
    known = DATASETS.get(card.family)
    if known is not None:
        return known
    source = str(card.get("source") or f"the {card.dataset or 'user'} data set")
    url = str(card.get("source_url") or "")
    licence = str(card.get("licence") or "")
    cite = source_citation({"citation": card.get("citation") or source, "source_url": url})
    return DatasetFacts(
        name=source[:120],
        description=f"Images and masks of {source}.",
        citations=(cite,) if cite else (),
        url=url,
        data_license=licence or "see the data set",
        data_license_id=licence_id(licence),
        creators="the data set's authors",
        weights_license=weights_licence([licence]),
        tags=("2d", "semantic-segmentation"),
        modality="images",
        target="objects",
    )


def citations(card: ModelCard) -> list[Citation]:
    """The U-Net, the architecture's own papers and every training source."""
    arch = ARCH_CITATIONS.get(card.arch, ())
    return [UNET, *arch, *dataset_facts(card).citations]


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
    if s is None:
        raise ValueError(f"{card.name}: not an instance model")
    channels = card.get("target_channels", [s.markers, "foreground"])
    markers, relief = (
        (f"whose distance value is above {s.distance}", "the inverted distance map")
        if s.markers == "distance"
        else (f"whose boundary probability is below {s.boundary}", "the inverted foreground")
    )
    by_kind = (
        "Settings chosen per image kind ("
        + ", ".join(sorted(card.instances_by_kind))
        + ") are in `config.segcore.instances_by_kind`; segcore picks them by the image's kind, "
        "elsewhere use the kind's settings in place of the ones above.\n"
        if card.instances_by_kind
        else ""
    )
    return f"""## From the two channels to one label per nucleus

The output has two channels: `{channels[0]}` (channel 0) and `{channels[1]}` (channel 1, the
nuclei mask). The package gives probabilities; labels need one more step:

- with segcore: the commands under "Use" write `*_labels.png` (one id per nucleus),
  `*_objects.csv` and a QuPath-ready GeoJSON; the napari plugin shows them as a Labels layer;
- anywhere else (Fiji, ilastik, Python), the watershed recipe with the settings in this package's
  `config.segcore.instances`: (1) the nuclei are the pixels whose foreground probability is above
  {s.foreground}; (2) the markers are the connected pieces of the nuclei {markers}, dropping
  pieces under {s.min_marker_px} pixels; (3) flood the markers over {relief} within the
  nuclei (a marker-controlled watershed, e.g. MorphoLibJ's "Marker-controlled Watershed" in
  Fiji, or scikit-image's `watershed`); (4) pieces of the nuclei that hold no marker keep one
  label each; (5) drop objects under {s.min_size_px} pixels and those whose highest foreground
  probability is under {s.min_peak}.
{by_kind}"""


def _clean_up(card: ModelCard) -> str:
    """The card's mask clean-up in words (``fill holes, keep the largest object``, or none)."""
    steps = {"fill_holes": "fill holes", "keep_largest": "keep the largest object"}
    chosen = [words for key, words in steps.items() if (card.get("postprocess") or {}).get(key)]
    return ", ".join(chosen) or "none"


def _data_section(facts: DatasetFacts) -> str:
    """The training data: one paragraph, or one entry per source with its licence and images."""
    if not facts.sources:
        return f"{facts.description} Source: {facts.url or 'not recorded'} (licence: {facts.data_license})."
    entries = []
    for source in facts.sources:
        images = source.get("images") or {}
        counts = ", ".join(f"{n} {part}" for part, n in images.items()) or "counts not recorded"
        cite = source.get("citation") or "no reference recorded"
        entries.append(
            f"- **{source['name']}**: {source.get('source') or 'user-provided images'}; "
            f"licence {source.get('licence') or 'unknown (check its terms before sharing)'}; "
            f"{source.get('source_url') or 'address not recorded'}; images {counts}; cite: {cite}"
        )
    return f"{len(facts.sources)} training sources, each split on its own:\n\n" + "\n".join(entries)


def _licence_section(facts: DatasetFacts) -> str:
    """Why the package carries its licence: the terms of every training source."""
    terms = {
        "NC": "non-commercial use only",
        "SA": "share-alike: what you make from it takes the same licence",
        "ND": "no derivatives may be shared",
    }
    said = [words for t, words in terms.items() if f"-{t}" in facts.weights_license]
    why = f" ({'; '.join(said)})" if said else ""
    return f"""## Licence
The weights are released under {facts.weights_license}{why}: a model carries the terms of the
data it learnt from. Training data licences: {facts.data_license}. Credit every source above and
cite the references in this package when you use it.
"""


def _use_section(card: ModelCard, weights: str) -> str:
    """Commands that work on the package as downloaded (the card travels inside it)."""
    package = f"{card.name}.bioimageio.zip"
    return f"""## Use
In Fiji (deepImageJ), ilastik, QuPath or BiaPy: install `{package}` as a BioImage Model Zoo
model; the pre-processing runs inside the tool. With segcore (`pip install` a clone of segcore),
the model card `{weights.removesuffix(".onnx")}.json` travels inside the package, so the ONNX
file runs as it is once unpacked:

```
python -m zipfile -e {package} {card.name}
python -m segcore.predict --model {card.name}/{weights} IMAGE --out OUT
```
"""


def _input_section(card: ModelCard) -> str:
    """The input the model wants and the pre-processing the package declares for it."""
    if card.normalization == "percentile":
        low, high = card.percentiles
        scaling = (
            f"scaled per image by its own intensities: the {low} and {high} percentiles over "
            f"all pixels and channels go to 0 and 1 (`scale_range`), then clipped to "
            f"[{PERCENTILE_CLIP[0]}, {PERCENTILE_CLIP[1]}] (`clip`); any bit depth"
        )
    else:
        scaling = "8-bit, divided by 255 (`scale_linear`)"
    return f"Input: one image, axes batch, y, x, channel ({card.channels} channel(s)), {scaling}"


def readme(card: ModelCard, weights: str | None = None) -> str:
    """The package's README (Markdown): training data, licence, use, scoring, metrics, limits,
    labels; ``weights`` is the ONNX file name inside the package (default ``<name>.onnx``)."""
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
{_data_section(facts)}

{_licence_section(facts)}
{_use_section(card, weights or f"{card.name}.onnx")}
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
{_input_section(card)}; {size_rule}. Output: sigmoid probabilities in [0, 1], same height and
width; the mask is the last channel above {card.threshold}.

## Intended use and limits
Intended use: {facts.target} segmentation in images like the training set ({facts.modality}).
Limits: images unlike the training set (other modalities, stains, magnifications, 16-bit data
with a different intensity range) may fail silently; check results against a few hand-made
annotations before trusting counts or areas. Not a diagnostic device.
"""
    return text + ("\n" + _labels_section(card) if card.instances is not None else "")
