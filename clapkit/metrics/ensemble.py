"""Combining the PDFs of several ensemble members into one."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError
from clapkit.metrics.pdf import check_pdfs

COMBINE_RULES = ("harmonic", "arithmetic")


def combine(list_of_p: Sequence[ArrayLike], how: str = "harmonic") -> NDArray[np.float64]:
    """Combine member PDFs bin by bin and renormalise each row.

    Parameters
    ----------
    list_of_p : sequence of array_like, each shape (N, B)
        PDFs of the ensemble members on the same bins.
    how : {"harmonic", "arithmetic"}
        ``harmonic``: p_H = M / Σ_i 1/p_i (CLAP). It keeps only bins all members support,
        so the combination is narrower than any member where they agree.
        ``arithmetic``: the mean of the members (a deep ensemble), wider than the members.

    Returns
    -------
    ndarray, shape (N, B)

    Notes
    -----
    Zero rule for ``harmonic``: a bin where any member is zero is zero in the combination
    (the limit of M / Σ 1/p_i as one p_i → 0). A galaxy whose members share no bin where
    all are positive has no harmonic mean; its row falls back to the arithmetic mean, and
    a ``UserWarning`` says how many rows did. Smooth the members first (CLAP applies a
    light Gaussian smoothing) to make that rare.

    Examples
    --------
    >>> a = [[0.5, 0.5, 0.0]]
    >>> b = [[0.25, 0.5, 0.25]]
    >>> combine([a, b], "harmonic").round(3)
    array([[0.4, 0.6, 0. ]])
    >>> combine([a, b], "arithmetic")
    array([[0.375, 0.5  , 0.125]])
    """
    if how not in COMBINE_RULES:
        raise ValidationError(f"how must be one of {COMBINE_RULES}, got {how!r}")
    if len(list_of_p) == 0:
        raise ValidationError("combine needs at least one member")
    members = [check_pdfs(p, name=f"member {i}") for i, p in enumerate(list_of_p)]
    shape = members[0].shape
    for i, p in enumerate(members):
        if p.shape != shape:
            raise ValidationError(f"member {i} has shape {p.shape}, member 0 has {shape}")
    arithmetic = np.mean([m.astype(np.float64) for m in members], axis=0)
    if how == "arithmetic":
        return arithmetic / arithmetic.sum(axis=1, keepdims=True)
    inverse_sum = np.zeros(shape, dtype=np.float64)
    any_zero = np.zeros(shape, dtype=bool)
    for p in members:
        zero = p <= 0
        any_zero |= zero
        inverse_sum += np.divide(1.0, p, out=np.zeros(shape, dtype=np.float64), where=~zero)
    harmonic = np.divide(len(members), inverse_sum, out=np.zeros(shape), where=~any_zero)
    totals = harmonic.sum(axis=1)
    empty = totals <= 0
    if np.any(empty):
        warnings.warn(
            f"{int(empty.sum())} of {shape[0]} galaxies have no bin where every member is positive; "
            "their rows use the arithmetic mean",
            UserWarning,
            stacklevel=2,
        )
        harmonic[empty] = arithmetic[empty]
        totals[empty] = harmonic[empty].sum(axis=1)
    return harmonic / totals[:, None]
