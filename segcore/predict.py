"""Batch prediction from the command line with an exported ONNX model.

    python -m segcore.predict --model models/NAME.onnx INPUT... --out DIR
        [--threshold T] [--tta] [--batch-size B] [--no-postprocess]

INPUT is any mix of files, folders (their image files, not recursive) and glob patterns. For each
image it writes ``<stem>_mask.png`` (0/255 at the input's own size) and ``<stem>_overlay.png``
(the prediction tinted and outlined over the image; JPEGs much larger than the model input are
decoded at reduced scale, so their overlay is that size) and one row of ``predictions.csv``.
Instance models (nuclei as objects) also write ``<stem>_labels.png`` (16-bit instance ids,
0 = background), ``<stem>_objects.csv`` (one row per nucleus) and ``<stem>_outlines.geojson``
(one polygon per nucleus), their overlay colours each nucleus, and ``count`` is the nuclei count.
A file that cannot be read gets a row naming the error and one line on stderr; the others go on.
Exit status: 0 when at least one image succeeded, 2 when none did or no input was found.
"""

from __future__ import annotations

import argparse
import csv
import glob
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from segcore.infer import Engine, LoadedImage, ModelError, Prediction
from segcore.preprocess import ImageError, is_image_file, resize_mask
from segcore.visualize import instance_overlay, overlay

CSV_FIELDS = (
    "file",
    "width",
    "height",
    "area_px",
    "area_pct",
    "components",
    "count",
    "seconds",
    "error",
)


def expand_inputs(inputs: Sequence[str]) -> list[Path]:
    """Files as given, folders' image files (sorted) and glob matches, without duplicates.

    A plain path that does not exist is kept, so its error is reported like any unreadable file.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.is_file() and is_image_file(p)))
        elif glob.has_magic(item):
            found.extend(
                sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            )
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def output_stems(paths: Sequence[Path]) -> list[str]:
    """A distinct output stem per input: the file stem, suffixed _2, _3... when stems repeat."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        stems.append(path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}")
    return stems


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def write_outputs(out_dir: Path, stem: str, image: LoadedImage, pred: Prediction) -> None:
    """Write the full-size 0/255 mask PNG and the overlay PNG of one prediction."""
    Image.fromarray(pred.mask.astype("uint8") * 255).save(out_dir / f"{stem}_mask.png")
    if pred.labels is not None:
        write_instance_outputs(out_dir, stem, image, pred)
        return
    preview_mask = resize_mask(pred.mask, image.pixels.shape[:2])
    Image.fromarray(overlay(image.pixels, preview_mask)).save(out_dir / f"{stem}_overlay.png")


def write_instance_outputs(out_dir: Path, stem: str, image: LoadedImage, pred: Prediction) -> None:
    """Labels PNG, objects CSV, outlines GeoJSON and the coloured-instances overlay of one image."""
    from segcore.instance_io import (
        save_labels_png,
        save_objects_csv,
        save_outlines_geojson,
        write_atomic,
    )

    save_labels_png(out_dir / f"{stem}_labels.png", pred.labels)
    save_objects_csv(out_dir / f"{stem}_objects.csv", pred.objects or [])
    save_outlines_geojson(out_dir / f"{stem}_outlines.geojson", pred.labels)
    picture = Image.fromarray(instance_overlay(image.pixels, pred.labels))
    write_atomic(out_dir / f"{stem}_overlay.png", lambda f: picture.save(f, format="PNG"))


def _row(path: Path, pred: Prediction | None = None, error: str = "") -> dict:
    if pred is None:
        return {"file": str(path), "error": error}
    return {
        "file": str(path),
        "width": pred.width,
        "height": pred.height,
        "area_px": pred.area_px,
        "area_pct": f"{pred.area_pct:.3f}",
        "components": pred.components,
        "count": pred.count,
        "seconds": f"{pred.seconds:.4f}",
        "error": "",
    }


def run(
    engine: Engine,
    paths: Sequence[Path],
    out_dir: Path,
    *,
    threshold: float | None = None,
    tta: bool = False,
    postprocess: bool = True,
    batch_size: int = 8,
) -> list[dict]:
    """Predict every (distinct) path, write masks, overlays and predictions.csv; returns the rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stems = dict(zip(paths, output_stems(paths), strict=True))
    rows: list[dict] = []
    with (
        open(out_dir / "predictions.csv", "w", newline="") as f,
        tqdm(total=len(paths), unit="img", desc="predict") as bar,
    ):
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for chunk in _chunks(list(paths), max(1, batch_size)):
            done: dict[Path, dict] = {}
            loaded: list[tuple[Path, LoadedImage]] = []
            for path in chunk:
                try:
                    loaded.append((path, engine.load(path)))
                except ImageError as exc:
                    tqdm.write(f"error: {exc}", file=sys.stderr)
                    done[path] = _row(path, error=str(exc))
            preds = engine.predict_batch(
                [im for _, im in loaded],
                threshold=threshold,
                tta=tta,
                postprocess=postprocess,
                batch_size=batch_size,
            )
            for (path, im), pred in zip(loaded, preds, strict=True):
                write_outputs(out_dir, stems[path], im, pred)
                done[path] = _row(path, pred)
            ordered = [done[path] for path in chunk]
            writer.writerows(ordered)
            rows.extend(ordered)
            bar.update(len(chunk))
    return rows


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        prog="python -m segcore.predict",
        description="Segment images with an exported ONNX model: masks, overlays and a CSV.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    p.add_argument("--model", required=True, type=Path, help="models/NAME.onnx (card beside it)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--threshold", type=float, help="probability threshold (default: the card's)")
    p.add_argument("--tta", action="store_true", help="average the four flips")
    p.add_argument("--batch-size", type=int, default=8, help="images per onnxruntime call")
    p.add_argument("--no-postprocess", action="store_true", help="raw thresholded masks")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    try:
        engine = Engine(args.model)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    paths = expand_inputs(args.inputs)
    if not paths:
        print("error: no input files found", file=sys.stderr)
        return 2
    rows = run(
        engine,
        paths,
        args.out,
        threshold=args.threshold,
        tta=args.tta,
        postprocess=not args.no_postprocess,
        batch_size=args.batch_size,
    )
    ok = sum(not r["error"] for r in rows)
    print(f"{ok}/{len(rows)} images segmented -> {args.out}", file=sys.stderr)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
