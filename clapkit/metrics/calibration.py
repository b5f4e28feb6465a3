"""Calibration of PDFs: PIT, HPD levels, coverage and uniformity tests.

A set of PDFs is calibrated when the truths look like draws from them. Then the PIT
values are uniform on [0, 1] and every credible interval holds its nominal fraction of
truths. All functions here return one value per galaxy unless said otherwise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from clapkit.errors import ValidationError
from clapkit.metrics import _kernels
from clapkit.metrics.pdf import check_inputs


def _pit(p, edges, z):
    """PIT of already validated inputs."""
    out = np.empty(p.shape[0], dtype=np.float64)
    _kernels.pit(p, edges, z, out)
    return out


def pit(p: ArrayLike, edges: ArrayLike, z_true: ArrayLike) -> NDArray[np.float64]:
    """Probability integral transform: the CDF at the true redshift. One value per galaxy.

    The CDF is linear inside the bin that holds the truth (uniform density per bin); a
    truth below the grid gives 0, above it 1.

    Parameters
    ----------
    p : array_like, shape (N, B)
        Bin probabilities; validated with :func:`~clapkit.metrics.check_pdfs`.
    edges : array_like, shape (B + 1,)
    z_true : array_like, shape (N,)

    Returns
    -------
    ndarray, shape (N,)
        Values in [0, 1]; uniform when the PDFs are calibrated.

    Examples
    --------
    >>> pit([[0.5, 0.5]], [0.0, 1.0, 2.0], [1.5])
    array([0.75])
    """
    return _pit(*check_inputs(p, edges, z_true))


def _hpd_masses(p, edges, z):
    denser = np.empty(p.shape[0], dtype=np.float64)
    equal = np.empty(p.shape[0], dtype=np.float64)
    _kernels.hpd_masses(p, edges, z, denser, equal)
    return denser, equal


def hpd_level(p: ArrayLike, edges: ArrayLike, z_true: ArrayLike) -> NDArray[np.float64]:
    """Credibility of the smallest highest-density region that holds the truth.

    The HPD analogue of the PIT, one value per galaxy: the mass of all bins denser than
    the truth's bin plus half the mass of bins exactly as dense, the truth's own bin
    included (bins of equal density enter an HPD region in no defined order, so the
    truth is placed in their middle). Close to uniform on [0, 1] for calibrated PDFs,
    up to the granularity of the bins; 1 for a truth where the PDF is zero.

    Examples
    --------
    >>> hpd_level([[0.2, 0.8]], [0.0, 1.0, 2.0], [0.5])
    array([0.9])
    """
    denser, equal = _hpd_masses(*check_inputs(p, edges, z_true))
    return np.minimum(denser + 0.5 * equal, 1.0)


def _check_levels(levels: ArrayLike) -> NDArray[np.float64]:
    levels = np.atleast_1d(np.asarray(levels, dtype=np.float64))
    if levels.ndim != 1 or np.any(~((levels > 0) & (levels <= 1))):
        raise ValidationError(f"credibility levels must lie in (0, 1], got {levels}")
    return levels


def coverage_from_pit(pit_values: ArrayLike, levels: ArrayLike) -> NDArray[np.float64]:
    """Central-interval coverage from PIT values. One value per level.

    The central interval of level ``c`` runs between the quantiles ``(1 - c)/2`` and
    ``(1 + c)/2``, so it holds the truth exactly when the PIT lies between them.

    Examples
    --------
    >>> coverage_from_pit([0.1, 0.5, 0.9], [0.5, 0.9])
    array([0.33333333, 1.        ])
    """
    u = np.asarray(pit_values, dtype=np.float64)
    levels = _check_levels(levels)
    lo = (1.0 - levels) / 2.0
    hi = (1.0 + levels) / 2.0
    return np.array([np.mean((u >= a) & (u <= b)) for a, b in zip(lo, hi, strict=True)])


def coverage(
    p: ArrayLike,
    edges: ArrayLike,
    z_true: ArrayLike,
    levels: ArrayLike = (0.68, 0.95),
    kind: str = "central",
) -> NDArray[np.float64]:
    """Fraction of galaxies whose truth lies in the credible region. One value per level.

    Parameters
    ----------
    p : array_like, shape (N, B)
    edges : array_like, shape (B + 1,)
    z_true : array_like, shape (N,)
    levels : array_like
        Credibility levels in (0, 1].
    kind : {"central", "hpd"}
        ``"central"``: the equal-tailed interval between the ``(1-c)/2`` and ``(1+c)/2``
        quantiles; the truth is inside when its PIT lies between those levels.
        ``"hpd"``: the highest-density region (possibly several intervals). Its edge
        usually cuts a group of equally dense bins, and which part of them belongs to
        the region is undefined for a piecewise-uniform density; such a galaxy counts
        with the fraction of that group inside the region (its expected coverage), so a
        level smaller than one bin's mass is not rounded to a whole bin.

    Returns
    -------
    ndarray, shape (len(levels),)
        Equal to ``levels`` for calibrated PDFs; below them for over-confident PDFs.

    Examples
    --------
    >>> coverage([[0.5, 0.5]], [0.0, 1.0, 2.0], [1.0], levels=[0.1, 0.5])
    array([1., 1.])
    """
    if kind == "central":
        return coverage_from_pit(pit(p, edges, z_true), levels)
    if kind == "hpd":
        denser, equal = _hpd_masses(*check_inputs(p, edges, z_true))
        levels = _check_levels(levels)
        inside = [
            np.mean(
                np.clip(
                    np.divide(c - denser, equal, out=(c >= denser) * 1.0, where=equal > 0), 0.0, 1.0
                )
            )
            for c in levels
        ]
        return np.array(inside)
    raise ValidationError(f"kind must be 'central' or 'hpd', got {kind!r}")


#: PIT values are kept this far from 0 and 1 in the Anderson–Darling statistic, whose
#: log terms are infinite at the ends (a truth outside the grid gives PIT 0 or 1).
AD_CLIP = 1e-10


def anderson_darling_uniform(u: ArrayLike) -> float:
    """Anderson–Darling statistic of samples against U(0, 1). One value per sample.

    ``scipy.stats.anderson`` does not offer the uniform distribution, so the textbook
    formula is used, A² = -n - (1/n) Σ (2i - 1) [ln u_(i) + ln(1 - u_(n+1-i))]; it agrees
    with ``scipy.stats.goodness_of_fit(..., statistic="ad")``.

    Examples
    --------
    >>> round(anderson_darling_uniform(np.linspace(0.05, 0.95, 10)), 4)
    0.0766
    """
    u = np.sort(np.clip(np.asarray(u, dtype=np.float64), AD_CLIP, 1.0 - AD_CLIP))
    n = u.size
    i = np.arange(1, n + 1)
    return float(-n - np.mean((2 * i - 1) * (np.log(u) + np.log1p(-u[::-1]))))


def wasserstein_to_uniform(u: ArrayLike) -> float:
    """Exact 1-Wasserstein distance between the empirical distribution of ``u`` and U(0, 1).

    The integral of |F_n(x) - x| over [0, 1], evaluated piece by piece between order
    statistics. One value per sample; 0 is perfect, 0.5 the worst.

    Examples
    --------
    >>> wasserstein_to_uniform([0.5])
    0.25
    """
    u = np.sort(np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0))
    n = u.size
    knots = np.concatenate([[0.0], u, [1.0]])
    a, b = knots[:-1], knots[1:]
    level = np.arange(n + 1) / n
    # |level - x| integrated over [a, b]; split where x crosses level.
    below = level <= a
    above = level >= b
    part = np.where(
        below,
        ((b - level) ** 2 - (a - level) ** 2) / 2,
        np.where(
            above,
            ((level - a) ** 2 - (level - b) ** 2) / 2,
            ((level - a) ** 2 + (b - level) ** 2) / 2,
        ),
    )
    return float(part.sum())


def pit_uniformity(pit_values: ArrayLike) -> dict[str, float]:
    """Uniformity tests of PIT (or HPD-level) values against U(0, 1). One dict per sample.

    Returns
    -------
    dict
        ``ks`` and ``ks_pvalue`` (Kolmogorov–Smirnov, ``scipy.stats.kstest``), ``cvm`` and
        ``cvm_pvalue`` (Cramér–von Mises, ``scipy.stats.cramervonmises``), ``ad``
        (Anderson–Darling, :func:`anderson_darling_uniform`) and ``w1`` (1-Wasserstein
        distance to uniform, :func:`wasserstein_to_uniform`). Small statistics and
        large p-values mean uniform PIT, i.e. calibrated PDFs.

    Examples
    --------
    >>> result = pit_uniformity(np.linspace(0.005, 0.995, 100))
    >>> result["ks"] < 0.01, result["w1"] < 0.01
    (True, True)
    """
    u = np.asarray(pit_values, dtype=np.float64)
    if u.ndim != 1 or u.size < 2:
        raise ValidationError(f"need a 1-D array of at least 2 PIT values, got shape {u.shape}")
    if np.any(~np.isfinite(u)) or np.any((u < 0) | (u > 1)):
        raise ValidationError("PIT values must be finite and lie in [0, 1]")
    ks = stats.kstest(u, "uniform")
    cvm = stats.cramervonmises(u, "uniform")
    return {
        "ks": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
        "cvm": float(cvm.statistic),
        "cvm_pvalue": float(cvm.pvalue),
        "ad": anderson_darling_uniform(u),
        "w1": wasserstein_to_uniform(u),
    }
