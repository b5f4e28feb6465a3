"""Validation of what every estimator takes: feature/latent matrices and training redshifts."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from clapkit.errors import ValidationError


def check_matrix(
    values: ArrayLike, name: str, n_columns: int | None = None, dtype: DTypeLike = np.float64
) -> NDArray:
    """A finite (N, D) matrix as a C-contiguous array of ``dtype``.

    ``n_columns`` is the width the model was fitted on; a different width is refused.

    Parameters
    ----------
    values : array-like, shape (N, D)
        The matrix.
    name : str
        Its name in error messages.
    n_columns : int, optional
        The width required.
    dtype : dtype
        The returned array's dtype.

    Returns
    -------
    numpy.ndarray, shape (N, D)

    Examples
    --------
    >>> check_matrix([[1.0, 2.0]], "features").shape
    (1, 2)
    """
    x = np.asarray(values)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ValidationError(f"{name} must have shape (N, D), got {x.shape}")
    if n_columns is not None and x.shape[1] != n_columns:
        raise ValidationError(
            f"{name} has {x.shape[1]} dimensions, the model was fitted on {n_columns}"
        )
    bad = ~np.isfinite(x)
    if np.any(bad):
        row, col = np.argwhere(bad)[0]
        raise ValidationError(
            f"{name} is not finite at row {row}, column {col} ({int(bad.sum())} values)"
        )
    return np.ascontiguousarray(x, dtype=dtype)


def check_training_redshifts(
    z: ArrayLike, n: int, edges: NDArray[np.float64], name: str = "z"
) -> NDArray[np.float64]:
    """Training redshifts: shape (n,), finite, and on the output grid (a PDF cannot hold
    a redshift off its bins).

    Parameters
    ----------
    z : array-like, shape (n,)
        The redshifts.
    n : int
        How many are required (one per training row).
    edges : numpy.ndarray, shape (B + 1,)
        The output grid.
    name : str
        Their name in error messages.

    Returns
    -------
    numpy.ndarray, shape (n,)

    Examples
    --------
    >>> check_training_redshifts([0.1, 0.2], 2, np.array([0.0, 0.4]))
    array([0.1, 0.2])
    """
    z = np.asarray(z, dtype=np.float64)
    if z.shape != (n,):
        raise ValidationError(f"{name} must have shape ({n},), got {z.shape}")
    bad = ~np.isfinite(z)
    if np.any(bad):
        raise ValidationError(f"{name} is not finite at index {int(np.flatnonzero(bad)[0])}")
    outside = ~((z >= edges[0]) & (z <= edges[-1]))
    if np.any(outside):
        i = int(np.flatnonzero(outside)[0])
        raise ValidationError(
            f"{int(outside.sum())} values of {name} lie outside the grid [{edges[0]}, {edges[-1]}], "
            f"first at index {i} (z={z[i]}); widen the edges or select the training set"
        )
    return z
