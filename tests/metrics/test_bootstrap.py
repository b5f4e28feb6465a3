"""Bootstrap intervals over galaxies: checked on a distribution whose answer is known."""

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.metrics.bootstrap import (
    bootstrap_draws,
    bootstrap_interval,
    intervals_overlap,
    percentile_interval,
)


def test_interval_of_the_mean_of_standard_normal_samples():
    n = 2000
    x = np.random.default_rng(3).normal(size=n)
    lo, hi = bootstrap_interval(np.mean, x, n_resamples=1000, seed=1)
    # Covers the true mean, and is as wide as the normal theory says: 2 × 1.96 / √n.
    assert lo < 0.0 < hi
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(n), rel=0.1)
    # A 68% interval is about half as wide.
    lo68, hi68 = bootstrap_interval(np.mean, x, n_resamples=1000, confidence=0.68, seed=1)
    assert hi68 - lo68 == pytest.approx(2 * 1.0 / np.sqrt(n), rel=0.1)


def test_the_same_seed_gives_the_same_draws_and_intervals():
    x = np.random.default_rng(4).normal(size=300)
    assert np.array_equal(bootstrap_draws(300, 50, seed=7), bootstrap_draws(300, 50, seed=7))
    assert not np.array_equal(bootstrap_draws(300, 50, seed=7), bootstrap_draws(300, 50, seed=8))
    first = bootstrap_interval(np.median, x, n_resamples=200, seed=7)
    assert bootstrap_interval(np.median, x, n_resamples=200, seed=7) == first
    assert bootstrap_interval(np.median, x, n_resamples=200, seed=8) != first


def test_arrays_are_resampled_together():
    x = np.arange(50.0)
    # The same indices for both arrays: x - x is always 0.
    assert bootstrap_interval(lambda a, b: np.mean(a - b), x, x.copy(), n_resamples=50) == (
        0.0,
        0.0,
    )
    with pytest.raises(ValidationError, match="differ in length"):
        bootstrap_interval(np.mean, x, x[:-1])


def test_percentile_interval_leaves_out_nan_and_keeps_infinity():
    assert percentile_interval([np.nan, 1.0, 2.0, 3.0], confidence=0.5) == (1.5, 2.5)
    assert percentile_interval([np.inf, np.inf]) == (np.inf, np.inf)
    lo, hi = percentile_interval([np.nan, np.nan])
    assert np.isnan(lo) and np.isnan(hi)
    with pytest.raises(ValidationError, match="confidence"):
        percentile_interval([1.0, 2.0], confidence=1.5)


def test_overlap():
    assert intervals_overlap((0, 1), (1, 2)) and not intervals_overlap((0, 1), (1.01, 2))
