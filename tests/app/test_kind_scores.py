"""Per-kind scores on the Benchmarks page: the model x kind table from the cards' ``by_kind``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pagetools import problems

from segcore.app.kind_scores import kind_table
from segcore.app.model_choice import list_models

BY_KIND = {
    "all": {"n_images": 3, "dice": 0.8, "dsb_score": 0.6, "f1_iou50": 0.9, "count_error": 0.1},
    "fluorescence": {"n_images": 2, "dice": 0.9, "dsb_score": 0.7, "f1_iou50": 0.95},
    "he": {"n_images": 1, "dice": 0.6, "dsb_score": 0.4, "f1_iou50": 0.8, "count_error": 0.3},
}


def _with_kinds(models: Path, tmp_path: Path) -> Path:
    """A copy of ``models`` where the ``bright`` card holds per-kind test scores."""
    folder = Path(shutil.copytree(models, tmp_path / "models"))
    card_path = folder / "bright.json"
    card = json.loads(card_path.read_text())
    card["test_metrics"] = {"n_images": 3, "dice": 0.8, "by_kind": BY_KIND}
    card_path.write_text(json.dumps(card))
    return folder


def test_kind_table_rows_per_model_and_kind(bright_models_dir: Path, tmp_path: Path):
    entries, _ = list_models(_with_kinds(bright_models_dir, tmp_path))
    table = kind_table(entries)
    assert table["model"].tolist() == ["bright"] * 3  # bright_gray's card has no kinds
    assert table["kind"].tolist() == ["all images", "fluorescence", "H&E / colour"]
    assert table["images"].tolist() == [3, 2, 1]
    assert table["DSB score"].tolist() == [0.6, 0.7, 0.4]
    assert table["count error"].isna().tolist() == [False, True, False]
    assert len(kind_table(entries, "val")) == 0  # no validation scores in the card


def test_benchmarks_page_shows_the_kind_table(
    app_env, bright_models_dir: Path, tmp_path: Path, open_page
):
    app_env(models=_with_kinds(bright_models_dir, tmp_path))
    at = open_page("benchmarks")
    assert not problems(at)
    assert any(s.value == "Scores per image kind" for s in at.subheader)
    tables = [d.value for d in at.dataframe]
    kinds = next(t for t in tables if "kind" in t.columns)
    assert kinds["kind"].tolist() == ["all images", "fluorescence", "H&E / colour"]


def test_no_kind_table_without_per_kind_scores(app_env, bright_models_dir: Path, open_page):
    app_env(models=bright_models_dir)
    at = open_page("benchmarks")
    assert not any(s.value == "Scores per image kind" for s in at.subheader)
