"""Pointwise mutual information of each galaxy, from classifier probabilities and a prior.

For galaxy i with true bin b_i, MI_i = −log p_prior(b_i) + log q_i(b_i): the drop from the
prior's surprise to the classifier's. Pure numpy; the classifiers that give q live in
:mod:`~clapkit.interpret.information.estimator`. All information is in nats.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.checks import check_int
from clapkit.errors import ValidationError

#: Classifier probabilities are floored here before the log: a single zero would make one
#: galaxy's MI −inf and with it every mean; the floor caps that galaxy at ≈ −27.6 nats + its
#: prior surprise, which still dominates a mean as a confidently wrong classifier should.
PROBABILITY_FLOOR = 1e-12
#: How far a row of probabilities (or the prior) may sum from 1: float32 softmaxes over
#: hundreds of bins are off by ~1e-6, an unnormalised histogram by far more.
ROW_SUM_TOLERANCE = 1e-4


def _as_bins(bins: ArrayLike, n_bins: int, name: str) -> NDArray[np.int64]:
    """``bins`` as a 1-d integer array with every value in [0, n_bins)."""
    values = np.asarray(bins)
    if values.ndim != 1:
        raise ValidationError(f"{name} must be 1-d bin indices, got shape {values.shape}")
    if values.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if bad.size:
            raise ValidationError(
                f"{name} must hold integer bin indices; not at indices {bad[:5].tolist()} "
                f"(values {values[bad[:5]].tolist()})"
            )
    elif values.dtype.kind not in "iu":
        raise ValidationError(f"{name} must hold integer bin indices, got dtype {values.dtype}")
    values = values.astype(np.int64)
    bad = np.flatnonzero((values < 0) | (values >= n_bins))
    if bad.size:
        raise ValidationError(
            f"{name} out of range at indices {bad[:5].tolist()} (values "
            f"{values[bad[:5]].tolist()}): expected bin indices in [0, {n_bins - 1}]"
        )
    return values


def _as_distribution(prior: ArrayLike, name: str = "prior") -> NDArray[np.float64]:
    """``prior`` as a 1-d finite, non-negative array summing to 1."""
    values = np.asarray(prior, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValidationError(f"{name} must be a non-empty 1-d array, got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        raise ValidationError(
            f"{name} must be finite and >= 0; not at bins {bad[:5].tolist()} "
            f"(values {values[bad[:5]].tolist()})"
        )
    if abs(values.sum() - 1) > ROW_SUM_TOLERANCE:
        raise ValidationError(f"{name} must sum to 1, sums to {values.sum():.6g}")
    return values


def _as_features(
    features: ArrayLike, name: str, n_features: int | None = None
) -> NDArray[np.float64]:
    """``features`` as a finite (N, F) array; a 1-d array is one feature."""
    x = np.asarray(features, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValidationError(f"{name} must have shape (N,) or (N, F), got {x.shape}")
    if n_features is not None and x.shape[1] != n_features:
        raise ValidationError(
            f"{name} has {x.shape[1]} features; the classifier was trained on {n_features}"
        )
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise ValidationError(f"{name} is not finite in rows {bad[:5].tolist()}")
    return x


def bin_prior(bins: ArrayLike, n_bins: int, *, pseudocount: float = 0.0) -> NDArray[np.float64]:
    """Bin frequencies of a training sample: the prior that pointwise MI is measured from.

    Parameters
    ----------
    bins : array of int, shape (N,)
        Bin index of each training galaxy.
    n_bins : int
    pseudocount : float
        Added to every bin's count before normalising. 0 (as published) leaves bins that
        no training galaxy fell in at probability 0, so a test galaxy in one of them has
        no finite MI and :func:`pointwise_information` refuses it; 0.5 (Krichevsky–
        Trofimov) gives them a small probability when sparse end bins are expected.

    Returns
    -------
    numpy.ndarray, shape (n_bins,)

    Examples
    --------
    >>> bin_prior([0, 0, 1, 3], 4).tolist()
    [0.5, 0.25, 0.0, 0.25]
    >>> bin_prior([0, 0, 1, 3], 4, pseudocount=0.5).round(3).tolist()
    [0.417, 0.25, 0.083, 0.25]
    """
    n_bins = check_int(n_bins, "n_bins")
    values = _as_bins(bins, n_bins, "bins")
    if values.size == 0:
        raise ValidationError("bins is empty: a prior needs at least one training galaxy")
    if not (math.isfinite(pseudocount) and pseudocount >= 0):
        raise ValidationError(f"pseudocount must be finite and >= 0, got {pseudocount}")
    counts = np.bincount(values, minlength=n_bins) + float(pseudocount)
    return counts / counts.sum()


def pointwise_information(
    probabilities: ArrayLike, true_bin: ArrayLike, prior: ArrayLike
) -> NDArray[np.float64]:
    """Each galaxy's MI, −log p_prior(b_i) + log q_i(b_i), in nats.

    Positive where the classifier puts more probability on the true bin than the prior
    does, negative where less (a confidently wrong galaxy). Probabilities below
    :data:`PROBABILITY_FLOOR` are raised to it before the log.

    Parameters
    ----------
    probabilities : array, shape (N, B)
        Each galaxy's classifier probabilities over the B bins (rows sum to 1).
    true_bin : array of int, shape (N,)
    prior : array, shape (B,)
        Bin frequencies of the training sample (:func:`bin_prior`).

    Returns
    -------
    numpy.ndarray, shape (N,)

    Raises
    ------
    ValidationError
        If shapes disagree, a row or the prior is not a distribution (NaN, negative, not
        summing to 1), a bin index is out of range or a true bin has prior 0.

    Examples
    --------
    A perfect classifier gains the prior's surprise; one that returns the prior, nothing:

    >>> prior = np.array([0.5, 0.25, 0.25])
    >>> pointwise_information(np.eye(3)[[0, 2]], [0, 2], prior).round(4).tolist()
    [0.6931, 1.3863]
    >>> pointwise_information(np.tile(prior, (2, 1)), [0, 2], prior).tolist()
    [0.0, 0.0]
    """
    q = np.asarray(probabilities, dtype=float)
    if q.ndim != 2:
        raise ValidationError(
            f"probabilities must have shape (N, B), got {q.shape}; one row per galaxy"
        )
    n, n_bins = q.shape
    p = _as_distribution(prior)
    if p.size != n_bins:
        raise ValidationError(
            f"prior has {p.size} bins but probabilities have {n_bins}; expected the same bins"
        )
    b = _as_bins(true_bin, n_bins, "true_bin")
    if b.size != n:
        raise ValidationError(
            f"true_bin has {b.size} entries but probabilities have {n} rows; "
            "expected one true bin per galaxy"
        )
    bad = np.flatnonzero(~np.isfinite(q).all(axis=1) | (q < 0).any(axis=1))
    if bad.size:
        raise ValidationError(
            f"probabilities must be finite and >= 0; not in rows {bad[:5].tolist()}"
        )
    sums = q.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)
    if bad.size:
        raise ValidationError(
            f"probability rows must sum to 1; rows {bad[:5].tolist()} sum to "
            f"{np.round(sums[bad[:5]], 6).tolist()}"
        )
    bad = np.flatnonzero(p[b] == 0)
    if bad.size:
        raise ValidationError(
            f"galaxies {bad[:5].tolist()} fall in bins {b[bad[:5]].tolist()} that have prior "
            "probability 0 (empty in the training sample), so their MI is infinite; "
            "use bin_prior(..., pseudocount=0.5) or wider bins"
        )
    q_true = np.maximum(q[np.arange(n), b], PROBABILITY_FLOOR)
    return np.log(q_true) - np.log(p[b])
