"""Non-detections in catalog photometry: replaced explicitly, as RAIL does, or refused.

Survey catalogs mark a band where a galaxy was not detected with a sentinel magnitude (99,
−99, 999) or a mask, and NaN where nothing was measured. None of these is a magnitude: a
network or a KNN that reads 99 as a magnitude puts the galaxy in a place of colour space
no galaxy occupies (on the SDSS catalog, outliers rise from 3% to 37% on such rows).

With a :class:`Nondetections` policy (``clapkit train --nondetect 99 --mag-limits
u=22.0,...``) a non-detected magnitude becomes its band's limiting magnitude and its error
1.0 mag, the convention of RAIL's estimators (``nondetect_val``, ``mag_limits``; the
error value is that of ``FlexZBoost``): "fainter than the limit, badly measured". A
non-detection is a value within 0.01 of the sentinel, a masked entry or NaN.

Without a policy, catalog columns holding sentinel-like values (|m| ≥ 90) or masked
entries are refused with a message naming the column and what to do; NaN is refused as
before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from astropy.table import Table
from numpy.typing import NDArray

from clapkit.errors import ValidationError

#: No photometric quantity reaches this in absolute value; catalogs' sentinels do.
SENTINEL_ABOVE = 90.0
#: RAIL's tolerance when comparing with the sentinel (``np.isclose(..., atol=0.01)``).
SENTINEL_TOLERANCE = 0.01
#: The error given to a replaced magnitude (RAIL's FlexZBoost).
NONDETECT_ERROR = 1.0
MAG_PREFIX, ERR_PREFIX = "mag_", "magerr_"


@dataclass(frozen=True)
class Nondetections:
    """How non-detected magnitudes are replaced.

    Attributes
    ----------
    value : float
        The catalog's sentinel (RAIL's ``nondetect_val``), e.g. 99.
    mag_limits : dict of str to float
        The limiting magnitude of each ``mag_<band>`` column that has non-detections.

    Examples
    --------
    >>> t = Table({"mag_u": [21.0, 99.0], "magerr_u": [0.1, 99.0], "mag_g": [20.0, 19.0]})
    >>> clean = Nondetections(99.0, {"mag_u": 22.5}).apply(t, ["mag_u", "magerr_u", "mag_g"])
    >>> clean["mag_u"].tolist(), clean["magerr_u"].tolist()
    ([21.0, 22.5], [0.1, 1.0])
    """

    value: float
    mag_limits: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not np.isfinite(self.value):
            raise ValidationError(f"the non-detection value must be finite, got {self.value}")
        for column, limit in self.mag_limits.items():
            if not column.startswith(MAG_PREFIX):
                raise ValidationError(f"a magnitude limit names a mag_* column, got {column!r}")
            if not (np.isfinite(limit) and abs(limit) < SENTINEL_ABOVE):
                raise ValidationError(
                    f"magnitude limit of {column} must be a magnitude, got {limit}"
                )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"value": float(self.value), "mag_limits": dict(self.mag_limits)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Nondetections | None:
        """Inverse of :meth:`to_dict` (None stays None)."""
        if data is None:
            return None
        return cls(float(data["value"]), {k: float(v) for k, v in data["mag_limits"].items()})

    def missing(self, values: NDArray, mask: NDArray | None) -> NDArray[np.bool_]:
        """Where a column holds a non-detection: the sentinel, a masked entry or NaN."""
        out = np.isnan(values) | np.isclose(values, self.value, rtol=0, atol=SENTINEL_TOLERANCE)
        return out if mask is None else out | mask

    def apply(self, catalog: Table, columns: Sequence[str], ids: Sequence | None = None) -> Table:
        """A copy of ``catalog`` with the non-detections of ``columns`` replaced.

        Magnitudes (``mag_<band>``) become their limit, errors (``magerr_<band>``) of a
        replaced magnitude, or themselves missing, become :data:`NONDETECT_ERROR`. A
        magnitude column with non-detections and no limit is refused, by name.
        """
        out = catalog.copy(copy_data=True)
        for column in columns:
            if not column.startswith(MAG_PREFIX) or column not in out.colnames:
                continue
            values, mask = _values(out, column)
            gone = self.missing(values, mask)
            if gone.any():
                if column not in self.mag_limits:
                    raise ValidationError(
                        f"column {column} has {int(gone.sum())} non-detections (value "
                        f"{self.value:g}, masked or NaN; first at galaxy id "
                        f"{_first_id(ids, gone)}) and no limit: add {column[len(MAG_PREFIX) :]}="
                        "<limiting magnitude> to --mag-limits"
                    )
                values = values.copy()
                values[gone] = self.mag_limits[column]
            out[column] = values
            error = ERR_PREFIX + column[len(MAG_PREFIX) :]
            if error in out.colnames:
                err_values, err_mask = _values(out, error)
                err_gone = gone | self.missing(err_values, err_mask)
                err_values = err_values.copy()
                err_values[err_gone] = NONDETECT_ERROR
                out[error] = err_values
        return out


def parse_mag_limits(text: str | None) -> dict[str, float]:
    """``"u=22.0,g=22.2"`` (or ``mag_u=22.0,...``) as ``{"mag_u": 22.0, "mag_g": 22.2}``.

    Examples
    --------
    >>> parse_mag_limits("u=22.0, mag_g=22.2")
    {'mag_u': 22.0, 'mag_g': 22.2}
    """
    limits: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            limit = float(value)
        except ValueError:
            limit = None
        if not sep or not name or limit is None:
            raise ValidationError(f"--mag-limits takes band=magnitude pairs, got {item.strip()!r}")
        limits[name if name.startswith(MAG_PREFIX) else MAG_PREFIX + name] = limit
    return limits


def check_no_sentinels(catalog: Table, columns: Sequence[str], ids: Sequence | None = None) -> None:
    """Refuse ``columns`` holding masked entries, or photometric ones (``mag`` in the name)
    holding sentinel-like values (|x| ≥ 90).

    Examples
    --------
    >>> check_no_sentinels(Table({"mag_u": [21.0, -99.0]}), ["mag_u"], ids=[7, 8])
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: column mag_u holds 1 value of magnitude >= 90 (-99 at galaxy id 8), a non-detection sentinel rather than a measurement: pass --nondetect -99 with --mag-limits to replace non-detections by the limiting magnitude (as RAIL does), or select the detected galaxies first
    """
    for column in columns:
        if column not in catalog.colnames:
            continue
        values, mask = _values(catalog, column)
        if mask is not None and mask.any():
            raise ValidationError(
                f"column {column} has {int(mask.sum())} masked entries (first at galaxy id "
                f"{_first_id(ids, mask)}); a masked value is no measurement: pass --nondetect "
                "with --mag-limits to replace masked magnitudes by the limit, or select the "
                "galaxies with values first"
            )
        if "mag" not in column.lower():
            continue
        # Infinite values are refused as not finite where the values are read.
        sentinel = np.isfinite(values) & (np.abs(values) >= SENTINEL_ABOVE)
        if sentinel.any():
            first = values[np.flatnonzero(sentinel)[0]]
            raise ValidationError(
                f"column {column} holds {int(sentinel.sum())} value"
                f"{'s' if sentinel.sum() > 1 else ''} of magnitude >= {SENTINEL_ABOVE:g} "
                f"({first:g} at galaxy id {_first_id(ids, sentinel)}), a non-detection sentinel "
                f"rather than a measurement: pass --nondetect {first:g} with --mag-limits to "
                "replace non-detections by the limiting magnitude (as RAIL does), or select "
                "the detected galaxies first"
            )


def _values(catalog: Table, column: str) -> tuple[NDArray[np.float64], NDArray[np.bool_] | None]:
    """A column's values as float64 and its mask (None when it has none)."""
    col = catalog[column]
    mask = np.asarray(col.mask, dtype=bool) if getattr(col, "mask", None) is not None else None
    values = np.array(np.ma.getdata(col), dtype=np.float64)
    if mask is not None and mask.shape != values.shape:
        mask = np.broadcast_to(mask, values.shape).copy()
    return values, mask


def _first_id(ids: Sequence | None, where: NDArray[np.bool_]) -> Any:
    row = int(np.flatnonzero(where)[0])
    return ids[row] if ids is not None else f"(row {row})"
