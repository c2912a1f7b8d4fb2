"""How sure a test score is: bootstrap intervals over test images, and paired comparisons.

A mean Dice over 60 test images moves by a few thousandths when other images are drawn, so a
0.002 difference between two models says nothing by itself. `mean_interval` resamples the
images (percentile bootstrap) for a 95% interval of the mean; `paired_comparison` resamples the
per-image differences of two models scored on the same images, which cancels how hard each
image is, and says in plain words whether the first model is better, worse, or not measurably
different. Pure numpy; seeded, so a page shows the same interval on every visit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Coverage of every interval.
LEVEL = 0.95
#: Bootstrap resamples per interval.
RESAMPLES = 2000
#: Seed of the resampling.
SEED = 0
#: Fewer paired images than this give no verdict: an interval over two or three differences
#: is the spread of those few numbers, not a statement about the test set.
MIN_PAIRED = 5
BETTER = "better"
SAME = "no measurable difference"
WORSE = "worse"
TOO_FEW = "too few test images to tell"


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and its bootstrap interval [``low``, ``high``]."""

    mean: float
    low: float
    high: float
    n: int

    def text(self, digits: int = 3) -> str:
        """``0.912 [0.897, 0.925]``."""
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class Paired:
    """Model A minus model B on the same images: the mean difference, its interval, a verdict
    about A (`BETTER`, `SAME`, `WORSE`, or `TOO_FEW`)."""

    difference: Interval
    verdict: str


def mean_interval(
    values: np.ndarray | list[float],
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """The mean of ``values`` with its percentile-bootstrap interval at ``level``.

    Raises ValueError for no values or a value that is not a finite number.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no values to bootstrap")
    if not np.isfinite(x).all():
        raise ValueError("values must be finite numbers")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie between 0 and 1, not {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(x.mean()), float(low), float(high), int(x.size))


def paired_comparison(
    a: np.ndarray | list[float],
    b: np.ndarray | list[float],
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Paired:
    """Model A against model B from their scores on the same images, in the same order.

    A is `BETTER` when the whole interval of the mean difference A - B lies above zero, `WORSE`
    when it lies below, else `SAME`; with fewer than `MIN_PAIRED` images, `TOO_FEW`. Raises
    ValueError when the two lists differ in length.
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same images: {a.size} vs {b.size} values")
    difference = mean_interval(a - b, level, resamples, seed)
    if difference.n < MIN_PAIRED:
        verdict = TOO_FEW
    elif difference.low > 0.0:
        verdict = BETTER
    elif difference.high < 0.0:
        verdict = WORSE
    else:
        verdict = SAME
    return Paired(difference, verdict)
