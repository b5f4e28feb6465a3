"""Catalog features for photometry-only estimators, and default redshift grids."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from clapkit.checks import check_int
from clapkit.errors import ValidationError


def photometry_features(
    catalog: Table,
    bands: Sequence[str] = ("u", "g", "r", "i", "z"),
    reference: str = "r",
    prefix: str = "mag_",
) -> tuple[NDArray[np.float64], list[str]]:
    """Colours of adjacent bands plus one reference magnitude, the usual photo-z inputs.

    Colours carry the redshift (the SED shifting through the filters); the reference
    magnitude breaks the colour–redshift degeneracy between faint and bright galaxies.

    Parameters
    ----------
    catalog : astropy.table.Table
        Must hold ``{prefix}{band}`` for every band.
    bands : sequence of str
        Band names in wavelength order.
    reference : str
        Band whose magnitude is kept as a feature.
    prefix : str
        Column-name prefix of the magnitudes.

    Returns
    -------
    features : ndarray, shape (N, len(bands))
    names : list of str
        ``["u-g", "g-r", ..., "mag_r"]``.

    Examples
    --------
    >>> t = Table({"mag_g": [18.0], "mag_r": [17.0], "mag_i": [16.5]})
    >>> x, names = photometry_features(t, bands=("g", "r", "i"))
    >>> x.tolist(), names
    ([[1.0, 0.5, 17.0]], ['g-r', 'r-i', 'mag_r'])
    """
    if reference not in bands:
        raise ValidationError(f"reference band {reference!r} is not among bands {list(bands)}")
    columns = [f"{prefix}{band}" for band in bands]
    missing = [c for c in columns if c not in catalog.colnames]
    if missing:
        raise ValidationError(
            f"catalog lacks magnitude columns {missing}; it has {catalog.colnames}"
        )
    mags = np.column_stack([np.asarray(catalog[c], dtype=np.float64) for c in columns])
    bad = ~np.isfinite(mags)
    if np.any(bad):
        row, col = np.argwhere(bad)[0]
        raise ValidationError(
            f"column {columns[col]} is not finite at row {row} ({int(bad.sum())} values); "
            "select galaxies with valid photometry first"
        )
    colours = mags[:, :-1] - mags[:, 1:]
    names = [f"{a}-{b}" for a, b in itertools.pairwise(bands)]
    features = np.column_stack([colours, mags[:, list(bands).index(reference)]])
    return features, [*names, f"{prefix}{reference}"]


def default_edges(z: NDArray, n_bins: int = 180, z_max: float | None = None) -> NDArray[np.float64]:
    """Evenly spaced bin edges from 0 to ``z_max`` (default: the 99.9th percentile of ``z``,
    rounded up to 0.1).

    The CLAP paper uses 180 bins on 0–0.4 for SDSS.

    Examples
    --------
    >>> default_edges(np.array([0.05, 0.12, 0.33]), n_bins=4)
    array([0. , 0.1, 0.2, 0.3, 0.4])
    """
    if z_max is None:
        z_max = float(np.ceil(np.percentile(np.asarray(z, dtype=np.float64), 99.9) * 10) / 10)
    n_bins = check_int(n_bins, "n_bins")
    if not z_max > 0:
        raise ValidationError(f"z_max must be > 0, got {z_max}")
    return np.linspace(0.0, z_max, n_bins + 1)
