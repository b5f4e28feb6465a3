"""Point-estimate statistics of photometric redshifts.

All use the normalised residual δz = (z_phot - z_true) / (1 + z_true). ``delta_z`` returns
one value per galaxy; the others one value per sample.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError

#: Scale factor that makes the median absolute deviation a consistent estimator of the
#: standard deviation of a Gaussian: 1 / Φ⁻¹(3/4).
MAD_TO_SIGMA = 1.4826


def delta_z(z_phot: ArrayLike, z_true: ArrayLike) -> NDArray[np.float64]:
    """Normalised residuals (z_phot - z_true) / (1 + z_true), one per galaxy.

    Examples
    --------
    >>> delta_z([0.11], [0.1])
    array([0.00909091])
    """
    zp = np.asarray(z_phot, dtype=np.float64)
    zt = np.asarray(z_true, dtype=np.float64)
    if zp.shape != zt.shape or zp.ndim != 1:
        raise ValidationError(
            f"z_phot and z_true must be 1-D of equal length, got {zp.shape} and {zt.shape}"
        )
    if zp.size == 0:
        raise ValidationError("z_phot and z_true are empty")
    for name, values in (("z_phot", zp), ("z_true", zt)):
        bad = ~np.isfinite(values)
        if np.any(bad):
            raise ValidationError(f"{name} is not finite at index {int(np.flatnonzero(bad)[0])}")
    if np.any(zt <= -1):
        raise ValidationError("z_true must be > -1")
    return (zp - zt) / (1.0 + zt)


def sigma_mad(z_phot: ArrayLike, z_true: ArrayLike) -> float:
    """Robust scatter: 1.4826 × median |δz - median(δz)|. One value per sample.

    Examples
    --------
    >>> sigma_mad([0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    0.0
    """
    dz = delta_z(z_phot, z_true)
    return float(MAD_TO_SIGMA * np.median(np.abs(dz - np.median(dz))))


def bias(z_phot: ArrayLike, z_true: ArrayLike) -> float:
    """Mean of δz, as in the CLAP paper. One value per sample.

    Examples
    --------
    >>> abs(bias([0.11, 0.09], [0.1, 0.1])) < 1e-12
    True
    """
    return float(np.mean(delta_z(z_phot, z_true)))


def outlier_fraction(z_phot: ArrayLike, z_true: ArrayLike, threshold: float = 0.05) -> float:
    """Fraction of galaxies with |δz| > ``threshold`` (strictly). One value per sample.

    Use 0.05 for SDSS-like data and 0.15 for deeper surveys.

    Examples
    --------
    >>> outlier_fraction([0.1, 0.3], [0.1, 0.1])
    0.5
    """
    if not threshold > 0:
        raise ValidationError(f"threshold must be > 0, got {threshold}")
    return float(np.mean(np.abs(delta_z(z_phot, z_true)) > threshold))
