"""Batch prediction from the command line with an exported ONNX model.

    python -m segcore.predict --model models/NAME.onnx INPUT... --out DIR
        [--threshold T] [--tta] [--batch-size B] [--no-postprocess]
        [--recursive] [--shard K/N] [--skip-existing]

INPUT is any mix of files, folders and glob patterns. A folder gives its own image files; a data-set
folder (ISIC ``images/`` + ``masks/``, DSB ``stage1_train/<id>/images``, plain ``images/`` +
``masks/``) gives its images the way training finds them (never its masks); ``--recursive`` gives
every image file below a folder. The inputs are sorted by path, so output names and shards do not
depend on the order of the arguments.

For each image it writes ``<stem>_overlay.png`` (the prediction tinted and outlined over the image;
JPEGs much larger than the model input are decoded at reduced scale, so their overlay is that size),
then ``<stem>_mask.png`` (0/255 at the input's own size), and one row of ``predictions.csv``.
Every file is written under a temporary name and renamed when complete; the CSV is built in
``predictions.csv.part`` and renamed at the end. A file that cannot be read gets a row naming the
error and one line on stderr; the others go on.

``--shard K/N`` takes every N-th input starting at the K-th of the sorted list: N jobs given the same
inputs and ``--out`` cover every input exactly once, each writing ``predictions-K-of-N.csv``.
``--skip-existing`` does not redo an image whose ``<stem>_mask.png`` (the last file written for it)
exists and whose row an earlier run of the same command recorded, in the CSV or in the ``.part``
file an interrupted run leaves; that row is carried over.

Instance models (nuclei as objects) also write ``<stem>_labels.png`` (16-bit instance ids,
0 = background), ``<stem>_objects.csv`` (one row per nucleus) and ``<stem>_outlines.geojson``
(one polygon per nucleus), before the mask; their overlay colours each nucleus, and ``count`` is
the nuclei count. Their microscopy inputs (TIFF, OME-TIFF, OME-Zarr) go block by block through
`segcore.largeimage` instead, whatever their size: ``[--block-size N] [--workers N | --scheduler
ADDRESS] [--channel C] [--z K | --project max] [--t K] [--pixel-size UM] [--object-diameter D]``;
they write ``<stem>_labels.ome.zarr``, ``<stem>_objects.csv`` and ``<stem>_outlines.geojson``
(``x.ome.tif`` -> ``x_...``) and resume a killed run block by block.

Exit status: 0 when at least one image succeeded (or a shard had no input), 2 when none did, no
input was found, or an option is wrong (one line on stderr).
"""

from __future__ import annotations

import argparse
import csv
import glob
import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from segcore import cli, largeimage_cli
from segcore.atomic import replacing
from segcore.data.layouts import find_images
from segcore.errors import DataError, ImageError, UserError
from segcore.infer import FIGURE_COLUMNS, Engine, LoadedImage, Prediction, figure_cells
from segcore.io.microscopy import is_microscopy_file
from segcore.io.microscopy import stem_of as file_stem
from segcore.preprocess import is_image_file, resize_mask
from segcore.visualize import instance_overlay, overlay

log = logging.getLogger(__name__)

CSV_FIELDS = ("file", *FIGURE_COLUMNS, "error")
CSV_NAME = "predictions.csv"
PARTIAL_SUFFIX = ".part"
#: The file written last for each image: once it exists, the image's outputs are complete.
DONE_SUFFIX = "_mask.png"
LARGE_DONE = "_labels.ome.zarr"
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


def output_stems(paths: Sequence[Path]) -> list[str]:
    """A distinct output stem per input: the file stem (``x.ome.tif`` -> ``x``), suffixed _2,
    _3... when stems repeat."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = file_stem(path)
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


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


def read_finished_rows(csv_path: Path) -> dict[str, dict]:
    """Successful rows (by file) an earlier run recorded in ``csv_path`` and its ``.part`` file.

    A row cut short by a kill (fields missing) or naming an error does not count.
    """
    rows: dict[str, dict] = {}
    for path in (csv_path, csv_path.with_name(csv_path.name + PARTIAL_SUFFIX)):
        if not path.is_file():
            continue
        with open(path, newline="") as f:
            try:
                for row in csv.DictReader(f):
                    if all(row.get(k) is not None for k in CSV_FIELDS) and row["error"] == "":
                        rows[row["file"]] = {k: row[k] for k in CSV_FIELDS}
            except csv.Error:
                pass  # a torn last line: the rows before it still count
    return rows


def is_finished(out_dir: Path, stem: str) -> bool:
    """True when the last file written for ``stem`` exists: its mask, or for a microscopy file
    its labels OME-Zarr (renamed into place when the whole image is done)."""
    return (out_dir / f"{stem}{DONE_SUFFIX}").is_file() or (
        out_dir / f"{stem}{LARGE_DONE}"
    ).is_dir()


# --- outputs ------------------------------------------------------------------------------------


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _save_png(image: Image.Image, path: Path) -> None:
    with replacing(path) as tmp:
        image.save(tmp, format="PNG")


def write_outputs(out_dir: Path, stem: str, image: LoadedImage, pred: Prediction) -> None:
    """Write the overlay PNG (and an instance model's labels, objects and outlines), then the
    full-size 0/255 mask PNG, each atomically.

    The mask comes last: its presence marks the image finished for ``--skip-existing``, so any
    other output of an image must be written before it.
    """
    if pred.labels is not None:
        write_instance_outputs(out_dir, stem, image, pred)
    else:
        preview_mask = resize_mask(pred.mask, image.pixels.shape[:2])
        _save_png(
            Image.fromarray(overlay(image.pixels, preview_mask)), out_dir / f"{stem}_overlay.png"
        )
    _save_png(Image.fromarray(pred.mask.astype("uint8") * 255), out_dir / f"{stem}{DONE_SUFFIX}")


def write_instance_outputs(out_dir: Path, stem: str, image: LoadedImage, pred: Prediction) -> None:
    """Labels PNG, objects CSV, outlines GeoJSON and the coloured-instances overlay of one image."""
    from segcore.instance_io import save_labels_png, save_objects_csv, save_outlines_geojson

    save_labels_png(out_dir / f"{stem}_labels.png", pred.labels)
    save_objects_csv(out_dir / f"{stem}_objects.csv", pred.objects or [])
    save_outlines_geojson(out_dir / f"{stem}_outlines.geojson", pred.labels)
    _save_png(
        Image.fromarray(instance_overlay(image.pixels, pred.labels)),
        out_dir / f"{stem}_overlay.png",
    )


def _row(path: Path, pred: Prediction | None = None, error: str = "") -> dict:
    if pred is None:
        return {"file": str(path), "error": error}
    return {"file": str(path), **figure_cells(pred.figures()), "error": ""}


def _write_csv(path: Path, rows: Sequence[dict]) -> None:
    with replacing(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def run(
    engine: Engine,
    paths: Sequence[Path],
    out_dir: Path,
    *,
    stems: Sequence[str] | None = None,
    csv_file: str = CSV_NAME,
    skip_existing: bool = False,
    threshold: float | None = None,
    tta: bool = False,
    postprocess: bool = True,
    batch_size: int = 8,
    large: Callable[[Path, Path, str], dict] | None = None,
) -> list[dict]:
    """Predict every path, write masks, overlays and the CSV; returns the rows in path order.

    ``large(path, out_dir, stem) -> row``, when given, segments the microscopy files (TIFF,
    OME-Zarr) block by block instead (`segcore.largeimage`).

    ``stems`` names each path's outputs (default: `output_stems`); ``skip_existing`` carries
    over the rows of finished images (see the module docstring) instead of predicting them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stem_of = dict(zip(paths, stems or output_stems(paths), strict=True))
    final = out_dir / csv_file
    partial = out_dir / (csv_file + PARTIAL_SUFFIX)
    earlier = read_finished_rows(final) if skip_existing else {}
    done: dict[Path, dict] = {
        p: earlier[str(p)] for p in paths if str(p) in earlier and is_finished(out_dir, stem_of[p])
    }
    todo = [p for p in paths if p not in done]
    if done:
        log.info("skipping %d finished image(s)", len(done))
    with (
        open(partial, "w", newline="") as f,
        tqdm(total=len(todo), unit="img", desc="predict") as bar,
    ):
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(done.values())
        f.flush()
        for chunk in _chunks(todo, max(1, batch_size)):
            new: dict[Path, dict] = {}
            loaded: list[tuple[Path, LoadedImage]] = []
            for path in chunk:
                if large is not None and is_microscopy_file(path):
                    new[path] = large(path, out_dir, stem_of[path])
                    continue
                try:
                    loaded.append((path, engine.load(path)))
                except ImageError as exc:
                    log.error("%s", exc)
                    new[path] = _row(path, error=str(exc))
            preds = engine.predict_batch(
                [im for _, im in loaded],
                threshold=threshold,
                tta=tta,
                postprocess=postprocess,
                batch_size=batch_size,
            )
            for (path, im), pred in zip(loaded, preds, strict=True):
                write_outputs(out_dir, stem_of[path], im, pred)
                new[path] = _row(path, pred)
            writer.writerows(new[path] for path in chunk)
            f.flush()
            done.update(new)
            bar.update(len(chunk))
    rows = [done[path] for path in paths]
    _write_csv(final, rows)
    partial.unlink()
    return rows


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = cli.parser(
        "python -m segcore.predict",
        "Segment images with an exported ONNX model: masks, overlays and a CSV (instance models\n"
        "add per-nucleus labels, an objects table and GeoJSON outlines).",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--model", required=True, type=Path, help="models/NAME.onnx (card beside it)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
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
        help="do not redo images an earlier run into --out finished (resume a batch)",
    )
    p.add_argument("--verbose", action="store_true", help="more messages")
    largeimage_cli.add_arguments(p)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    cli.setup_logging("--verbose" in (sys.argv[1:] if argv is None else argv))
    return cli.run_command(lambda: _predict(parse_args(argv)))


def _predict(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"--out {args.out} is a file; give a folder")
    from segcore.onnx_runner import quiet_onnxruntime_logs

    quiet_onnxruntime_logs()
    # open_image refuses an image above MAX_PIXELS itself, before decoding; Pillow's own warning
    # (from 89 megapixels) would only repeat that above the one-line error
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    engine = Engine(args.model)
    paths, empty = expand_inputs(args.inputs, args.recursive)
    if not paths:
        raise UserError(f"no input images found in {', '.join(empty)} (searched {SEARCHED})")
    for item in empty:
        log.warning("no images found in %s", item)
    stems = output_stems(paths)
    jobs = select_shard(list(zip(paths, stems, strict=True)), args.shard)
    name = csv_name(args.shard)
    if args.shard and not jobs:
        log.info("shard %d/%d has no input (%d in all)", *args.shard, len(paths))
    try:
        cluster = largeimage_cli.open_cluster(args) if engine.instances is not None else None
    except OSError as exc:
        raise UserError(f"--scheduler {args.scheduler}: cannot connect ({exc})") from None
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        rows = run(
            engine,
            [p for p, _ in jobs],
            args.out,
            stems=[s for _, s in jobs],
            csv_file=name,
            skip_existing=args.skip_existing,
            threshold=args.threshold,
            tta=args.tta,
            postprocess=not args.no_postprocess,
            batch_size=args.batch_size,
            large=largeimage_cli.large_handler(engine, args, cluster) if engine.instances else None,
        )
    except OSError as exc:
        raise UserError(f"cannot write to --out {args.out} ({exc.strerror or exc})") from None
    finally:
        if cluster is not None:
            cluster.close()
    ok = sum(not r["error"] for r in rows)
    print(f"{ok}/{len(rows)} images segmented -> {args.out / name}", file=sys.stderr)
    return 0 if ok or not rows else 2


if __name__ == "__main__":
    sys.exit(main())
