"""The Variants page's logic: every U-Net variant of a data set side by side, with how sure each
score is, what each costs, and where the variants disagree.

A data set's contenders come from the comparison's folders (`segcore.scoring.variant_runs`, written by
``python -m bench.architectures``: one budget for every variant) or, as their own group, from the
shipped models (``models/<name>.onnx`` + card + history, trained with other recipes; their
per-image scores ``models/<name>.test_per_image.csv`` when present). Statistics come from
`segcore.scoring.bootstrap`; figures are plotly; nothing here imports Streamlit or TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from segcore.app.model_choice import ModelEntry
from segcore.card import ModelCard
from segcore.models import ARCHITECTURES
from segcore.scoring.bootstrap import BETTER, SAME, TOO_FEW, WORSE, mean_interval, paired_comparison
from segcore.scoring.scores import binary_scores
from segcore.scoring.variant_runs import SHIPPED_PER_IMAGE, PerImage, VariantRun, read_per_image

#: The variants a complete comparison holds, in the order the page lists them.
VARIANTS = tuple(ARCHITECTURES)
#: One colour per variant in every chart (shipped models take the colours after these).
PALETTE = qualitative.Plotly
COMPARISON, TOY, SHIPPED = "comparison run", "toy run", "shipped model"
#: Cost columns of the cost-against-accuracy view: column -> axis title.
COSTS = {
    "params (M)": "parameters (millions)",
    "GFLOPs per image": "GFLOPs per image",
    "CPU ms (batch 1)": "CPU ms per image, batch 1",
    "train img/s": "training images per second (higher is cheaper)",
}
#: Disagreement: the images with the widest spread of Dice over the variants.
DISAGREEMENTS = 4


@dataclass(frozen=True)
class Contender:
    """One model of a data set's comparison: its label, architecture, where it comes from, its
    card, files and (when scored image by image) its per-image test scores."""

    label: str
    arch: str
    source: str
    card: ModelCard
    model_path: Path
    history_path: Path | None
    per_image: PerImage | None
    files: tuple[Path, ...]

    @property
    def test_dice(self) -> float | None:
        """The card's mean test Dice."""
        value = self.card.test_metrics.get("dice")
        return float(value) if isinstance(value, int | float) else None


@dataclass(frozen=True)
class Group:
    """The contenders of one data set from one source, with the problems met reading them."""

    dataset: str
    source: str
    contenders: list[Contender]
    problems: list[str]

    @property
    def missing(self) -> list[str]:
        """The variants the comparison has no files for yet (none for shipped models)."""
        if self.source == SHIPPED:
            return []
        have = {c.arch for c in self.contenders}
        return [v for v in VARIANTS if v not in have]


def _per_image(path: Path, problems: list[str]) -> PerImage | None:
    if not path.is_file():
        return None
    try:
        return read_per_image(path)
    except ValueError as exc:
        problems.append(str(exc))
        return None


def comparison_groups(runs: list[VariantRun]) -> dict[str, Group]:
    """The comparison runs by data set, in `VARIANTS` order."""
    groups: dict[str, Group] = {}
    order = {v: i for i, v in enumerate(VARIANTS)}
    for run in sorted(runs, key=lambda r: (r.dataset, order.get(r.arch, len(order)), r.arch)):
        group = groups.setdefault(run.dataset, Group(run.dataset, COMPARISON, [], []))
        per_image = _per_image(run.per_image_path, group.problems)
        files = (run.model_path, run.folder / "model.json", run.history_path, run.per_image_path)
        group.contenders.append(
            Contender(
                label=run.arch,
                arch=run.arch,
                source=TOY if run.toy else COMPARISON,
                card=run.card,
                model_path=run.model_path,
                history_path=run.history_path if run.history_path.is_file() else None,
                per_image=per_image,
                files=tuple(f for f in files if f.is_file()),
            )
        )
    return groups


def shipped_groups(entries: list[ModelEntry]) -> dict[str, Group]:
    """The shipped models by data set family."""
    groups: dict[str, Group] = {}
    for entry in sorted(entries, key=lambda e: (e.family, e.name)):
        group = groups.setdefault(entry.family, Group(entry.family, SHIPPED, [], []))
        per_image_path = entry.path.with_name(entry.name + SHIPPED_PER_IMAGE)
        files = (entry.path, entry.path.with_suffix(".json"), entry.history, per_image_path)
        group.contenders.append(
            Contender(
                label=entry.name,
                arch=entry.card.arch,
                source=SHIPPED,
                card=entry.card,
                model_path=entry.path,
                history_path=entry.history,
                per_image=_per_image(per_image_path, group.problems),
                files=tuple(f for f in files if f is not None and f.is_file()),
            )
        )
    return groups


def colors(contenders: list[Contender]) -> dict[str, str]:
    """Label -> colour: a comparison variant keeps its architecture's colour on every page and
    data set; other models take the next colours in turn."""
    out, spare = {}, len(VARIANTS)
    for c in contenders:
        if c.source != SHIPPED and c.arch in VARIANTS:
            out[c.label] = PALETTE[VARIANTS.index(c.arch) % len(PALETTE)]
        else:
            out[c.label] = PALETTE[spare % len(PALETTE)]
            spare += 1
    return out


def common_images(contenders: list[Contender]) -> list[str]:
    """The test images every contender with per-image scores was scored on (first one's order)."""
    scored = [c.per_image for c in contenders if c.per_image is not None]
    if not scored:
        return []
    shared = set(scored[0].images).intersection(*(p.images for p in scored[1:]))
    return [image for image in scored[0].images if image in shared]


def _scored(contenders: list[Contender]) -> list[tuple[Contender, PerImage]]:
    """The contenders with per-image scores, each with its scores."""
    return [(c, c.per_image) for c in contenders if c.per_image is not None]


def _aligned(per_image: PerImage, images: list[str], score: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(per_image.images)}
    return per_image.scores[score][[index[name] for name in images]]


def score_table(contenders: list[Contender]) -> pd.DataFrame:
    """Per contender: test images, mean Dice and IoU with 95% bootstrap intervals over its test
    images, and the paired verdict against the best mean Dice (on the images both were scored
    on). A contender without per-image scores shows its card's means and no interval."""
    images = common_images(contenders)
    #: (the contender of the best mean Dice, its scores); None when none has per-image scores
    best = max(_scored(contenders), key=lambda cp: float(cp[1].scores["dice"].mean()), default=None)
    rows = []
    for c in contenders:
        row: dict = {"variant": c.label, "source": c.source}
        metrics = c.card.test_metrics
        if c.per_image is None:
            row |= {
                "test images": metrics.get("n_images"),
                "Dice": metrics.get("dice"),
                "IoU": metrics.get("iou"),
                "Dice 95% interval": "no per-image scores",
                "IoU 95% interval": "no per-image scores",
                "against the best": "cannot tell (no per-image scores)",
            }
            rows.append(row)
            continue
        dice = mean_interval(c.per_image.scores["dice"])
        iou = mean_interval(c.per_image.scores["iou"])
        row |= {
            "test images": dice.n,
            "Dice": dice.mean,
            "IoU": iou.mean,
            "Dice 95% interval": f"{dice.low:.3f} – {dice.high:.3f}",
            "IoU 95% interval": f"{iou.low:.3f} – {iou.high:.3f}",
        }
        if best is None or c is best[0]:  # (best is None only when no contender has scores)
            row["against the best"] = "best mean Dice"
        else:
            best_contender, best_scores = best
            paired = paired_comparison(
                _aligned(c.per_image, images, "dice"), _aligned(best_scores, images, "dice")
            )
            row["against the best"] = verdict_text(paired.verdict, best_contender.label)
            d = paired.difference
            row["Dice difference (95%)"] = f"{d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
        rows.append(row)
    return pd.DataFrame(rows)


def verdict_text(verdict: str, best: str) -> str:
    """The paired verdict in plain words against the best model's label."""
    return {
        BETTER: f"better than {best}",
        WORSE: f"worse than {best}",
        SAME: f"no measurable difference from {best}",
        TOO_FEW: TOO_FEW,
    }[verdict]


def interval_figure(contenders: list[Contender], palette: dict[str, str]) -> go.Figure | None:
    """Mean test Dice and IoU with their 95% intervals, one row per contender; None when no
    contender has per-image scores."""
    fig = go.Figure()
    for score, symbol in (("dice", "circle"), ("iou", "diamond")):
        for c in contenders:
            if c.per_image is None:
                continue
            ci = mean_interval(c.per_image.scores[score])
            fig.add_trace(
                go.Scatter(
                    x=[ci.mean],
                    y=[c.label],
                    mode="markers",
                    name=f"{c.label} {'Dice' if score == 'dice' else 'IoU'}",
                    marker={"color": palette[c.label], "symbol": symbol, "size": 10},
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": [ci.high - ci.mean],
                        "arrayminus": [ci.mean - ci.low],
                    },
                    hovertemplate=f"{c.label} {score}: {ci.text()}<extra></extra>",
                )
            )
    if not fig.data:
        return None
    fig.update_layout(
        title="Test Dice (circles) and IoU (diamonds), 95% intervals",
        xaxis_title="mean over the test images",
        showlegend=False,
        height=160 + 40 * len(contenders),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def gflops(model: Path, size: int, channels: int) -> float:
    """GFLOPs (two per multiply-add) of one run of the ONNX model at size x size."""
    import onnx

    from export.graph import count_macs

    return 2 * count_macs(onnx.load(model), (1, size, size, channels)) / 1e9


def cost_table(
    contenders: list[Contender],
    cpu_ms: dict[tuple[str, str], dict],
    shipped_ms: dict[str, float],
    flops: Callable[[Contender], float | None],
) -> pd.DataFrame:
    """Per contender: parameters, GFLOPs per image, CPU ms at batch 1, training img/s and test
    Dice, with the file each figure comes from."""
    rows = []
    for c in contenders:
        block = c.card.get("variant") or {}
        if c.source == SHIPPED:
            ms, ms_file = shipped_ms.get(c.label), "bench/results/inference-*.json"
        else:
            record = cpu_ms.get((c.card.family, c.arch)) or {}
            ms, ms_file = record.get("batch1_ms_median"), f"bench/results/{record.get('file')}"
        params = c.card.get("params")
        rows.append(
            {
                "variant": c.label,
                "params (M)": params / 1e6 if isinstance(params, int | float) else None,
                "GFLOPs per image": block.get("gflops_per_image") or flops(c),
                "CPU ms (batch 1)": ms,
                "train img/s": block.get("train_img_s"),
                "test Dice": c.test_dice,
                "input px": c.card.input_size,
                "precision": c.card.get("precision"),
                "CPU ms from": ms_file if ms is not None else "not measured",
            }
        )
    return pd.DataFrame(rows)


def pareto_front(
    cost: list[float], score: list[float], higher_cost_is_better: bool = False
) -> list[int]:
    """Indices of the points no other point beats on both cost and score (lower cost, higher
    score; or higher "cost" when ``higher_cost_is_better``, e.g. throughput), by cost."""
    sign = -1.0 if higher_cost_is_better else 1.0
    points = [(sign * c, s, i) for i, (c, s) in enumerate(zip(cost, score, strict=True))]
    front, best = [], -np.inf
    for _, s, i in sorted(points, key=lambda p: (p[0], -p[1])):
        if s > best:
            front.append(i)
            best = s
    return front


def cost_figure(table: pd.DataFrame, cost: str, palette: dict[str, str]) -> go.Figure | None:
    """Test Dice against ``cost`` (a `COSTS` column), one point per variant, the Pareto front
    dashed; None when fewer than one contender has both."""
    known = table.dropna(subset=[cost, "test Dice"])
    if known.empty:
        return None
    fig = go.Figure()
    for _, row in known.iterrows():
        fig.add_trace(
            go.Scatter(
                x=[row[cost]],
                y=[row["test Dice"]],
                mode="markers+text",
                text=[row["variant"]],
                textposition="top center",
                name=row["variant"],
                marker={"color": palette.get(row["variant"], PALETTE[0]), "size": 12},
            )
        )
    front = pareto_front(known[cost].tolist(), known["test Dice"].tolist(), cost == "train img/s")
    line = known.iloc[front].sort_values(cost)
    fig.add_trace(
        go.Scatter(
            x=line[cost],
            y=line["test Dice"],
            mode="lines",
            name="Pareto front",
            line={"dash": "dash", "color": "gray"},
        )
    )
    fig.update_layout(
        title=f"Test Dice against {COSTS[cost]}",
        xaxis_title=COSTS[cost],
        yaxis_title="mean test Dice",
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def distribution_figure(contenders: list[Contender], palette: dict[str, str]) -> go.Figure | None:
    """Per-image test Dice of each contender: a box with every image as a point."""
    fig = go.Figure()
    for c in contenders:
        if c.per_image is None:
            continue
        fig.add_trace(
            go.Box(
                y=c.per_image.scores["dice"],
                name=c.label,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker={"color": palette[c.label], "size": 4},
                text=c.per_image.images,
                hovertemplate="%{text}: Dice %{y:.3f}<extra></extra>",
            )
        )
    if not fig.data:
        return None
    fig.update_layout(
        title="Dice of every test image",
        yaxis_title="Dice",
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def disagreements(contenders: list[Contender], count: int = DISAGREEMENTS) -> pd.DataFrame:
    """The ``count`` test images where the contenders' Dice spreads widest (max - min), one
    column per contender; empty with fewer than two scored contenders."""
    scored = _scored(contenders)
    images = common_images([c for c, _ in scored])
    if len(scored) < 2 or not images:
        return pd.DataFrame()
    frame = pd.DataFrame(
        {c.label: _aligned(scores, images, "dice") for c, scores in scored}, index=images
    )
    frame.insert(0, "spread", frame.max(axis=1) - frame.min(axis=1))
    top = frame.sort_values("spread", ascending=False).head(count)
    return top.rename_axis("image").reset_index()


@dataclass(frozen=True)
class Column:
    """One panel of the side-by-side view: its title, its picture and the Dice against the
    truth (None without a truth)."""

    title: str
    picture: np.ndarray
    dice: float | None


def side_by_side_columns(
    image: np.ndarray,
    truth: np.ndarray | None,
    predictions: dict[str, np.ndarray],
) -> list[Column]:
    """Image, truth (when known) and one overlay per model's mask, each with its Dice."""
    from segcore.inference.visualize import mask_to_rgb, overlay

    columns = [Column("image", image, None)]
    if truth is not None:
        columns.append(Column("truth", mask_to_rgb(truth), None))
    for label, mask in predictions.items():
        dice = binary_scores(truth, mask)["dice"] if truth is not None else None
        columns.append(Column(label, overlay(image, mask, truth=truth), dice))
    return columns
