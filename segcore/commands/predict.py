"""Batch prediction from the command line with an exported ONNX model.

    python -m segcore.predict --model models/NAME.onnx|auto INPUT... --out DIR
        [--truth DIR] [--threshold T] [--tta] [--batch-size B] [--no-postprocess]
        [--recursive] [--shard K/N] [--skip-existing]

INPUT is any mix of files, folders and glob patterns. A folder gives its own image files; a data-set
folder (ISIC ``images/`` + ``masks/``, DSB ``stage1_train/<id>/images``, plain ``images/`` +
``masks/``) gives its images the way training finds them (never its masks); ``--recursive`` gives
every image file below a folder. The inputs are sorted by path, so output names and shards do not
depend on the order of the arguments.

``--model auto`` picks, per image, the shipped model (the catalog, `segcore.catalog`:
``$SEGCORE_MODELS_DIR``, else ``models/``) trained on that kind of image (`segcore.modelfit`:
nuclei in fluorescence, bright-field or H&E; skin lesions), as the app's "Automatic" does, and
then segments the image exactly as naming that model would (a microscopy file for an instance
model block by block); an image like none of their training images gets one warning line (its
result is likely wrong). With a model named, an image that does not look like its training
images gets one warning line naming the model that fits.

For each image it writes ``<stem>_overlay.png`` (the prediction tinted and outlined over the image;
JPEGs much larger than the model input are decoded at reduced scale, so their overlay is that size),
then ``<stem>_mask.png`` (0/255 at the input's own size), and one row of ``predictions.csv``
(columns: `segcore.io.results`; ``file`` is the bare name, ``folder`` its folder, ``model`` the
model used, ``outputs`` the files written). Stems are distinct even where inputs share a name
(`segcore.io.names`). Every file is written under a temporary name and renamed when complete;
the CSV is built in ``predictions.csv.part`` and renamed at the end. An image that cannot be read
or segmented gets a row naming the error and one line on stderr; the others go on, and a summary
of the failed files ends the run.

Instance models (nuclei as objects) also write ``<stem>_labels.png`` (16-bit instance ids,
0 = background; a 32-bit ``<stem>_labels.tif`` above 65,535 nuclei), ``<stem>_objects.csv``
(one row per nucleus) and ``<stem>_outlines.geojson`` (one polygon per nucleus), before the mask;
their overlay colours each nucleus, and ``count`` is the nuclei count. Their microscopy inputs
(TIFF, OME-TIFF, OME-Zarr) go block by block through `segcore.large.largeimage` instead, whatever their
size: ``[--block-size N] [--workers N | --scheduler ADDRESS] [--channel C] [--z K | --project
max] [--t K] [--pixel-size UM] [--object-diameter D]``; they write ``<stem>_labels.ome.zarr``,
``<stem>_objects.csv`` and ``<stem>_outlines.geojson`` (``x.ome.tif`` -> ``x_...``).

``--truth DIR`` scores each image against the truth file with the same stem in DIR (a binary mask,
a label image or a DSB ``<id>/masks/`` folder, `segcore.scoring.truth`): ``dice`` and ``iou``, the
``annotated`` count and, for instance models, ``dsb_score`` and ``f1_iou50``.

``--shard K/N`` takes every N-th input starting at the K-th of the sorted list: N jobs given the same
inputs and ``--out`` cover every input exactly once, each writing ``predictions-K-of-N.csv``.
``--skip-existing`` does not redo an image whose row an earlier run recorded (in the CSV or the
``.part`` file an interrupted run leaves) with the same model, threshold and TTA and whose output
files all exist; that row is carried over. Outputs of another model are redone.

Exit status: 0 when every image succeeded (or a shard had no input); 1 when some failed (they are
listed at the end); 2 when none succeeded, no input was found, or an option, model or folder is
wrong (one line on stderr).
"""

from __future__ import annotations

import argparse
import glob
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from segcore import cli
from segcore.atomic import replacing
from segcore.card import ModelCard
from segcore.catalog import by_name, list_models
from segcore.commands import largeimage_cli
from segcore.commands.largeimage_cli import LargeFiles
from segcore.data.imagestats import usable
from segcore.data.layouts import find_images
from segcore.errors import DataError, ImageError, ModelError, UserError, reason
from segcore.inference.engine import Engine, LoadedImage, Prediction, figure_cells
from segcore.inference.preprocess import MAX_PIXELS, is_image_file, resize_mask
from segcore.inference.visualize import instance_overlay, overlay
from segcore.io.microscopy import is_microscopy_file
from segcore.io.names import output_stems, printable
from segcore.io.results import COLUMNS, OUTPUTS_SEPARATOR, read_table, row_outputs, table_text
from segcore.modelfit import FIT_SIDE, fit_pixels, measure_fit, mismatch_line
from segcore.paths import models_dir
from segcore.scoring.scores import binary_scores
from segcore.scoring.truth import (
    annotated_count,
    find_truth,
    read_truth,
    resize_labels,
    truth_index,
)

log = logging.getLogger(__name__)

CSV_FIELDS = COLUMNS
CSV_NAME = "predictions.csv"
PARTIAL_SUFFIX = ".part"
#: The file written last for each image.
DONE_SUFFIX = "_mask.png"
#: ``--model`` value that picks a shipped model per image.
AUTO = "auto"
#: Exit status when some (not all) images failed.
SOME_FAILED = 1
#: Errors that fail one image and let the batch go on.
IMAGE_FAILURES = (ImageError, ValueError, OSError, MemoryError)
SEARCHED = (
    "a folder's image files, or a data set's images (ISIC, DSB stage1_train, images/ + masks/); "
    "--recursive searches subfolders"
)


# --- inputs -------------------------------------------------------------------------------------


def folder_images(folder: Path, recursive: bool = False) -> list[Path]:
    """The images of one folder, sorted: its own image files, else a data set's images (as
    `segcore.data.layouts` finds them for training), else with ``recursive`` every image file
    below it."""
    if not recursive:
        own = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
        if own:
            return own
    try:
        return find_images(folder)[1]
    except DataError:
        pass
    if recursive:
        return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    return []


def expand_inputs(inputs: Sequence[str], recursive: bool = False) -> tuple[list[Path], list[str]]:
    """The input files, sorted and without duplicates, and the folders/patterns that found none.

    Files are kept as given (a missing one is reported like any unreadable file); folders give
    `folder_images`; glob patterns their matching files.
    """
    found: list[Path] = []
    empty: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir() and not is_microscopy_file(path):  # an OME-Zarr folder is one image
            matches = folder_images(path, recursive)
        elif glob.has_magic(item):
            matches = [Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file()]
        else:
            matches = [path]
        if not matches:
            empty.append(item)
        found.extend(matches)
    return sorted(set(found)), empty


# --- shards and finished images -----------------------------------------------------------------


def select_shard(items: Sequence, shard: tuple[int, int] | None) -> list:
    """Shard K of N of ``items``: every N-th item starting at the K-th (all when None)."""
    if shard is None:
        return list(items)
    k, n = shard
    return list(items[k - 1 :: n])


def csv_name(shard: tuple[int, int] | None) -> str:
    """``predictions.csv``, or ``predictions-K-of-N.csv`` for a shard."""
    return CSV_NAME if shard is None else f"predictions-{shard[0]}-of-{shard[1]}.csv"


def finished_rows(csv_path: Path) -> dict[tuple[str, str], dict]:
    """Successful rows an earlier run recorded in ``csv_path`` and its ``.part`` file, by
    (folder, file); rows cut short by a kill or naming an error do not count."""
    rows: dict[tuple[str, str], dict] = {}
    for path in (csv_path, csv_path.with_name(csv_path.name + PARTIAL_SUFFIX)):
        for row in read_table(path):
            if row["error"] == "":
                rows[(row["folder"], row["file"])] = row
    return rows


def row_key(path: Path) -> tuple[str, str]:
    """How a results row names an input: (folder, file), printable."""
    return printable(path.parent), printable(path.name)


# --- models -------------------------------------------------------------------------------------


def folder_cards(folder: Path | None = None) -> tuple[dict[str, ModelCard], dict[str, Path]]:
    """The readable model cards of ``folder`` (default: the catalog's folder), as name -> card
    and name -> ONNX path (`segcore.catalog`)."""
    entries = by_name(list_models(folder)[0])
    return {n: e.card for n, e in entries.items()}, {n: e.path for n, e in entries.items()}


@dataclass
class Models:
    """The model(s) of a batch: one named model (``fixed``), or ``--model auto`` among the
    shipped ones; ``cards`` are the models an image's fit is measured against."""

    cards: dict[str, ModelCard]
    paths: dict[str, Path]
    fixed: str | None
    engines: dict[str, Engine] = field(default_factory=dict)

    @classmethod
    def open(cls, model: str) -> Models:
        """``--model``'s value: a model file or `AUTO`; raises ModelError."""
        if model == AUTO:
            cards, paths = folder_cards()
            fitting = {n: c for n, c in cards.items() if usable(c.get("image_stats"))}
            if not fitting:
                raise ModelError(f"--model auto: no model in {models_dir()} has image_stats")
            return cls(fitting, {n: paths[n] for n in fitting}, None)
        engine = Engine(model)
        cards, paths = folder_cards(Path(model).parent)
        cards[engine.name], paths[engine.name] = engine.card, Path(model)
        return cls(cards, paths, engine.name, {engine.name: engine})

    def engine(self, name: str) -> Engine:
        """The engine of model ``name`` (opened on first use)."""
        if name not in self.engines:
            self.engines[name] = Engine(self.paths[name])
        return self.engines[name]

    def load(self, path: Path, name: str | None = None) -> tuple[str, LoadedImage, str | None]:
        """(the model for ``path``, the image decoded for it, a mismatch warning or None);
        ``name`` is the model already chosen for it, if any."""
        if self.fixed is None:
            fit = measure_fit(fit_pixels(path), self.cards)
            name = name or fit.best() or next(iter(self.cards))
            return name, self.engine(name).load(path), mismatch_line(fit, name, self.cards)
        loaded = self.engine(self.fixed).load(path)
        fit = measure_fit(loaded.pixels, self.cards)
        return self.fixed, loaded, mismatch_line(fit, self.fixed, self.cards)

    def best(self, pixels: np.ndarray) -> str:
        """The model ``--model auto`` takes for an image shown by ``pixels`` (8-bit RGB)."""
        return measure_fit(pixels, self.cards).best() or next(iter(self.cards))

    def for_microscopy(self, path: Path, large: LargeFiles) -> str:
        """The model for a microscopy file: the one named, or ``auto``'s choice on the selected
        plane's thumbnail; raises ImageError for an unreadable file."""
        if self.fixed is not None:
            return self.fixed
        return self.best(large.thumbnail(path, FIT_SIDE))

    def threshold(self, name: str, given: float | None) -> str:
        """The threshold model ``name`` uses, as the CSV writes it."""
        value = given if given is not None else self.cards[name].threshold
        return f"{value:g}"


# --- outputs ------------------------------------------------------------------------------------


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _save_png(image: Image.Image, path: Path) -> None:
    with replacing(path) as tmp:
        image.save(tmp, format="PNG")


def write_outputs(out_dir: Path, stem: str, image: LoadedImage, pred: Prediction) -> list[str]:
    """Write the overlay PNG (and an instance model's labels, objects and outlines), then the
    full-size 0/255 mask PNG, each atomically; returns the names written, the mask last."""
    if pred.labels is not None:
        names = write_instance_outputs(out_dir, stem, image, pred)
    else:
        preview_mask = resize_mask(pred.mask, image.pixels.shape[:2])
        _save_png(
            Image.fromarray(overlay(image.pixels, preview_mask)), out_dir / f"{stem}_overlay.png"
        )
        names = [f"{stem}_overlay.png"]
    _save_png(Image.fromarray(pred.mask.astype("uint8") * 255), out_dir / f"{stem}{DONE_SUFFIX}")
    return [*names, f"{stem}{DONE_SUFFIX}"]


def write_instance_outputs(
    out_dir: Path, stem: str, image: LoadedImage, pred: Prediction
) -> list[str]:
    """Labels (16-bit PNG, 32-bit TIFF above 65,535 nuclei), objects CSV, outlines GeoJSON and
    the coloured-instances overlay of one image; returns the names written."""
    from segcore.io.instance_io import save_labels, save_objects_csv, save_outlines_geojson

    ids = pred.instance_labels()
    labels = save_labels(out_dir / f"{stem}_labels", ids)
    save_objects_csv(out_dir / f"{stem}_objects.csv", pred.objects or [])
    save_outlines_geojson(out_dir / f"{stem}_outlines.geojson", ids, pred.objects)
    _save_png(
        Image.fromarray(instance_overlay(image.pixels, ids)),
        out_dir / f"{stem}_overlay.png",
    )
    return [labels.name, f"{stem}_objects.csv", f"{stem}_outlines.geojson", f"{stem}_overlay.png"]


def truth_scores(truth: Path, pred: Prediction, max_pixels: int) -> dict[str, str]:
    """The CSV's truth columns for one prediction against a truth file or mask folder; raises
    ImageError for a truth of another size than the image (never stretched to fit)."""
    labels = read_truth(truth, max_pixels)
    if labels.shape[:2] != (pred.height, pred.width):
        raise ImageError(
            f"{truth}: {labels.shape[1]}x{labels.shape[0]} pixels, the image is "
            f"{pred.width}x{pred.height}; a truth must be the image's size (not scored)"
        )
    labels = resize_labels(labels, pred.mask.shape)
    binary = binary_scores(labels > 0, pred.mask)
    out = {
        "annotated": str(annotated_count(labels)),
        "dice": f"{binary['dice']:.4f}",
        "iou": f"{binary['iou']:.4f}",
        "truth": printable(truth.name),
    }
    if pred.labels is not None:
        from segcore.scoring.matching import instance_scores

        objects = instance_scores(labels, pred.labels)
        out |= {
            "dsb_score": f"{objects['dsb_score']:.4f}",
            "f1_iou50": f"{objects['f1_iou50']:.4f}",
        }
    return out


def error_row(path: Path, error: str, model: str = "") -> dict:
    """The row of an image that failed."""
    folder, name = row_key(path)
    return {"file": name, "folder": folder, "model": model, "error": printable(error)}


def result_row(path: Path, pred: Prediction, **columns: object) -> dict:
    """The row of a segmented image; ``columns`` adds model, threshold, tta, outputs, scores."""
    folder, name = row_key(path)
    return {"file": name, "folder": folder, **figure_cells(pred.figures()), "error": "", **columns}


# --- the batch ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """How every image of a batch is segmented and scored."""

    threshold: float | None = None
    tta: bool = False
    postprocess: bool = True
    batch_size: int = 8
    truths: dict[str, Path] | None = None  # truth file or folder by image stem


def _load(models: Models, path: Path, name: str | None = None) -> tuple[str, LoadedImage]:
    """Decode ``path`` for its model (``name`` when already chosen), saying any warning
    (mismatch, pixel range) in one line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        name, loaded, mismatch = models.load(path, name)
    for message in [mismatch, *(str(w.message) for w in caught)]:
        if message:
            log.warning("%s: %s", printable(path), message)
    return name, loaded


def _finish(
    models: Models, name: str, path: Path, loaded: LoadedImage, pred: Prediction, job: Job
) -> dict:
    """Write one image's outputs and score it; its row."""
    outputs = write_outputs(job.out_dir, job.stems[path], loaded, pred)
    settings = job.settings
    columns = {
        "model": name,
        "threshold": models.threshold(name, settings.threshold),
        "tta": settings.tta,
        "outputs": OUTPUTS_SEPARATOR.join(outputs),
    }
    truth = find_truth(path.name, settings.truths or {})
    if truth is not None:
        try:
            columns |= truth_scores(truth, pred, models.engine(name).max_pixels)
        except ImageError as exc:
            log.warning("truth ignored: %s", printable(str(exc)))
    return result_row(path, pred, **columns)


def _predict_group(
    models: Models, name: str, items: list[tuple[Path, LoadedImage]], job: Job
) -> dict[Path, dict]:
    """Segment images of one model, together, or one by one when one of them fails."""
    engine, s = models.engine(name), job.settings
    rows: dict[Path, dict] = {}
    try:
        preds = engine.predict_batch(
            [im for _, im in items],
            threshold=s.threshold,
            tta=s.tta,
            postprocess=s.postprocess,
            batch_size=s.batch_size,
        )
    except Exception:  # each image is tried alone, so the one at fault gets its row
        preds = None
    for i, (path, loaded) in enumerate(items):
        try:
            pred = (
                preds[i]
                if preds is not None
                else engine.predict(
                    loaded, threshold=s.threshold, tta=s.tta, postprocess=s.postprocess
                )
            )
            rows[path] = _finish(models, name, path, loaded, pred, job)
        except IMAGE_FAILURES as exc:
            rows[path] = _failed(path, exc, name)
        except Exception as exc:  # a bug: said, and the other images still run
            rows[path] = _internal(path, exc, name)
    return rows


def _failed(path: Path, exc: BaseException, model: str = "") -> dict:
    """Say why ``path`` failed; its row."""
    text = str(exc) if str(path) in str(exc) else f"{path}: {exc or type(exc).__name__}"
    log.error("%s", printable(text))
    return error_row(path, text, model)


def _internal(path: Path, exc: Exception, model: str = "") -> dict:
    """Say that ``path`` met an unexpected exception (an internal error, its traceback with
    --verbose); its row, so the batch goes on."""
    log.debug("internal error on %s", printable(path), exc_info=exc)
    text = f"{path}: internal error ({reason(exc)}); --verbose shows where"
    log.error("%s", printable(text))
    return error_row(path, text, model)


#: What the block-wise path writes for a microscopy file (`segcore.large.largeimage`).
LARGE_OUTPUTS = ("_labels.ome.zarr", "_objects.csv", "_outlines.geojson")


def _large_row(models: Models, job: Job, path: Path, name: str) -> dict:
    """The row of a microscopy file segmented block by block by model ``name``, in the table's
    shape (with the model, threshold, TTA and outputs that ``--skip-existing`` checks, and with
    ``--truth`` the scores of the written labels)."""
    if job.large is None:
        raise ValueError(f"{path}: a microscopy file for the block-wise path, without its handler")
    stem = job.stems[path]
    row = job.large.segment(models.engine(name), path, job.out_dir, stem)
    folder, file = row_key(path)
    error = printable(row.get("error", ""))
    outputs = [] if error else [f"{stem}{suffix}" for suffix in LARGE_OUTPUTS]
    truth = find_truth(path.name, job.settings.truths or {})
    scores = {} if error or truth is None else large_truth_scores(truth, job.out_dir, stem)
    return {
        **row,
        **scores,
        "file": file,
        "folder": folder,
        "model": name,
        "threshold": models.threshold(name, job.settings.threshold),
        "tta": str(job.settings.tta),
        "outputs": OUTPUTS_SEPARATOR.join(outputs),
        "error": error,
    }


def large_truth_scores(truth: Path, out_dir: Path, stem: str) -> dict[str, str]:
    """The truth columns of a file segmented block by block, scored on the labels it wrote;
    a file above `MAX_PIXELS` or a truth of another size is not scored, with one warning line
    (the ``truth`` column says why)."""
    from segcore.io.labels_zarr import read_labels
    from segcore.scoring.matching import instance_scores

    labels_path = out_dir / f"{stem}{LARGE_OUTPUTS[0]}"
    try:
        predicted = read_labels(labels_path)
        if predicted.size > MAX_PIXELS:
            raise ImageError(
                f"{predicted.shape[1]}x{predicted.shape[0]} is above the {MAX_PIXELS:,}-pixel "
                "limit of scoring"
            )
        labels = read_truth(truth, MAX_PIXELS)
        if labels.shape != predicted.shape:
            raise ImageError(
                f"{truth.name} is {labels.shape[1]}x{labels.shape[0]}, the image "
                f"{predicted.shape[1]}x{predicted.shape[0]}"
            )
    except ImageError as exc:
        log.warning("truth not scored for %s: %s", stem, printable(str(exc)))
        return {"truth": printable(f"not scored: {exc}")}
    binary = binary_scores(labels > 0, predicted > 0)
    objects = instance_scores(labels, predicted)
    return {
        "annotated": str(annotated_count(labels)),
        "dice": f"{binary['dice']:.4f}",
        "iou": f"{binary['iou']:.4f}",
        "truth": printable(truth.name),
        "dsb_score": f"{objects['dsb_score']:.4f}",
        "f1_iou50": f"{objects['f1_iou50']:.4f}",
    }


def predict_chunk(models: Models, chunk: list[Path], job: Job) -> dict[Path, dict]:
    """Rows of a chunk of images: decoded for their model, segmented a model at a time."""
    rows: dict[Path, dict] = {}
    groups: dict[str, list[tuple[Path, LoadedImage]]] = {}
    for path in chunk:
        name: str | None = None
        if job.large is not None and is_microscopy_file(path):
            try:
                name = models.for_microscopy(path, job.large)
            except IMAGE_FAILURES as exc:
                rows[path] = _failed(path, exc)
                continue
            if models.engine(name).instances is not None:  # as naming the model would
                rows[path] = _large_row(models, job, path, name)
                continue
        try:
            name, loaded = _load(models, path, name)
            groups.setdefault(name, []).append((path, loaded))
        except IMAGE_FAILURES as exc:
            rows[path] = _failed(path, exc)
        except Exception as exc:  # a bug: said, and the other images still run
            rows[path] = _internal(path, exc)
    for name, items in groups.items():
        rows |= _predict_group(models, name, items, job)
    return rows


@dataclass(frozen=True)
class Job:
    """Where a batch writes: the folder, each input's output stem, the CSV name, the settings."""

    out_dir: Path
    stems: dict[Path, str]
    settings: Settings
    csv_file: str = CSV_NAME
    #: segments microscopy files block by block (`segcore.large.largeimage`) for instance models,
    #: named with --model or chosen by auto
    large: LargeFiles | None = None


def still_valid(row: dict, models: Models, job: Job) -> bool:
    """True when an earlier row used this batch's model(s), threshold and TTA and its outputs
    all exist (so ``--skip-existing`` may carry it over)."""
    name = row["model"]
    allowed = set(models.cards) if models.fixed is None else {models.fixed}
    outputs = row_outputs(row, job.out_dir)
    return (
        name in allowed
        and row["tta"] == str(job.settings.tta)
        and row["threshold"] == models.threshold(name, job.settings.threshold)
        and bool(outputs)
        and all(p.exists() for p in outputs)  # files, or an OME-Zarr folder
    )


def run(
    models: Models,
    paths: Sequence[Path],
    job: Job,
    skip_existing: bool = False,
) -> list[dict]:
    """Predict every path, write its outputs and the CSV; returns the rows in path order.

    ``skip_existing`` carries over the rows of finished images (see the module docstring).
    """
    job.out_dir.mkdir(parents=True, exist_ok=True)
    final = job.out_dir / job.csv_file
    partial = job.out_dir / (job.csv_file + PARTIAL_SUFFIX)
    earlier = finished_rows(final) if skip_existing else {}
    done: dict[Path, dict] = {}
    for p in paths:
        row = earlier.get(row_key(p))
        if row is not None and still_valid(row, models, job):
            done[p] = row
    todo = [p for p in paths if p not in done]
    if done:
        log.info("skipping %d finished image(s)", len(done))
    with (
        open(partial, "w", newline="", encoding="utf-8") as f,
        tqdm(total=len(todo), unit="img", desc="predict") as bar,
    ):
        f.write(table_text(done.values()))
        f.flush()
        for chunk in _chunks(todo, max(1, job.settings.batch_size)):
            new = predict_chunk(models, chunk, job)
            f.write(table_text(new[p] for p in chunk).split("\n", 1)[1])
            f.flush()
            done |= new
            bar.update(len(chunk))
    rows = [done[path] for path in paths]
    with replacing(final) as tmp:
        tmp.write_text(table_text(rows), encoding="utf-8")
    partial.unlink()
    return rows


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = cli.parser(
        "python -m segcore.predict",
        "Segment images with an exported ONNX model: per image a mask, an overlay and a row of\n"
        "predictions.csv; nuclei (instance) models add per-nucleus labels, an objects table and\n"
        "GeoJSON outlines. Exit 0: every image done, 1: some failed (listed at the end), 2: none\n"
        "done or a bad option.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument(
        "--model",
        required=True,
        help=f"models/NAME.onnx (card beside it), or '{AUTO}': per image the shipped model "
        "trained on that kind of image",
    )
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--truth",
        type=Path,
        help="folder of truth masks, label images or DSB <id>/masks/ folders, matched by stem: "
        "adds Dice, IoU, annotated count (and DSB score, F1 for nuclei models) to the CSV",
    )
    p.add_argument(
        "--threshold", type=cli.probability, help="probability threshold 0..1 (default: the card's)"
    )
    p.add_argument("--tta", action="store_true", help="average the four flips")
    p.add_argument(
        "--batch-size", type=cli.positive_int, default=8, help="images per onnxruntime call"
    )
    p.add_argument("--no-postprocess", action="store_true", help="raw thresholded masks")
    p.add_argument("--recursive", action="store_true", help="every image file below a folder")
    p.add_argument(
        "--shard",
        metavar="K/N",
        type=cli.shard,
        help="predict only the K-th of N interleaved parts of the sorted inputs (K = 1..N)",
    )
    p.add_argument(
        "--skip-existing",
        action="store_true",
        help="do not redo images an earlier run into --out finished with the same model, "
        "threshold and TTA (resume a batch)",
    )
    p.add_argument("--verbose", action="store_true", help="more messages")
    largeimage_cli.add_arguments(p)
    return p.parse_args(argv)


def summary(rows: Sequence[dict], where: Path) -> int:
    """Print how many images succeeded and list the failed ones; the exit status."""
    failed = [r for r in rows if r["error"]]
    ok = len(rows) - len(failed)
    print(f"{ok}/{len(rows)} images segmented -> {where}", file=sys.stderr)
    if not failed:
        return 0
    print(f"failed: {len(failed)} of {len(rows)} images:", file=sys.stderr)
    for row in failed:
        print(f"  {row['error']}", file=sys.stderr)
    return SOME_FAILED if ok else 2


def _settings(args: argparse.Namespace) -> Settings:
    """The batch settings from the options; UserError naming a bad truth folder."""
    truths = None
    if args.truth is not None:
        if not args.truth.is_dir():
            raise UserError(f"--truth {args.truth}: not a folder")
        truths = truth_index(args.truth)
        if not truths:
            raise UserError(f"--truth {args.truth}: no masks or label images in it")
    return Settings(
        threshold=args.threshold,
        tta=args.tta,
        postprocess=not args.no_postprocess,
        batch_size=args.batch_size,
        truths=truths,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    cli.setup_logging("--verbose" in (sys.argv[1:] if argv is None else argv))
    return cli.run_command(lambda: _predict(parse_args(argv)))


def _predict(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file; give a folder")
    from segcore.inference.onnx_runner import quiet_onnxruntime_logs

    quiet_onnxruntime_logs()
    # open_image refuses an image above MAX_PIXELS itself, before decoding; Pillow's own warning
    # (from 89 megapixels) would only repeat that above the one-line error
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    models = Models.open(args.model)
    paths, empty = expand_inputs(args.inputs, args.recursive)
    if not paths:
        raise UserError(f"no input images found in {', '.join(empty)} (searched {SEARCHED})")
    for item in empty:
        log.warning("no images found in %s", item)
    jobs = select_shard(list(zip(paths, output_stems(paths), strict=True)), args.shard)
    if args.shard and not jobs:
        log.info("shard %d/%d has no input (%d in all)", *args.shard, len(paths))
    fixed = models.engine(models.fixed) if models.fixed is not None else None
    blockwise = fixed is None or fixed.instances is not None  # auto may choose a nuclei model
    try:
        cluster = largeimage_cli.open_cluster(args) if blockwise else None
    except OSError as exc:
        raise UserError(f"--scheduler {args.scheduler}: cannot connect ({exc})") from None
    large = largeimage_cli.LargeFiles(args, cluster) if blockwise else None
    job = Job(args.out, dict(jobs), settings, csv_name(args.shard), large)
    try:
        rows = run(models, [p for p, _ in jobs], job, skip_existing=args.skip_existing)
    except OSError as exc:
        raise UserError(f"cannot write to --out {args.out} ({exc.strerror or exc})") from None
    finally:
        if cluster is not None:
            cluster.close()
    missing = [
        p
        for p in job.stems
        if settings.truths is not None and find_truth(p.name, settings.truths) is None
    ]
    if missing:
        log.warning("no truth in %s for %d image(s)", args.truth, len(missing))
    return summary(rows, args.out / job.csv_file)


if __name__ == "__main__":
    sys.exit(main())
