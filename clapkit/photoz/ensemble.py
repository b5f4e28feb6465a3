"""CLAP's ensemble: lightly smooth each realisation's PDFs, then take the harmonic mean.

Smoothing first matters for the harmonic mean: a bin where any member is zero is zero in
the combination (:func:`clapkit.metrics.combine`), so spiky members would cut each other
to nothing. The published CLAP smooths with a narrow Gaussian and combines ten
realisations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.ndimage import gaussian_filter1d

from clapkit.errors import ValidationError
from clapkit.metrics import check_pdfs, combine


def smooth_pdfs(p: ArrayLike, sigma_bins: float = 1.0) -> NDArray[np.float64]:
    """Gaussian-smooth PDFs along the redshift axis (σ in bins) and renormalise.

    The kernel is truncated at 4σ and mirrored at the grid's ends (``mode="reflect"``),
    so no probability leaves the grid.

    Examples
    --------
    >>> smooth_pdfs([[0.0, 0.0, 1.0, 0.0, 0.0]], sigma_bins=1.0).round(3)
    array([[0.058, 0.242, 0.399, 0.242, 0.058]])
    """
    p = check_pdfs(p).astype(np.float64)
    if not sigma_bins > 0:
        raise ValidationError(f"sigma_bins must be > 0, got {sigma_bins}")
    smoothed = gaussian_filter1d(p, sigma_bins, axis=1, mode="reflect", truncate=4.0)
    return smoothed / smoothed.sum(axis=1, keepdims=True)


def ensemble_pdfs(members: Sequence[ArrayLike], sigma_bins: float = 1.0) -> NDArray[np.float64]:
    """Smooth every member, then combine them with the harmonic mean (CLAP's ensemble).

    Examples
    --------
    >>> a, b = np.zeros((1, 9)), np.zeros((1, 9))
    >>> a[0, 3] = b[0, 5] = 1.0
    >>> p = ensemble_pdfs([a, b])
    >>> int(p.argmax()), round(float(p.sum()), 6)  # between the two spikes, normalised
    (4, 1.0)
    """
    if len(members) == 0:
        raise ValidationError("an ensemble needs at least one member")
    return combine([smooth_pdfs(p, sigma_bins) for p in members], how="harmonic")
