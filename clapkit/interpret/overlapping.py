"""The published neighbourhoods: k nearest neighbours around every galaxy, and their nulls.

The authors' ``InterpretSM_res_causal.py`` (github.com/QiufanLin/InterpretSM, commit
4d3b8f9) takes the k_nn = 100 nearest latent neighbours of every galaxy (line 150; found
by ``InterpretSM_knn.py``, lines 51–55), computes the correlation of target and queried
variable in each (``compute_corr``, lines 7–27), and sets against it the correlation
after one random permutation of the queried variable within each neighbourhood
(``get_corr``, lines 31–57; with weights, both variables resampled with replacement in
proportion to the weights and correlated unweighted). The paper compares the two
distributions; no p-value is computed.

Here :func:`overlapping_test` reports that published summary — the per-galaxy
correlations, the per-galaxy permuted ones and their means — and, for a verdict, a
p-value from a null that respects the overlap: the queried variable is permuted among
galaxies of the same coarse latent cell
(:func:`~clapkit.interpret.neighbourhood_stats.latent_cells`), *once for the whole
sample*, and every neighbourhood's correlation is recomputed from that one shuffled
column. Shared members then see the same shuffled values, so the null keeps
the dependence between overlapping neighbourhoods that a separate shuffle per
neighbourhood destroys. :func:`published_null_p` is the p-value a reader would get by
treating the two published distributions as independent samples (Welch's t-test); the
measured false-positive rates of both are in :mod:`clapkit.interpret.local_tests`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from clapkit.errors import ValidationError
from clapkit.interpret.neighbourhood_stats import (
    correlation_with,
    latent_cells,
    project_out,
    weighted_correlation,
)
from clapkit.photoz.inputs import check_matrix
from clapkit.photoz.neighbours import NeighbourIndex

__all__ = ["overlapping_neighbourhoods", "overlapping_test", "published_null_p"]

#: Permuted values held at once (chunk of permutations × galaxies × k), ~16 MB.
_PERM_VALUES = 2_000_000
#: Relative slack when counting permuted statistics at least as large as the observed one.
_TIE = 1e-12


def overlapping_neighbourhoods(latent: ArrayLike, k: int) -> NDArray[np.int64]:
    """The ``k`` nearest latent neighbours of every galaxy, itself included (first).

    The published code searches the neighbours of every galaxy among the training
    galaxies only (``InterpretSM_knn.py``, lines 51–55), so a training galaxy finds
    itself and a test galaxy does not; here they are searched among the galaxies tested,
    and each galaxy's own values always enter its neighbourhood.

    Parameters
    ----------
    latent : array_like, shape (N, d)
    k : int
        Neighbourhood size, ``2 <= k <= N``.

    Returns
    -------
    ndarray of int64, shape (N, k)
        Row i holds galaxy i's neighbours, nearest first.

    Examples
    --------
    >>> overlapping_neighbourhoods(np.array([[0.0], [1.0], [3.0]]), 2).tolist()
    [[0, 1], [1, 0], [2, 1]]
    """
    x = check_matrix(latent, "latent")
    n = x.shape[0]
    if not 2 <= k <= n:
        raise ValidationError(f"k must be in 2..{n} for {n} galaxies, got {k}")
    # Each galaxy is its own first neighbour: the search leaves it out, then it is put
    # first (a duplicate of it elsewhere in the sample stays among the others).
    others = NeighbourIndex(x).search(x, k - 1, exclude=np.arange(n))
    return np.column_stack([np.arange(n), others]).astype(np.int64)


def published_null_p(r: ArrayLike, r_permuted: ArrayLike) -> float:
    """Welch's two-sided t-test of the per-galaxy correlations against the permuted ones.

    What the published comparison of the two distributions would say if their values
    were independent. They are not — overlapping neighbourhoods share most members — so
    this p-value is anti-conservative (see the measured rates in
    :mod:`clapkit.interpret.local_tests`); it is kept to show why it is not used.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(published_null_p(rng.normal(0.3, 0.1, 500), rng.normal(0.0, 0.1, 500)), 6)
    0.0
    """
    r = np.asarray(r, dtype=np.float64)
    r_permuted = np.asarray(r_permuted, dtype=np.float64)
    if r.ndim != 1 or r_permuted.ndim != 1 or r.size < 2 or r_permuted.size < 2:
        raise ValidationError("r and r_permuted must be vectors of at least 2 values")
    if np.ptp(r) == 0 and np.ptp(r_permuted) == 0:
        return 1.0 if r[0] == r_permuted[0] else 0.0
    return float(stats.ttest_ind(r, r_permuted, equal_var=False).pvalue)


def overlapping_test(
    latent: NDArray[np.float64],
    members: NDArray[np.int64],
    res_y: NDArray[np.float64],
    external: NDArray[np.float64],
    q: NDArray[np.float64] | None,
    weights: NDArray[np.float64] | None,
    *,
    cell_size: int,
    n_permutations: int,
    rngs: tuple[np.random.Generator, np.random.Generator, np.random.Generator],
) -> dict[str, object]:
    """The published statistics and the latent-cell permutation p-value of one test.

    Parameters
    ----------
    latent : ndarray, shape (N, d)
        Latent coordinates (they decide the cells).
    members : ndarray of int64, shape (N, k)
        Every galaxy's neighbourhood (:func:`overlapping_neighbourhoods`).
    res_y : ndarray, shape (N, k)
        The target's residual in each neighbourhood.
    external : ndarray, shape (N,)
        The raw queried variable, residualised here after each shuffle.
    q : ndarray, shape (N, k, p), or None
        Orthonormal bases of the regressors in each neighbourhood (None: centring only),
        from :func:`~clapkit.interpret.neighbourhood_stats.local_residuals`.
    weights : ndarray, shape (N, k), or None
        Weights of the members in each correlation.
    cell_size : int
        Mean size of the latent cells the variable is shuffled within.
    n_permutations : int
        Shuffles of the whole sample in the calibrated null.
    rngs : tuple of three numpy.random.Generator
        Seed the cells, the cell permutations and the published single permutation.

    Returns
    -------
    dict
        The :class:`~clapkit.interpret.causal_graph.LocalTestResult` fields it decides:
        ``effect``, ``effect_err``, ``p_value``, ``centre_r``, ``centre_p``,
        ``effect_permuted``, ``centre_r_permuted``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> latent, y, x = rng.normal(size=(200, 1)), rng.normal(size=200), rng.normal(size=200)
    >>> members = overlapping_neighbourhoods(latent, 20)
    >>> res_y = y[members] - y[members].mean(axis=1, keepdims=True)
    >>> out = overlapping_test(latent, members, res_y, x, None, None, cell_size=5,
    ...                        n_permutations=19, rngs=tuple(rng.spawn(3)))
    >>> out["centre_r"].shape, 0 < out["p_value"] <= 1
    ((200,), True)
    """
    cell_rng, perm_rng, published_rng = rngs
    n, k = members.shape
    res_x = project_out(q, external[members])
    r = weighted_correlation(res_x, res_y, weights)
    stat = float(r.mean())

    # The published null: one shuffle of the queried residual per neighbourhood, or with
    # weights both residuals resampled in proportion to them, correlated unweighted.
    if weights is None:
        r_pub = weighted_correlation(published_rng.permuted(res_x, axis=1), res_y)
    else:
        p = weights / weights.sum(axis=1, keepdims=True)
        cdf = np.cumsum(p, axis=1)
        draws = [
            np.take_along_axis(v, _search_rows(cdf, published_rng.random((n, k))), axis=1)
            for v in (res_x, res_y)
        ]
        r_pub = weighted_correlation(*draws)

    # The calibrated null: the raw queried column shuffled within latent cells once per
    # permutation, then every neighbourhood's residual and correlation recomputed.
    cells = latent_cells(latent, cell_size, cell_rng)
    home = np.argsort(cells, kind="stable")
    correlate = correlation_with(res_y, weights)
    null_means = np.empty(n_permutations)
    exceed = np.zeros(n, dtype=np.int64)
    chunk = max(1, _PERM_VALUES // (n * k))
    for start in range(0, n_permutations, chunk):
        b = min(chunk, n_permutations - start)
        shuffled = np.empty((b, n))
        for i in range(b):
            # Sorting by (cell, random key) permutes each cell's values among its rows.
            shuffled[i, home] = external[np.lexsort((perm_rng.random(n), cells))]
        r_perm = correlate(project_out(q, shuffled[:, members]))  # (b, N)
        null_means[start : start + b] = r_perm.mean(axis=1)
        exceed += np.sum(np.abs(r_perm) >= np.abs(r) * (1 - _TIE), axis=0)
    n_exceed = int(np.sum(np.abs(null_means) >= abs(stat) * (1 - _TIE)))
    return {
        "effect": stat,
        "effect_err": float(null_means.std(ddof=1)),
        "p_value": (1 + n_exceed) / (1 + n_permutations),
        "centre_r": r,
        "centre_p": (1 + exceed) / (1 + n_permutations),
        "effect_permuted": float(r_pub.mean()),
        "centre_r_permuted": r_pub,
    }


def _search_rows(cdf: NDArray[np.float64], u: NDArray[np.float64]) -> NDArray[np.int64]:
    """Per row, the index drawn by inverse-CDF sampling of uniforms ``u``."""
    n, k = cdf.shape
    # Row i's CDF shifted by i: one sorted vector, searched once for all rows.
    shift = np.arange(n)[:, None]
    idx = np.searchsorted((cdf + shift).ravel(), (u + shift).ravel(), side="right")
    return np.clip(idx.reshape(n, k) - shift * k, 0, k - 1)
