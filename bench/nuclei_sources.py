"""Nuclei models across data sources: instance scores per source and per image kind.

    python -m bench.nuclei_sources --model models/A.onnx [--model auto ...]
        [--data DSB_DIR --data MONUSEG_DIR] [--subset val] [--fractions 0.8,0.1,0.1] [--seed 42]
        [--out FILE]

Each source (a data folder in any layout training reads: DSB ``stage1_train``, plain ``images/``
+ ``masks/`` with label images, ...) is split on its own exactly as training splits it
(`segcore.data.find_samples`, then `segcore.data.make_split` with ``--fractions`` and
``--seed``), so ``--subset val`` is the validation part of every source. Each image goes through
`segcore.commands.predict.Models` as ``python -m segcore.predict --model M`` sends it (``auto`` picks a
shipped model per image), with the defaults of that command (the card's threshold, no TTA,
post-processing), and its prediction is scored against the source's truth resized to the
prediction, as ``--truth`` does: DSB 2018 score, F1 at IoU 0.5, relative count error, AJI (the
MoNuSeg definition) and Dice. A semantic model's objects are its mask's connected components.

Rows are per model, source and image kind (`segcore.kinds`: fluorescence, brightfield, he, and
``all``): the mean over images and ``n_images``. A table is printed and the results are written
atomically to ``--out`` (default ``bench/results/nuclei_sources-<subset>-<models>.json``).
Choose on ``val``; ``test`` is for the final model, once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

from scipy import ndimage
from tqdm import tqdm

from segcore.atomic import write_json
from segcore.commands.predict import AUTO, Models
from segcore.data import find_samples, load_labels, make_split
from segcore.data.split import SPLIT_NAMES, parse_fractions
from segcore.errors import DataError, ModelError
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.kinds import image_kind, scores_by_kind
from segcore.scoring.matching import instance_scores
from segcore.scoring.scores import dice
from segcore.scoring.truth import resize_labels

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_SOURCES = (SHARED / "dsb2018", SHARED / "monuseg2018")
SCORES = ("dsb_score", "f1_iou50", "count_error", "aji", "dice")
RESULTS = Path("bench/results")


def source_name(root: Path) -> str:
    """A source's short name: its folder's name (``stage1_train`` names its parent)."""
    root = Path(root).resolve()
    return root.parent.name if root.name == "stage1_train" else root.name


def source_split(root: Path, subset: str, fractions: str, seed: int) -> list:
    """The ``subset`` samples of one source, split on its own as training splits it."""
    _, samples = find_samples(root)
    return make_split(samples, parse_fractions(fractions), seed)[subset]


def score_image(models: Models, sample) -> dict:
    """One image predicted as ``segcore.commands.predict`` predicts it and scored against its truth:
    {model, kind, the `SCORES`, n_true, n_pred}."""
    name, loaded = models.load(sample.image)[:2]
    pred = models.engine(name).predict(loaded)
    image, truth = load_labels(sample)
    truth = resize_labels(truth, pred.mask.shape)
    labels = pred.labels if pred.labels is not None else ndimage.label(pred.mask)[0]
    return {
        "image": sample.image.name,
        "model": name,
        "kind": image_kind(image),
        **instance_scores(truth, labels),
        "dice": dice(truth > 0, pred.mask),
    }


def evaluate(model: str, sources: list[Path], subset: str, fractions: str, seed: int) -> dict:
    """Per source: the per-image rows and their means per kind, for one ``--model`` value."""
    models = Models.open(model)
    out = {}
    for root in sources:
        part = source_split(root, subset, fractions, seed)
        t0 = time.perf_counter()
        rows = [
            score_image(models, s)
            for s in tqdm(part, desc=f"{model} {source_name(root)}", leave=False)
        ]
        out[source_name(root)] = {
            "root": str(root),
            "seconds": round(time.perf_counter() - t0, 1),
            "models_used": sorted({r["model"] for r in rows}),
            "by_kind": scores_by_kind(rows, [r["kind"] for r in rows], SCORES),
            "images": rows,
        }
    return out


def default_out(subset: str, models: list[str]) -> Path:
    """``bench/results/nuclei_sources-<subset>-<model stems joined by +>.json``."""
    stems = "+".join(m if m == AUTO else Path(m).stem for m in models)
    return RESULTS / f"nuclei_sources-{subset}-{stems}.json"


def table(results: dict[str, dict]) -> str:
    """The printed table: one line per model, source and kind."""
    head = f"{'model':<28} {'source':<14} {'kind':<13} {'n':>4}" + "".join(
        f"{s:>12}" for s in SCORES
    )
    lines = [head]
    for model, sources in results.items():
        for source, result in sources.items():
            for kind, scores in result["by_kind"].items():
                lines.append(
                    f"{Path(model).stem:<28} {source:<14} {kind:<13} {scores['n_images']:4d}"
                    + "".join(f"{scores[s]:12.4f}" for s in SCORES)
                )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.nuclei_sources",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", action="append", required=True, help="ONNX model, or auto")
    p.add_argument(
        "--data",
        type=Path,
        action="append",
        help=f"data source folders (default: {', '.join(map(str, DEFAULT_SOURCES))})",
    )
    p.add_argument("--subset", default="val", choices=SPLIT_NAMES, help="which split to score")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="the training split fractions")
    p.add_argument("--seed", type=int, default=42, help="the training split seed")
    p.add_argument("--out", type=Path, help="JSON results (default: see the description)")
    p.add_argument(
        "--card",
        type=Path,
        help="with one --model: also write the means per source and kind into this model card "
        "(as <subset>_metrics_by_source, with the results file's name)",
    )
    return p


def into_card(card: Path, subset: str, result: dict, out: Path) -> None:
    """Write one model's means per source and kind into its card, atomically: the card's
    ``<subset>_metrics_by_source`` = {source: {kind: means}, "file": results file name}."""
    import json

    data = json.loads(card.read_text())
    by_source: dict = {name: r["by_kind"] for name, r in result.items()}
    data[f"{subset}_metrics_by_source"] = by_source | {"file": out.name}
    write_json(card, data)


def main(argv: list[str] | None = None) -> int:
    """Score every model on every source's subset; print a table and write the results."""
    a = _parser().parse_args(argv)
    sources = a.data or list(DEFAULT_SOURCES)
    quiet_onnxruntime_logs()
    results: dict[str, dict] = {}
    try:
        parse_fractions(a.fractions)
        for root in sources:
            if not Path(root).is_dir():
                raise DataError(f"--data {root}: not a folder")
        if a.card is not None and (len(a.model) != 1 or not a.card.is_file()):
            raise DataError(f"--card {a.card}: needs one --model and an existing card")
        for model in a.model:
            results[model] = evaluate(model, sources, a.subset, a.fractions, a.seed)
    except (DataError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{a.subset} subset of each source (split {a.fractions}, seed {a.seed})")
    print(table(results))
    out = a.out or default_out(a.subset, a.model)
    write_json(
        out,
        {
            "command": "python -m bench.nuclei_sources " + " ".join(argv or sys.argv[1:]),
            "subset": a.subset,
            "fractions": a.fractions,
            "seed": a.seed,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "scores": list(SCORES),
            "results": results,
        },
    )
    print(f"wrote {out}")
    if a.card is not None:
        into_card(a.card, a.subset, results[a.model[0]], out)
        print(f"wrote {a.subset}_metrics_by_source into {a.card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
