"""Per-neighbourhood statistics of the local tests: residuals, weighted correlations,
predictive efficiency, latent-distance weights and coarse latent cells.

Every function here works on many neighbourhoods at once: a variable's values in them
are an array of shape (C, k), one row per neighbourhood (``values[members]`` for a
``members`` array of row indices).

What the published code does (``InterpretSM_res_causal.py`` of
github.com/QiufanLin/InterpretSM, commit 4d3b8f9):

- ``compute_corr`` (lines 7–27) is a Pearson correlation per neighbourhood, optionally
  weighted: the means, variances and covariance are weighted sums. Its callers pass no
  weights (lines 162 and 169 call ``get_corr`` with the default ``weights=0``), and
  ``InterpretSM_knn.py`` finds neighbours by mean squared latent distance (its lines
  51–55) without computing any weight, so the publication leaves the weights undefined.
  :func:`distance_weights` therefore supplies latent-distance weights, a Gaussian kernel
  (our choice, see there).
- ``get_pred_efficiency`` (lines 99–119) is the fraction of the variance of y within a
  neighbourhood that a quadratic fit on x explains, (var y − var residual) / var y;
  conditioned on z (lines 166–170) it is taken between the residuals of y and x after
  each is regressed quadratically on z (``compute_2ndregress``, lines 61–95).
  :func:`predictive_efficiency` computes the same quantity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.photoz.inputs import check_matrix
from clapkit.photoz.neighbours import NeighbourIndex

__all__ = [
    "correlation_with",
    "distance_weights",
    "latent_cells",
    "local_design",
    "local_residuals",
    "predictive_efficiency",
    "project_out",
    "weighted_correlation",
]

#: Entries of the reduced QR factors held at once (chunk of centres × k × p), ~32 MB.
_FRAME_VALUES = 4_000_000


def weighted_correlation(
    x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Pearson correlation of ``x`` and ``y`` in each row, optionally weighted.

    With weights w the means, variances and covariance are the w-weighted ones, as in
    the published ``compute_corr``; equal weights give the ordinary correlation.

    Parameters
    ----------
    x, y : array_like, shape (C, k)
        Values of the two variables in each of C neighbourhoods.
    weights : array_like, shape (C, k), optional
        Non-negative weight of each member, at least one positive per row.

    Returns
    -------
    ndarray of float64, shape (C,)
        0 in a row where either variable has no (weighted) variance.

    Raises
    ------
    ValidationError
        On mismatched shapes or negative, non-finite or all-zero weights in a row.

    Examples
    --------
    >>> x = [[1.0, 2.0, 3.0, 4.0]]
    >>> y = [[1.0, 3.0, 2.0, 5.0]]
    >>> r = weighted_correlation(x, y)
    >>> bool(np.isclose(r[0], np.corrcoef(x[0], y[0])[0, 1]))
    True
    >>> bool(np.isclose(weighted_correlation(x, y, [[2.0, 2.0, 2.0, 2.0]])[0], r[0]))
    True
    >>> weighted_correlation(x, y, [[1.0, 1.0, 1.0, 0.0]]).round(3).tolist()
    [0.5]
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.shape != x.shape:
        raise ValidationError(f"x and y must both have shape (C, k), got {x.shape} and {y.shape}")
    w = _check_weights(weights, x.shape)
    w = w / w.sum(axis=1, keepdims=True)
    dx = x - np.sum(w * x, axis=1, keepdims=True)
    dy = y - np.sum(w * y, axis=1, keepdims=True)
    sxx, syy = np.sum(w * dx * dx, axis=1), np.sum(w * dy * dy, axis=1)
    sxy = np.sum(w * dx * dy, axis=1)
    # Relative to each row's own scale: a variable constant in a row rounds to ~1e-32 of it.
    ok = (sxx > 1e-24 * np.sum(w * x * x, axis=1)) & (syy > 1e-24 * np.sum(w * y * y, axis=1))
    ok &= (sxx > 0) & (syy > 0)
    r = np.where(ok, sxy / np.sqrt(np.where(ok, sxx * syy, 1.0)), 0.0)
    return np.clip(r, -1.0, 1.0)


def correlation_with(
    y: NDArray[np.float64], weights: NDArray[np.float64] | None = None
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """A function giving the (weighted) correlation of ``y`` (C, k) with any ``x``
    (..., C, k) row by row: what a permutation null evaluates many times, with the parts
    that depend on ``y`` alone computed once. It agrees with :func:`weighted_correlation`.

    Examples
    --------
    >>> y = np.array([[1.0, 3.0, 2.0, 5.0]])
    >>> correlation_with(y)(np.array([[[1.0, 2.0, 3.0, 4.0]]])).shape
    (1, 1)
    """
    w = np.ones_like(y) if weights is None else weights
    w = w / w.sum(axis=1, keepdims=True)
    yc = y - np.sum(w * y, axis=1, keepdims=True)
    syy = np.sum(w * yc * yc, axis=1)
    y_ok = syy > 1e-24 * np.sum(w * y * y, axis=1)

    def correlate(x: NDArray[np.float64]) -> NDArray[np.float64]:
        # Σ w yc = 0, so the weighted mean of x drops out of the covariance.
        sxy = np.sum(w * x * yc, axis=-1)
        sxx_raw = np.sum(w * x * x, axis=-1)
        sxx = sxx_raw - np.sum(w * x, axis=-1) ** 2
        ok = y_ok & (sxx > 1e-24 * sxx_raw) & (sxx > 0)
        r = np.where(ok, sxy / np.sqrt(np.where(ok, sxx * syy, 1.0)), 0.0)
        return np.clip(r, -1.0, 1.0)

    return correlate


def predictive_efficiency(y: ArrayLike, x: ArrayLike) -> NDArray[np.float64]:
    """Fraction of the variance of ``y`` a quadratic fit on ``x`` explains, per row.

    In each neighbourhood y is least-squares fitted by ``a0 + a1 x + a2 x²`` and the
    efficiency is ``(var y − var residual) / var y``, the published
    ``get_pred_efficiency``. It is 1 when y is exactly quadratic in x, and near
    ``2 / (k − 1)`` (the share two random regressors explain by chance) when they are
    independent.

    Parameters
    ----------
    y, x : array_like, shape (C, k)
        The predicted and the predicting variable in each of C neighbourhoods (pass
        residuals after regressing out a conditioning variable for the conditioned
        efficiency, as published).

    Returns
    -------
    ndarray of float64, shape (C,)
        In [0, 1]; 0 in a row where y has no variance (nothing to explain).

    Examples
    --------
    >>> x = np.array([[-2.0, -1.0, 0.0, 1.0, 2.0, 3.0]])
    >>> predictive_efficiency(1 + x - 0.5 * x**2, x).round(6).tolist()
    [1.0]
    >>> predictive_efficiency([[1.0, -1.0, 1.0, -1.0, 1.0, -1.0]], x).round(3).tolist()
    [0.086]
    """
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if y.ndim != 2 or x.shape != y.shape or y.shape[1] < 3:
        raise ValidationError(
            f"y and x must both have shape (C, k) with k >= 3, got {y.shape} and {x.shape}"
        )
    xs = _standardised(x[..., None])[..., 0]
    design = np.stack([np.ones_like(xs), xs, xs**2 - np.mean(xs**2, axis=1, keepdims=True)], -1)
    # The pseudo-inverse copes with an x constant in a row (a rank-deficient design).
    coef = np.linalg.pinv(design) @ y[..., None]  # (C, 3, 1)
    residual = y - (design @ coef)[..., 0]
    dy = y - y.mean(axis=1, keepdims=True)
    var_y = np.sum(dy * dy, axis=1)
    var_res = np.sum((residual - residual.mean(axis=1, keepdims=True)) ** 2, axis=1)
    ok = var_y > 1e-24 * np.sum(y * y, axis=1)
    eff = np.where(ok, (var_y - var_res) / np.where(ok, var_y, 1.0), 0.0)
    return np.clip(eff, 0.0, 1.0)


def distance_weights(
    latent: ArrayLike, members: ArrayLike, centres: ArrayLike
) -> NDArray[np.float64]:
    """Latent-distance weights of each neighbourhood's members: a Gaussian kernel.

    The weight of a member at latent distance d from its centre is
    ``exp(−d² / (2 h²))`` with h the median member distance of that neighbourhood, so
    the centre weighs 1, a typical member about 0.6 and the farthest less. The published
    code accepts weights without defining them (see the module notes); a kernel whose
    width follows the neighbourhood keeps the weights comparable between dense and
    sparse regions of the latent space.

    Parameters
    ----------
    latent : array_like, shape (N, d)
    members : array_like of int, shape (C, k)
        Rows of each neighbourhood's members.
    centres : array_like of int, shape (C,)
        Row of each neighbourhood's centre.

    Returns
    -------
    ndarray of float64, shape (C, k)
        In (0, 1]; all 1 in a neighbourhood whose members all sit on the centre.

    Examples
    --------
    >>> latent = np.array([[0.0], [1.0], [2.0]])
    >>> distance_weights(latent, [[0, 1, 2]], [0]).round(3).tolist()
    [[1.0, 0.607, 0.135]]
    """
    x = check_matrix(latent, "latent")
    members = np.asarray(members, dtype=np.int64)
    centres = np.asarray(centres, dtype=np.int64)
    if members.ndim != 2 or centres.shape != (members.shape[0],):
        raise ValidationError(
            f"members must be (C, k) and centres (C,), got {members.shape} and {centres.shape}"
        )
    d = np.empty(members.shape)
    # A chunk of neighbourhoods at a time: the member coordinates (C, k, dim) of a whole
    # large sample would not fit.
    chunk = max(1, _FRAME_VALUES // max(1, members.shape[1] * x.shape[1]))
    for start in range(0, members.shape[0], chunk):
        part = slice(start, start + chunk)
        d[part] = np.linalg.norm(x[members[part]] - x[centres[part]][:, None, :], axis=2)
    h = np.median(d, axis=1, keepdims=True)
    return np.where(h > 0, np.exp(-0.5 * (d / np.where(h > 0, h, 1.0)) ** 2), 1.0)


def latent_cells(
    latent: ArrayLike, cell_size: int, seed: int | np.random.Generator = 0
) -> NDArray[np.int64]:
    """A coarse partition of the sample by latent position: the cell of each galaxy.

    ``N // cell_size`` galaxies drawn at random (seeded) become cell seeds and every
    galaxy joins the cell of its nearest seed (Voronoi cells), so the cells hold about
    ``cell_size`` galaxies each and follow the density of the latent space. Permuting a
    variable within these cells keeps its coarse dependence on the latent position.

    Parameters
    ----------
    latent : array_like, shape (N, d)
    cell_size : int
        Mean cell size, at least 2.
    seed : int or numpy.random.Generator

    Returns
    -------
    ndarray of int64, shape (N,)
        Cell labels 0 .. N // cell_size − 1.

    Examples
    --------
    >>> labels = latent_cells(np.arange(100.0)[:, None], 10, seed=0)
    >>> int(labels.max()) + 1, bool(np.all(np.diff(labels[np.argsort(labels, kind="stable")]) >= 0))
    (10, True)
    """
    x = check_matrix(latent, "latent")
    cell_size = check_int(cell_size, "cell_size", 2)
    n = x.shape[0]
    n_cells = max(1, n // cell_size)
    seeds = np.random.default_rng(seed).choice(n, n_cells, replace=False)
    return NeighbourIndex(x[seeds]).search(x, 1)[:, 0].astype(np.int64)


def local_design(
    members: NDArray[np.int64], regressors: Sequence[tuple[NDArray[np.float64], bool]]
) -> NDArray[np.float64]:
    """Each neighbourhood's regression design (C, k, p): an intercept and the regressors.

    ``regressors`` are ``(values (N,) or (N, m), quadratic)`` pairs; a quadratic one
    enters with the square of each of its columns (centred in the neighbourhood first,
    which spans the same space as the raw square and is far less collinear with it).
    Columns are standardised within each neighbourhood so the QR sees comparable sizes.

    Examples
    --------
    >>> z = np.arange(6.0)
    >>> local_design(np.array([[0, 1, 2, 3], [2, 3, 4, 5]]), [(z, True)]).shape
    (2, 4, 3)
    """
    n_c, k = members.shape
    parts = [np.ones((n_c, k, 1))]
    for reg, quadratic in regressors:
        local = reg[members]  # (C, k) or (C, k, m)
        local = local[..., None] if local.ndim == 2 else local  # (C, k, m)
        columns = [_standardised(local)]
        if quadratic:
            columns.append(_standardised(columns[0] ** 2))
        parts.extend(columns)
    return np.concatenate(parts, axis=2)


def local_residuals(
    members: NDArray[np.int64],
    variables: Sequence[NDArray[np.float64]],
    regressors: Sequence[tuple[NDArray[np.float64], bool]],
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64] | None]:
    """Each variable's least-squares residual on :func:`local_design`, per neighbourhood.

    Returns the residuals (C, k) each, and the orthonormal basis (C, k, p) of the
    design's column space (None without regressors, when the residual is the value
    minus its neighbourhood mean), so that the residual of any other variable ``v`` is
    ``v − Q (Qᵀ v)``. A regressor constant in a neighbourhood leaves an arbitrary extra
    direction in Q; the residual then merely loses a degree of freedom, as in the frame
    of :func:`clapkit.interpret.local_tests._local_coordinates`.

    Examples
    --------
    >>> z = np.arange(6.0)
    >>> (res,), q = local_residuals(np.array([[0, 1, 2, 3, 4, 5]]), [1 + 2 * z], [(z, False)])
    >>> bool(np.allclose(res, 0)), q.shape
    (True, (1, 6, 2))
    """
    values = [v[members] for v in variables]
    if not regressors:
        return [v - v.mean(axis=1, keepdims=True) for v in values], None
    design = local_design(members, regressors)
    n_c, k, p = design.shape
    q = np.empty_like(design)
    chunk = max(1, _FRAME_VALUES // (k * p))
    for start in range(0, n_c, chunk):
        q[start : start + chunk] = np.linalg.qr(design[start : start + chunk])[0]
    return [project_out(q, v) for v in values], q


def project_out(q: NDArray[np.float64] | None, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """``values`` (..., C, k) minus their projection on the bases ``q`` (C, k, p); minus
    their row mean when ``q`` is None.

    Examples
    --------
    >>> project_out(None, np.array([[1.0, 2.0, 6.0]])).tolist()
    [[-2.0, -1.0, 3.0]]
    """
    if q is None:
        return values - values.mean(axis=-1, keepdims=True)
    # Batched matrix products: several times faster than the equivalent einsum here.
    coef = np.matmul(values[..., None, :], q)  # (..., C, 1, p)
    return values - np.matmul(q, np.swapaxes(coef, -1, -2))[..., 0]


def _standardised(local: NDArray[np.float64]) -> NDArray[np.float64]:
    """Columns (C, k, m) centred and scaled within each neighbourhood."""
    local = local - local.mean(axis=1, keepdims=True)
    scale = np.sqrt(np.mean(local**2, axis=1, keepdims=True))
    return local / np.where(scale > 0, scale, 1.0)


def _check_weights(weights: ArrayLike | None, shape: tuple[int, ...]) -> NDArray[np.float64]:
    if weights is None:
        return np.ones(shape)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != shape:
        raise ValidationError(f"weights must have shape {shape}, got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValidationError("weights must be finite and non-negative")
    empty = np.flatnonzero(w.sum(axis=1) <= 0)
    if empty.size:
        raise ValidationError(f"weights are all zero in {empty.size} rows, first {empty[:5]}")
    return w
