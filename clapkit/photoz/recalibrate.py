"""CLAP's recalibration: reweight a PDF by the PIT distribution of its neighbourhood.

If the truths of galaxies like this one have PIT density g(u) under their PDFs, the
calibrated density is p′(z) ∝ p(z) · g(F(z)): the PDF is reweighted where the truths
actually fall. CLAP estimates g from the local PIT histogram of the chosen neighbours
(kept by :class:`~clapkit.photoz.AdaptiveKNN`) smoothed by a second-order polynomial.
A flat histogram leaves the PDF unchanged.

The published code (``CLAP_knn_recalibration.py``) evaluates g at the CDF at each bin's
*upper edge* (``cumsum(p)``); ``cdf_at="centre"`` evaluates it at the bin's mid-CDF,
``cumsum(p) − p/2``, the value a truth inside the bin has on average (and the one the
training PITs use, ties counting one half). Both clip negative values of the polynomial
to zero, which the published code does not (a negative probability has no meaning).
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError
from clapkit.metrics import check_edges, check_pdfs


def fit_pit_polynomial(pit_hist: ArrayLike, degree: int = 2) -> NDArray[np.float64]:
    """Least-squares polynomials of PIT density against PIT, one per row.

    Parameters
    ----------
    pit_hist : array_like, shape (N, n_bins)
        PIT histograms on equal bins of [0, 1] as fractions (rows sum to 1).
    degree : int
        Polynomial degree (2 in CLAP).

    Returns
    -------
    ndarray, shape (N, degree + 1)
        Coefficients, lowest order first: g(u) = Σ c_j u^j.

    Examples
    --------
    >>> np.abs(fit_pit_polynomial(np.full((1, 10), 0.1))).round(6)  # flat: g(u) = 1
    array([[1., 0., 0.]])
    """
    hist = np.asarray(pit_hist, dtype=np.float64)
    if hist.ndim != 2 or hist.shape[1] < degree + 1:
        raise ValidationError(
            f"pit_hist must have shape (N, n_bins >= {degree + 1}), got {hist.shape}"
        )
    sums = hist.sum(axis=1)
    bad = ~np.isfinite(sums) | (np.abs(sums - 1) > 1e-3) | np.any(hist < 0, axis=1)
    if np.any(bad):
        raise ValidationError(
            f"pit_hist rows must be non-negative fractions summing to 1; row {int(np.flatnonzero(bad)[0])} is not"
        )
    n_bins = hist.shape[1]
    centers = (np.arange(n_bins) + 0.5) / n_bins
    vandermonde = centers[:, None] ** np.arange(degree + 1)[None, :]  # (n_bins, degree + 1)
    # One pseudo-inverse serves every row: the design matrix is the same for all.
    return (np.linalg.pinv(vandermonde) @ (hist * n_bins).T).T


#: Where :func:`recalibrate` evaluates the PIT polynomial: at each bin's upper edge (as
#: published) or at its centre.
CDF_POINTS = ("edge", "centre")


def recalibrate(
    p: ArrayLike,
    edges: ArrayLike,
    pit_hist: ArrayLike,
    degree: int = 2,
    cdf_at: str = "edge",
) -> NDArray[np.float64]:
    """Reweight PDFs by the polynomial fit of their local PIT histograms.

    Parameters
    ----------
    p : array_like, shape (N, B)
        Raw PDFs.
    edges : array_like, shape (B + 1,)
    pit_hist : array_like, shape (N, n_bins)
        Local PIT histogram of each galaxy (fractions).
    degree : int
    cdf_at : {"edge", "centre"}
        Evaluate g at the CDF at each bin's upper edge (published) or at its centre.

    Returns
    -------
    ndarray, shape (N, B)
        p′ ∝ p · max(g(F), 0), renormalised. A galaxy
        whose weights vanish on all its support keeps its raw PDF (a warning counts them).

    Examples
    --------
    >>> p = np.array([[0.25, 0.25, 0.25, 0.25]])
    >>> rising = np.array([[0.1, 0.2, 0.3, 0.4]])  # truths fall high in their PDFs
    >>> recalibrate(p, [0, 1, 2, 3, 4], rising, cdf_at="centre").round(3)
    array([[0.1, 0.2, 0.3, 0.4]])
    >>> recalibrate(p, [0, 1, 2, 3, 4], rising).round(3)  # g read at F = 0.25 ... 1
    array([[0.125, 0.208, 0.292, 0.375]])
    """
    if cdf_at not in CDF_POINTS:
        raise ValidationError(f"cdf_at must be one of {CDF_POINTS}, got {cdf_at!r}")
    p = check_pdfs(p, edges)
    check_edges(edges, p.shape[1])
    coeffs = fit_pit_polynomial(pit_hist, degree)
    if coeffs.shape[0] != p.shape[0]:
        raise ValidationError(f"pit_hist has {coeffs.shape[0]} rows for {p.shape[0]} PDFs")
    cdf = np.cumsum(p, axis=1)  # (N, B), at each bin's upper edge
    if cdf_at == "centre":
        cdf = cdf - 0.5 * p
    weight = np.zeros_like(cdf)
    for power in range(degree, -1, -1):  # Horner's rule
        weight = weight * cdf + coeffs[:, power : power + 1]
    reweighted = p * np.maximum(weight, 0.0)
    totals = reweighted.sum(axis=1)
    empty = totals <= 0
    if np.any(empty):
        warnings.warn(
            f"{int(empty.sum())} galaxies have a PIT polynomial that vanishes on their support; "
            "they keep their raw PDFs",
            UserWarning,
            stacklevel=2,
        )
        reweighted[empty] = p[empty]
        totals[empty] = reweighted[empty].sum(axis=1)
    return reweighted / totals[:, None]
