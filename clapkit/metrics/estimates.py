"""Point estimates and quantiles of binned PDFs."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError
from clapkit.metrics import _kernels
from clapkit.metrics.pdf import check_edges, check_pdfs

POINT_KINDS = ("mean", "median", "mode")


def quantile(p: ArrayLike, edges: ArrayLike, q: ArrayLike) -> NDArray[np.float64]:
    """Inverse CDF of each PDF at levels ``q``, linear inside bins.

    Parameters
    ----------
    p : array_like, shape (N, B)
    edges : array_like, shape (B + 1,)
    q : float or array_like, shape (Q,)
        Levels in [0, 1].

    Returns
    -------
    ndarray, shape (N,) for scalar ``q``, else (N, Q)

    Examples
    --------
    >>> quantile([[0.5, 0.5]], [0.0, 1.0, 2.0], [0.25, 0.5, 1.0])
    array([[0.5, 1. , 2. ]])
    """
    p = check_pdfs(p, edges)
    edges = check_edges(edges, p.shape[1])
    q_arr = np.atleast_1d(np.asarray(q, dtype=np.float64))
    if q_arr.ndim != 1 or np.any(~((q_arr >= 0) & (q_arr <= 1))):
        raise ValidationError(f"quantile levels must lie in [0, 1], got {q}")
    order = np.argsort(q_arr)
    out = np.empty((p.shape[0], q_arr.size), dtype=np.float64)
    _kernels.quantiles(p, edges, np.ascontiguousarray(q_arr[order]), out)
    out[:, order] = out.copy()
    return out[:, 0] if np.ndim(q) == 0 else out


def point_estimate(p: ArrayLike, edges: ArrayLike, kind: str = "mean") -> NDArray[np.float64]:
    """One redshift per galaxy from its PDF.

    Parameters
    ----------
    kind : {"mean", "median", "mode"}
        ``mean``: Σ p_b × centre_b (the CLAP convention). ``median``: the 0.5 quantile,
        linear inside the bin. ``mode``: centre of the densest bin (probability divided
        by width, so uneven bins are handled), the first one on ties.

    Returns
    -------
    ndarray, shape (N,)

    Examples
    --------
    >>> point_estimate([[0.2, 0.8]], [0.0, 1.0, 2.0], "mean")
    array([1.3])
    >>> point_estimate([[0.2, 0.8]], [0.0, 1.0, 2.0], "mode")
    array([1.5])
    """
    p = check_pdfs(p, edges)
    return _point_estimate(p, check_edges(edges, p.shape[1]), kind)


def _point_estimate(p, edges, kind):
    """Point estimate of already validated PDFs."""
    centers = 0.5 * (edges[1:] + edges[:-1])
    if kind == "mean":
        # Matrix-vector product in the dtype of p: no float64 copy of a float32 array.
        return (p @ centers.astype(p.dtype)).astype(np.float64)
    if kind == "median":
        out = np.empty((p.shape[0], 1), dtype=np.float64)
        _kernels.quantiles(p, edges, np.array([0.5]), out)
        return out[:, 0]
    if kind == "mode":
        return centers[np.argmax(p / np.diff(edges).astype(p.dtype), axis=1)]
    raise ValidationError(f"kind must be one of {POINT_KINDS}, got {kind!r}")
