"""The galaxy types that interpretability summaries are averaged over.

The mock survey has no morphological classification, but every galaxy's rest-frame
u − r colour is known. The colour distribution of SDSS galaxies is bimodal with its
minimum at u − r = 2.22 (Strateva et al. 2001, AJ 122, 1861), which separates the red,
bulge-dominated ("early") from the blue, disk-dominated ("late") population; the mock
ties the bulge fraction to the same colour, so the split is also a morphological one.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from clapkit.errors import ValidationError

#: Rest-frame u − r separating early from late types (Strateva et al. 2001).
U_R_SPLIT = 2.22
GALAXY_TYPES = ("early", "late")


def galaxy_types(catalog: Table, column: str = "restframe_u_r") -> NDArray[np.str_]:
    """Label each galaxy ``"early"`` (u − r ≥ 2.22) or ``"late"``.

    Parameters
    ----------
    catalog : astropy.table.Table
        A catalog with the rest-frame colour column.
    column : str
        Name of the rest-frame u − r column.

    Returns
    -------
    numpy.ndarray of str, shape (N,)

    Raises
    ------
    ValidationError
        If the column is missing or holds NaN.

    Examples
    --------
    >>> galaxy_types(Table({"restframe_u_r": [1.5, 2.6]})).tolist()
    ['late', 'early']
    """
    if column not in catalog.colnames:
        raise ValidationError(
            f"the catalog has no column {column!r}: galaxy types need the rest-frame u - r "
            f"colour (columns: {', '.join(catalog.colnames[:12])}...)"
        )
    colour = np.asarray(catalog[column], dtype=float)
    bad = np.flatnonzero(~np.isfinite(colour))
    if bad.size:
        raise ValidationError(f"column {column!r} is not finite at rows {bad[:5].tolist()}")
    return np.where(colour >= U_R_SPLIT, GALAXY_TYPES[0], GALAXY_TYPES[1])
