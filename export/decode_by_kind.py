"""Decoding settings per kind of image for a shipped instance model, chosen on validation.

    python -m export.decode_by_kind models/NAME.onnx --data DIR [--min-images 5]
        [--min-gain 0.005] [--dry-run]

The model's train/val/test split is re-created from its card (``split``, ``seed``) over
``--data``, the data folder training used. Each validation image is predicted once and sorted
by its kind (`segcore.kinds`: fluorescence, bright-field, H&E); for every kind with at least
``--min-images`` validation images the decoding grid (`segcore.scoring.decode_search`) is searched on
that kind's images, starting from the card's ``instances``. A kind whose best settings beat the
card's by at least ``--min-gain`` mean validation DSB score gets them in the card's
``instances_by_kind`` (the engine and the block-wise path pick settings by the same rule); the
others keep ``instances``. The card records each kind's validation scores before and after
(``instances_by_kind_val``). The test split is then scored once with the new card: its
``test_metrics`` (overall and ``by_kind``) are replaced, the previous ones kept as
``test_metrics_one_decoding``. ``--dry-run`` prints the choice and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from export import ExportError
from export.run_folder import add_data_flag, shipped_split
from export.verify import score
from segcore import cli
from segcore.atomic import write_text
from segcore.card import ModelCard
from segcore.data.layouts import readable
from segcore.errors import ModelError
from segcore.inference.engine import Engine
from segcore.inference.onnx_runner import quiet_onnxruntime_logs
from segcore.kinds import KINDS, image_kind
from segcore.scoring.decode_search import TUNE_SCORES, score_decoding, search_decoding

MIN_IMAGES = 5
MIN_GAIN = 0.005


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = cli.parser("python -m export.decode_by_kind", __doc__.split("\n")[0])
    p.add_argument("model", type=Path, metavar="MODEL", help="models/NAME.onnx (card beside it)")
    add_data_flag(p)
    p.add_argument(
        "--min-images",
        type=cli.positive_int,
        default=MIN_IMAGES,
        help="validation images a kind needs for settings of its own",
    )
    p.add_argument(
        "--min-gain",
        type=cli.positive_float,
        default=MIN_GAIN,
        help="validation DSB score a kind's settings must gain over the card's",
    )
    p.add_argument("--dry-run", action="store_true", help="print the choice, write nothing")
    return p.parse_args(argv)


def predicted_by_kind(engine: Engine, samples: list) -> dict[str, list]:
    """(truth labels, output channels) of each readable sample, grouped by image kind."""
    groups: dict[str, list] = {kind: [] for kind in KINDS}
    for _, image, labels in tqdm(
        readable(samples, True), total=len(samples), desc="predict val", leave=False, disable=None
    ):
        groups[image_kind(image)].append((labels, engine.tiled_channels(image)))
    return groups


def choose(
    card: ModelCard, groups: dict[str, list], min_images: int, min_gain: float
) -> tuple[dict[str, dict], dict[str, dict]]:
    """(``instances_by_kind`` entries: only the keys that differ from the card's, per kind;
    each kind's validation report)."""
    base = card.instances
    assert base is not None
    chosen, report = {}, {}
    for kind, predicted in groups.items():
        entry: dict = {"n_images": len(predicted)}
        report[kind] = entry
        if len(predicted) < min_images:
            entry["kept"] = f"fewer than {min_images} validation images"
            continue
        before = score_decoding(predicted, base)
        best, trials = search_decoding(predicted, base)
        after = max(trials, key=lambda t: t["dsb_score"])
        entry |= {
            "before": before,
            "after": {k: after[k] for k in TUNE_SCORES},
            "trials": len(trials),
        }
        gain = after["dsb_score"] - before["dsb_score"]
        if gain < min_gain:
            entry["kept"] = f"gain {gain:.4f} below {min_gain}"
            continue
        changed = {k: v for k, v in best.to_json().items() if base.to_json()[k] != v}
        chosen[kind] = changed
        entry["settings"] = changed
    return chosen, report


def kind_line(kind: str, entry: dict, settings: dict | None) -> str:
    """One printed line per kind: its validation images, scores and what it decodes with."""
    line = f"{kind}: {entry['n_images']} val images"
    if "before" in entry:
        line += f", DSB {entry['before']['dsb_score']:.4f} -> {entry['after']['dsb_score']:.4f}"
    if settings is not None:
        return f"{line}; own settings {json.dumps(settings)}"
    return f"{line}; the card's settings kept ({entry['kept']})"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    cli.setup_logging()
    return cli.run_command(lambda: _run(parse_args(argv)))


def _run(args: argparse.Namespace) -> int:
    quiet_onnxruntime_logs()
    card_path = args.model.with_suffix(".json")
    try:
        card = ModelCard.read(card_path)
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    if card.instances is None:
        raise ExportError(f"{card_path}: not an instance model (no instances in its card)")
    split = shipped_split(card.raw, args.data)
    engine = Engine(args.model)  # prediction only: the decoding settings come later
    groups = predicted_by_kind(engine, split["val"])
    chosen, report = choose(card, groups, args.min_images, args.min_gain)
    for kind, entry in report.items():
        print(kind_line(kind, entry, chosen.get(kind)))
    if args.dry_run:
        return 0
    new = {k: v for k, v in card.raw.items() if k != "instances_by_kind"}
    new["instances_by_kind"] = chosen
    new["instances_by_kind_val"] = report
    new["test_metrics_one_decoding"] = card.raw.get(
        "test_metrics_one_decoding", card.raw.get("test_metrics")
    )
    tested = Engine.from_runner(ModelCard.from_json(new, str(card_path)), engine.runner)
    new["test_metrics"] = score(tested, split["test"], card.postprocess)[0]
    write_text(card_path, json.dumps(new, indent=1) + "\n")
    t = new["test_metrics"]
    print(
        f"wrote {card_path}: test DSB {t['dsb_score']:.4f}, F1 {t['f1_iou50']:.4f}, "
        f"count error {t['count_error']:.1%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
