"""segcore.scoring.bootstrap: intervals that cover the mean and shrink with more images; paired verdicts
that see a small consistent gain hidden by each image's difficulty."""

from __future__ import annotations

import numpy as np
import pytest

from segcore.scoring.bootstrap import (
    BETTER,
    SAME,
    TOO_FEW,
    WORSE,
    mean_interval,
    paired_comparison,
)


def test_interval_holds_the_mean_and_narrows_with_more_images():
    rng = np.random.default_rng(1)
    few = mean_interval(rng.normal(0.8, 0.1, 20))
    many = mean_interval(rng.normal(0.8, 0.1, 2000))
    assert few.low < few.mean < few.high and few.n == 20
    assert many.high - many.low < (few.high - few.low) / 5
    # the standard error of 2000 draws of sd 0.1 is 0.0022: a 95% interval spans about 4 of them
    assert 0.006 < many.high - many.low < 0.011
    assert many.low < 0.8 < many.high


def test_interval_of_equal_values_is_that_value_and_is_repeatable():
    ci = mean_interval([0.9] * 7)
    assert (ci.mean, ci.low, ci.high) == pytest.approx((0.9, 0.9, 0.9))
    values = np.random.default_rng(2).random(30)
    assert mean_interval(values) == mean_interval(values)  # seeded: the page shows one interval


@pytest.mark.parametrize("bad", [[], [0.5, float("nan")], [float("inf")]])
def test_interval_refuses_no_or_non_finite_values(bad):
    with pytest.raises(ValueError):
        mean_interval(bad)


def test_paired_comparison_sees_a_consistent_gain_the_separate_intervals_hide():
    rng = np.random.default_rng(3)
    difficulty = rng.uniform(0.5, 0.95, 60)  # images differ far more than the models do
    a = difficulty + 0.01 + rng.normal(0, 0.003, 60)
    b = difficulty
    ia, ib = mean_interval(a), mean_interval(b)
    assert ia.low < ib.high  # unpaired, the intervals overlap: they cannot tell
    paired = paired_comparison(a, b)
    assert paired.verdict == BETTER
    assert 0.008 < paired.difference.mean < 0.012
    assert paired_comparison(b, a).verdict == WORSE


def test_paired_comparison_of_noise_is_no_measurable_difference():
    rng = np.random.default_rng(4)
    base = rng.uniform(0.5, 0.95, 60)
    noisy = base + rng.normal(0, 0.02, 60)
    assert paired_comparison(noisy, base).verdict == SAME
    assert paired_comparison(base, base).verdict == SAME  # identical: a zero-width interval at 0


def test_paired_comparison_needs_the_same_images_and_enough_of_them():
    with pytest.raises(ValueError, match="same images"):
        paired_comparison([0.1, 0.2], [0.1])
    assert paired_comparison([0.9, 0.9, 0.9], [0.1, 0.1, 0.1]).verdict == TOO_FEW
