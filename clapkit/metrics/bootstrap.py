"""Bootstrap intervals over galaxies: one set of resamples, reused by every metric.

A bootstrap draw is a set of galaxy indices drawn with replacement; a metric's interval
is the central ``confidence`` range (percentiles) of the metric recomputed on every draw.
:func:`bootstrap_draws` makes the draws once (seeded), so that every metric of a table
row, and every row of a table over the same galaxies, uses the same ones: differences
between rows are then paired, galaxy for galaxy. :func:`percentile_interval` turns the
recomputed values into an interval and :func:`bootstrap_interval` does both for one
statistic of a few arrays.

Why not ``scipy.stats.bootstrap``: it draws its own resamples for each call, so two
metrics (or two models) would be resampled differently and their intervals could not be
paired; here the draws are made once and shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.checks import check_int, check_number
from clapkit.errors import ValidationError

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_RESAMPLES",
    "as_interval",
    "bootstrap_draws",
    "bootstrap_interval",
    "check_confidence",
    "intervals_overlap",
    "percentile_interval",
    "stored_interval",
]

#: Bootstrap draws per interval unless asked otherwise.
DEFAULT_RESAMPLES = 1000
#: Probability covered by an interval unless asked otherwise.
DEFAULT_CONFIDENCE = 0.95


def check_confidence(confidence: float) -> float:
    """``confidence`` as a float strictly between 0 and 1, or a ValidationError.

    Examples
    --------
    >>> check_confidence(0.95)
    0.95
    """
    return check_number(confidence, "confidence", above=0, below=1)


def bootstrap_draws(
    n: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> NDArray[np.intp]:
    """Indices of ``n_resamples`` resamples of ``n`` galaxies, drawn with replacement.

    Parameters
    ----------
    n : int
        Number of galaxies.
    n_resamples : int
        Number of draws.
    seed : int
        Seed of ``np.random.default_rng``: the same seed gives the same draws.

    Returns
    -------
    ndarray of int, shape (n_resamples, n)

    Examples
    --------
    >>> draws = bootstrap_draws(5, n_resamples=3, seed=1)
    >>> draws.shape, bool((draws >= 0).all() and (draws < 5).all())
    ((3, 5), True)
    >>> bool((draws == bootstrap_draws(5, n_resamples=3, seed=1)).all())
    True
    """
    n = check_int(n, "n")
    n_resamples = check_int(n_resamples, "n_resamples")
    seed = check_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n))


def percentile_interval(
    values: ArrayLike, confidence: float = DEFAULT_CONFIDENCE
) -> tuple[float, float]:
    """Central ``confidence`` interval of a statistic's bootstrap values (percentiles).

    Parameters
    ----------
    values : array_like, shape (R,)
        The statistic recomputed on each of R draws. NaN values (a draw where the
        statistic is undefined) are left out; infinite values take part.
    confidence : float
        Probability covered, between 0 and 1.

    Returns
    -------
    (float, float)
        Lower and upper bounds; ``(nan, nan)`` when no value is finite or infinite.

    Examples
    --------
    >>> percentile_interval(np.arange(101.0), confidence=0.5)
    (25.0, 75.0)
    """
    confidence = check_confidence(confidence)
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - confidence) / 2.0
    # "nearest" keeps an interval of infinite values (PSNR of identical images) infinite.
    method = "linear" if np.isfinite(arr).all() else "nearest"
    lo, hi = np.percentile(arr, [tail, 100.0 - tail], method=method)
    return float(lo), float(hi)


def bootstrap_interval(
    statistic: Callable[..., Any],
    *arrays: ArrayLike,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap interval of ``statistic(*arrays)``, resampling the first axis together.

    Parameters
    ----------
    statistic : callable
        Takes the resampled arrays (in order) and returns a number.
    *arrays : array_like
        Arrays of the same length along axis 0 (one row per galaxy), resampled with the
        same indices.
    n_resamples : int
        Number of draws.
    confidence : float
        Probability covered.
    seed : int
        Seed of the draws.

    Returns
    -------
    (float, float)

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=400)
    >>> lo, hi = bootstrap_interval(np.mean, x, n_resamples=500)
    >>> bool(lo < 0 < hi), round(hi - lo, 1)  # ≈ 2 × 1.96 / √400 = 0.2
    (True, 0.2)
    """
    if not arrays:
        raise ValidationError("bootstrap_interval needs at least one array")
    arrs = [np.asarray(a) for a in arrays]
    n = len(arrs[0])
    if any(len(a) != n for a in arrs):
        raise ValidationError(
            f"arrays to resample together differ in length: {[len(a) for a in arrs]}"
        )
    draws = bootstrap_draws(n, n_resamples, seed)
    values = [float(statistic(*(a[index] for a in arrs))) for index in draws]
    return percentile_interval(values, confidence)


def intervals_overlap(a: ArrayLike, b: ArrayLike) -> bool:
    """Whether two intervals ``[lo, hi]`` share at least one point.

    Examples
    --------
    >>> intervals_overlap([0.0, 1.0], [0.5, 2.0]), intervals_overlap([0.0, 1.0], [1.5, 2.0])
    (True, False)
    """
    lo_a, hi_a = (float(v) for v in a)
    lo_b, hi_b = (float(v) for v in b)
    return max(lo_a, lo_b) <= min(hi_a, hi_b)


def as_interval(stored: Any) -> tuple[float, float] | None:
    """A stored ``[lo, hi]`` as floats; None where absent or a bound is null (not finite
    when written).

    Examples
    --------
    >>> as_interval([0.1, 0.2]), as_interval([None, 0.2]), as_interval(None)
    ((0.1, 0.2), None, None)
    """
    if stored is None or len(stored) != 2 or any(v is None for v in stored):
        return None
    return float(stored[0]), float(stored[1])


def stored_interval(row: dict[str, Any], key: str) -> tuple[float, float] | None:
    """The bootstrap interval ``<key>_ci`` of one stored row of metrics, None where absent.

    Absent in results written before intervals existed, computed with no resamples, or
    where a bound is not finite (stored as null).

    Examples
    --------
    >>> stored_interval({"psnr": 30.0, "psnr_ci": [29.5, 30.4]}, "psnr")
    (29.5, 30.4)
    >>> stored_interval({"psnr": 30.0}, "psnr") is None
    True
    """
    return as_interval(row.get(f"{key}_ci"))
