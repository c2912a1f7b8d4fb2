"""The Variants page in AppTest over synthetic comparison folders and the hand-made models, and
its logic: score table verdicts, colours, the Pareto front, disagreements."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pagetools import SAMPLES, problems, texts
from variant_folders import write_variant

from segcore.app.variant_board import (
    PALETTE,
    SHIPPED,
    VARIANTS,
    colors,
    comparison_groups,
    disagreements,
    pareto_front,
    score_table,
)
from segcore.scoring.variant_runs import find_variants

RNG = np.random.default_rng(5)
BASE = RNG.uniform(0.6, 0.9, 30)
#: Per-image Dice of the synthetic ISIC comparison: unetpp best by a consistent 0.05, unet_bn
#: within noise of it, unet clearly worse.
ISIC = {
    "unet": BASE - 0.05,
    "unet_bn": BASE + 0.05 + RNG.normal(0, 0.02, 30),
    "improved_unet": BASE,
    "unetpp": BASE + 0.05,
    "attention_unet": BASE + 0.01,
}


@pytest.fixture
def variants_root(tmp_path: Path) -> Path:
    """Five ISIC variants and two DSB ones (one a toy run)."""
    root = tmp_path / "variants"
    for arch, dice in ISIC.items():
        write_variant(root, "isic", arch, list(np.clip(dice, 0, 1)))
    write_variant(root, "dsb", "unet", [0.8, 0.7, 0.9, 0.85, 0.6], toy=True)
    write_variant(root, "dsb", "unetpp", [0.81, 0.9, 0.88, 0.7, 0.62], toy=True)
    return root


def test_score_table_says_better_same_or_worse_against_the_best(variants_root: Path):
    runs, _ = find_variants(variants_root)
    group = comparison_groups(runs)["isic"]
    table = score_table(group.contenders).set_index("variant")
    assert table.loc["unetpp", "against the best"] == "best mean Dice"
    assert table.loc["unet", "against the best"] == "worse than unetpp"
    assert table.loc["unet_bn", "against the best"] == "no measurable difference from unetpp"
    low, high = (float(x) for x in table.loc["unet", "Dice 95% interval"].split(" – "))
    assert low < table.loc["unet", "Dice"] < high


def test_each_variant_keeps_its_colour_and_shipped_models_take_others(variants_root: Path):
    runs, _ = find_variants(variants_root)
    groups = comparison_groups(runs)
    isic, dsb = colors(groups["isic"].contenders), colors(groups["dsb"].contenders)
    assert isic["unetpp"] == dsb["unetpp"] == PALETTE[VARIANTS.index("unetpp")]
    assert len(set(isic.values())) == 5
    shipped = (
        groups["dsb"]
        .contenders[0]
        .__class__(
            **{**groups["dsb"].contenders[0].__dict__, "label": "dsb_model", "source": SHIPPED}
        )
    )
    assert colors([shipped])["dsb_model"] == PALETTE[len(VARIANTS)]


def test_pareto_front_keeps_only_undominated_points():
    cost = [1.0, 2.0, 3.0, 2.5, 4.0]
    score = [0.80, 0.85, 0.84, 0.90, 0.89]
    assert pareto_front(cost, score) == [0, 1, 3]
    # throughput: higher is cheaper
    assert pareto_front([10.0, 5.0, 8.0], [0.8, 0.9, 0.7], higher_cost_is_better=True) == [0, 1]


def test_disagreements_lists_the_widest_spread_first(variants_root: Path):
    runs, _ = find_variants(variants_root)
    frame = disagreements(comparison_groups(runs)["dsb"].contenders, count=2)
    assert list(frame.columns) == ["image", "spread", "unet", "unetpp"]
    assert frame["image"].tolist() == ["img001", "img003"]  # spreads 0.2 and 0.15
    assert frame["spread"].iloc[0] >= frame["spread"].iloc[1]


def test_variants_page_over_a_full_and_a_partial_comparison(
    app_env, bright_models_dir: Path, variants_root: Path, open_page, monkeypatch
):
    app_env(models=bright_models_dir, samples=SAMPLES)
    monkeypatch.setenv("SEGCORE_VARIANTS_DIR", str(variants_root))
    at = open_page("variants")
    assert not problems(at), problems(at)
    assert at.title[0].value == "U-Net variants"
    assert at.segmented_control(key="variants-dataset").value == "isic"
    shown = texts(at)
    assert "of the 5 variants have comparison files yet" not in shown
    assert "synthetic test budget" in shown
    scores = at.dataframe[0].value.set_index("variant")
    assert scores.loc["unet", "against the best"] == "worse than unetpp"
    assert len(at.get("plotly_chart")) >= 6  # 4 curves, intervals, cost, distribution
    # the same bundled sample through every variant: image, truth, five columns with a Dice
    captions = [c.value for c in at.caption if "Dice" in c.value]
    assert len([c for c in captions if "·" in c]) == 5
    at.segmented_control(key="variants-dataset").set_value("dsb").run()
    assert not problems(at), problems(at)
    shown = texts(at)
    assert "dsb: 2 of the 5 variants have comparison files yet" in shown
    assert "improved_unet" in shown and "TOY runs" in shown
    verdicts = at.dataframe[0].value.set_index("variant")["against the best"]
    assert verdicts["unet"] == "no measurable difference from unetpp"  # 5 images, wide spread


def test_variants_page_without_comparison_files_shows_the_shipped_models(
    app_env, bright_models_dir: Path, open_page, tmp_path: Path, monkeypatch
):
    app_env(models=bright_models_dir, samples=SAMPLES)
    monkeypatch.setenv("SEGCORE_VARIANTS_DIR", str(tmp_path / "absent"))
    at = open_page("variants")
    assert not problems(at), problems(at)
    assert "isic: 0 of the 5 variants have comparison files yet" in texts(at)
    assert at.segmented_control(key="variants-source-isic").value == SHIPPED
    assert at.dataframe[0].value["variant"].tolist() == ["bright_gray"]
    assert "no per-image scores" in at.dataframe[0].value["Dice 95% interval"].tolist()
