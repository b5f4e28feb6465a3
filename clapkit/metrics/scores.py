"""Proper scores of PDFs against true redshifts."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.metrics import _kernels
from clapkit.metrics.pdf import check_inputs


def _crps(p, edges, z):
    """CRPS of already validated inputs."""
    out = np.empty(p.shape[0], dtype=np.float64)
    _kernels.crps(p, edges, z, out)
    return out


def crps(p: ArrayLike, edges: ArrayLike, z_true: ArrayLike) -> NDArray[np.float64]:
    """Continuous ranked probability score, one value per galaxy (lower is better).

    CRPS = ∫ (F(z) - H(z - z_true))² dz, with H the unit step. It is computed exactly for
    a piecewise-uniform density: the CDF is linear inside each bin, so each bin adds
    ``w (a² + ab + b²) / 3`` for the CDF rising from ``a`` to ``b`` over width ``w``, with
    the bin that holds the truth split there. Outside the grid the PDF is zero. The CRPS
    has the units of redshift and reduces to |z_phot - z_true| for a delta function.

    Parameters
    ----------
    p : array_like, shape (N, B)
    edges : array_like, shape (B + 1,)
    z_true : array_like, shape (N,)

    Returns
    -------
    ndarray, shape (N,)

    Examples
    --------
    A uniform PDF on [0, 1] and a truth at 0.5 give ∫ min(z, 1-z)² dz = 1/12:

    >>> crps([[1.0]], [0.0, 1.0], [0.5])
    array([0.08333333])
    """
    return _crps(*check_inputs(p, edges, z_true))


def crps_gaussian(mean: ArrayLike, sigma: ArrayLike, z_true: ArrayLike) -> NDArray[np.float64]:
    """Closed-form CRPS of Gaussian predictions (Gneiting et al. 2005), per galaxy.

    CRPS = σ [y (2Φ(y) - 1) + 2φ(y) - 1/√π] with y = (z_true - μ)/σ. The reference that
    :func:`crps` converges to for finely discretised Gaussians.

    Examples
    --------
    >>> round(float(crps_gaussian(0.0, 1.0, 0.0)[0]), 6)
    0.233695
    """
    from scipy import stats

    mean, sigma, z = np.broadcast_arrays(
        np.atleast_1d(np.asarray(mean, dtype=np.float64)),
        np.atleast_1d(np.asarray(sigma, dtype=np.float64)),
        np.atleast_1d(np.asarray(z_true, dtype=np.float64)),
    )
    y = (z - mean) / sigma
    return sigma * (y * (2 * stats.norm.cdf(y) - 1) + 2 * stats.norm.pdf(y) - 1 / np.sqrt(np.pi))
