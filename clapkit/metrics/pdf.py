"""Redshift PDFs as bin probabilities on fixed edges: validation and construction.

A set of PDFs is an array ``p`` of shape ``(N, B)``: row ``i`` holds the probability of
galaxy ``i`` in each of ``B`` bins whose edges are ``edges`` (shape ``(B + 1,)``, strictly
increasing). The density is uniform inside a bin. Every metric validates its input with
:func:`check_pdfs`, so no metric is ever computed on an invalid PDF.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from clapkit.errors import ValidationError
from clapkit.metrics import _kernels

#: Largest allowed deviation of a row sum from one before a PDF counts as unnormalised.
#: Loose enough for float32 rows of a few thousand bins, tight enough to catch real errors.
NORM_TOLERANCE = 1e-3


def check_edges(edges: ArrayLike, n_bins: int | None = None) -> NDArray[np.float64]:
    """Validate bin edges: 1-D, finite, strictly increasing, ``n_bins + 1`` long.

    Examples
    --------
    >>> check_edges([0.0, 0.1, 0.2])
    array([0. , 0.1, 0.2])
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise ValidationError(f"edges must be 1-D with at least 2 values, got shape {edges.shape}")
    if not np.all(np.isfinite(edges)):
        raise ValidationError(
            f"edges contain non-finite values at {np.flatnonzero(~np.isfinite(edges))}"
        )
    steps = np.diff(edges)
    if np.any(steps <= 0):
        bad = int(np.flatnonzero(steps <= 0)[0])
        raise ValidationError(
            f"edges must increase strictly; edges[{bad}]={edges[bad]} >= edges[{bad + 1}]={edges[bad + 1]}"
        )
    if n_bins is not None and edges.size != n_bins + 1:
        raise ValidationError(
            f"p has {n_bins} bins, so edges needs {n_bins + 1} values, got {edges.size}"
        )
    return edges


def check_pdfs(
    p: ArrayLike, edges: ArrayLike | None = None, *, normalize: bool = False, name: str = "p"
) -> NDArray[np.floating]:
    """Validate PDFs and return them as a C-contiguous float32/float64 array.

    Checks: 2-D shape, edges matching the number of bins, finite and non-negative values,
    each row summing to one within :data:`NORM_TOLERANCE`. Errors name the first offending
    galaxy (row) and bin.

    Parameters
    ----------
    p : array_like, shape (N, B)
        Probabilities per bin. float32 and float64 are kept as they are (no copy when
        already C-contiguous); other dtypes are converted to float64.
    edges : array_like, shape (B + 1,), optional
        Bin edges, checked against ``p`` when given.
    normalize : bool
        Renormalise rows that do not sum to one instead of raising. A warning says how
        many rows were changed; rows that sum to zero still raise.
    name : str
        Name used in error messages.

    Returns
    -------
    ndarray, shape (N, B)

    Examples
    --------
    >>> check_pdfs([[0.25, 0.75], [1.0, 0.0]], [0.0, 0.1, 0.2]).shape
    (2, 2)
    >>> check_pdfs([[1.0, 1.0]], normalize=True)  # doctest: +SKIP
    UserWarning: p: renormalised 1 of 1 rows that did not sum to 1
    """
    p = np.asarray(p)
    if p.dtype not in (np.float32, np.float64):
        p = p.astype(np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValidationError(f"{name} must have shape (N, B), got {p.shape}")
    if edges is not None:
        check_edges(edges, p.shape[1])
    p = np.ascontiguousarray(p)
    sums = np.empty(p.shape[0], dtype=np.float64)
    negatives = np.empty(p.shape[0], dtype=np.int64)
    _kernels.row_checks(p, sums, negatives)
    nonfinite = ~np.isfinite(sums)
    if np.any(nonfinite):
        row = int(np.flatnonzero(nonfinite)[0])
        col = int(np.flatnonzero(~np.isfinite(p[row]))[0])
        raise ValidationError(
            f"{name} has a non-finite value {p[row, col]} at galaxy {row}, bin {col} "
            f"({int(nonfinite.sum())} galaxies affected)"
        )
    negative = negatives > 0
    if np.any(negative):
        row = int(np.flatnonzero(negative)[0])
        col = int(np.flatnonzero(p[row] < 0)[0])
        raise ValidationError(
            f"{name} has a negative probability {p[row, col]} at galaxy {row}, bin {col} "
            f"({int(negative.sum())} galaxies affected)"
        )
    off = np.abs(sums - 1.0) > NORM_TOLERANCE
    if np.any(off):
        zero = sums <= 0
        if np.any(zero):
            raise ValidationError(
                f"{name} row of galaxy {int(np.flatnonzero(zero)[0])} sums to zero "
                f"({int(zero.sum())} such rows): not a PDF"
            )
        if not normalize:
            row = int(np.flatnonzero(off)[0])
            raise ValidationError(
                f"{name} rows must sum to 1 (±{NORM_TOLERANCE}); galaxy {row} sums to {sums[row]:.6g} "
                f"({int(off.sum())} rows off); pass normalize=True to renormalise"
            )
        p = p.copy()
        p[off] /= sums[off, None].astype(p.dtype)
        warnings.warn(
            f"{name}: renormalised {int(off.sum())} of {p.shape[0]} rows that did not sum to 1",
            UserWarning,
            stacklevel=2,
        )
    return p


def check_truth(z_true: ArrayLike, n: int, name: str = "z_true") -> NDArray[np.float64]:
    """Validate true redshifts: 1-D, length ``n``, finite.

    Truths outside the grid are allowed: the metrics treat the PDF as zero there.

    Examples
    --------
    >>> check_truth([0.1, 0.2], 2)
    array([0.1, 0.2])
    """
    z = np.ascontiguousarray(z_true, dtype=np.float64)
    if z.ndim != 1 or z.size != n:
        raise ValidationError(f"{name} must have shape ({n},), got {z.shape}")
    bad = ~np.isfinite(z)
    if np.any(bad):
        raise ValidationError(
            f"{name} is not finite at index {int(np.flatnonzero(bad)[0])} ({int(bad.sum())} values)"
        )
    return z


def check_inputs(
    p: ArrayLike, edges: ArrayLike, z_true: ArrayLike
) -> tuple[NDArray[np.floating], NDArray[np.float64], NDArray[np.float64]]:
    """Validate the ``(p, edges, z_true)`` triple that every metric takes.

    Examples
    --------
    >>> p, edges, z = check_inputs([[1.0]], [0.0, 1.0], [0.5])
    >>> p.shape, edges.shape, z.shape
    ((1, 1), (2,), (1,))
    """
    p = check_pdfs(p, edges)
    return p, check_edges(edges, p.shape[1]), check_truth(z_true, p.shape[0])


def bin_centers(edges: ArrayLike) -> NDArray[np.float64]:
    """Midpoints of the bins.

    Examples
    --------
    >>> bin_centers([0.0, 0.2, 0.4])
    array([0.1, 0.3])
    """
    edges = check_edges(edges)
    return 0.5 * (edges[1:] + edges[:-1])


def gaussian_pdfs(mean: ArrayLike, sigma: ArrayLike, edges: ArrayLike) -> NDArray[np.float64]:
    """Discretise Gaussians on the grid: exact bin integrals, renormalised to the grid.

    Mass outside the grid is removed and the rest renormalised (a truncated Gaussian), so
    choose edges that hold nearly all the mass when that matters.

    Parameters
    ----------
    mean, sigma : array_like, shape (N,)
        Gaussian parameters per galaxy; ``sigma > 0``.
    edges : array_like, shape (B + 1,)

    Returns
    -------
    ndarray, shape (N, B)

    Examples
    --------
    >>> p = gaussian_pdfs([0.5], [0.1], np.linspace(0, 1, 101))
    >>> round(float(p.sum()), 6), int(p.argmax())
    (1.0, 49)
    """
    edges = check_edges(edges)
    mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
    sigma = np.atleast_1d(np.asarray(sigma, dtype=np.float64))
    if mean.shape != sigma.shape or mean.ndim != 1:
        raise ValidationError(
            f"mean and sigma must be 1-D of equal length, got {mean.shape} and {sigma.shape}"
        )
    if np.any(~(sigma > 0)):
        raise ValidationError(
            f"sigma must be > 0; index {int(np.flatnonzero(~(sigma > 0))[0])} is not"
        )
    cdf = special.ndtr((edges[None, :] - mean[:, None]) / sigma[:, None])
    p = np.diff(cdf, axis=1)
    total = p.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise ValidationError("a Gaussian has no mass on the grid; widen the edges")
    return p / total


def histogram_pdfs(
    samples: ArrayLike, edges: ArrayLike, weights: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Normalised histograms, one per row of ``samples``, on the bins.

    Parameters
    ----------
    samples : array_like, shape (N, K)
        Redshift samples per galaxy (e.g. the spectroscopic redshifts of K neighbours).
        Every sample must fall on the grid: a sample outside it raises, naming the row.
    edges : array_like, shape (B + 1,)
    weights : array_like, shape (N, K), optional
        Non-negative sample weights; each row needs a positive total.

    Returns
    -------
    ndarray, shape (N, B)

    Examples
    --------
    >>> histogram_pdfs([[0.05, 0.15, 0.16, 0.17]], [0.0, 0.1, 0.2])
    array([[0.25, 0.75]])
    """
    edges = check_edges(edges)
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2:
        raise ValidationError(f"samples must have shape (N, K), got {samples.shape}")
    n = samples.shape[0]
    n_bins = edges.size - 1
    outside = ~((samples >= edges[0]) & (samples <= edges[-1]))
    if np.any(outside):
        row, col = np.argwhere(outside)[0]
        raise ValidationError(
            f"sample {samples[row, col]} of galaxy {row} lies outside the grid "
            f"[{edges[0]}, {edges[-1]}] ({int(outside.sum())} samples)"
        )
    index = np.clip(np.searchsorted(edges, samples, side="right") - 1, 0, n_bins - 1)
    flat = (np.arange(n)[:, None] * n_bins + index).ravel()
    if weights is None:
        w = None
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != samples.shape or np.any(~(w >= 0)):
            raise ValidationError(f"weights must be non-negative with shape {samples.shape}")
        w = w.ravel()
    counts = np.bincount(flat, weights=w, minlength=n * n_bins).reshape(n, n_bins)
    totals = counts.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValidationError(
            f"galaxy {int(np.flatnonzero(totals[:, 0] <= 0)[0])} has no weight on the grid"
        )
    return counts / totals
