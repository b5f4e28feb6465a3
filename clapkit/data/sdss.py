"""The real SDSS catalog shipped with kcorrect: 10,000 main-sample galaxies with spec-z.

kcorrect's test file ``data/test/gst_tests_small.fits`` holds ugriz model and Petrosian
fluxes (nanomaggies) with inverse variances, Galactic extinction, spectroscopic
redshifts and 2MASS JHK magnitudes. :func:`sdss_catalog` turns it into a GalaxySet
catalog with magnitudes in the SDSS convention, without dropping any galaxy.

Magnitudes are SDSS asinh magnitudes ("luptitudes", Lupton, Gunn & Szalay 1999), the
convention of SDSS ``modelMag``: they stay finite for zero and negative fluxes, which
Pogson magnitudes do not, and equal Pogson magnitudes for bright galaxies.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Column, Table

from clapkit.data.galaxyset import GalaxySet

__all__ = [
    "ASINH_SOFTENING",
    "SDSS_BANDS",
    "SDSS_COLUMNS",
    "SFD_R_COEFFICIENT",
    "CatalogColumn",
    "asinh_magnitude",
    "asinh_magnitude_error",
    "kcorrect_sdss_path",
    "sdss_catalog",
]

SDSS_BANDS = ("u", "g", "r", "i", "z")
# Softening parameters b of the SDSS asinh magnitudes, in maggies (Stoughton et al. 2002).
ASINH_SOFTENING = {"u": 1.4e-10, "g": 0.9e-10, "r": 1.2e-10, "i": 1.8e-10, "z": 7.4e-10}
# A_r / E(B-V) for SFD98 dust with the coefficients SDSS uses (u: 5.155, r: 2.751).
SFD_R_COEFFICIENT = 2.751
_TWOMASS_BANDS = ("j", "h", "k")
_NANOMAGGY_IN_MAGGIES = 1e-9
_POGSON = 2.5 / np.log(10.0)


def asinh_magnitude(flux: np.ndarray, softening: float) -> np.ndarray:
    """SDSS asinh magnitude of a flux in nanomaggies.

    ``m = -2.5/ln(10) * (asinh(f / 2b) + ln b)`` with ``f`` in maggies.

    Parameters
    ----------
    flux : array-like
        Flux in nanomaggies (any sign).
    softening : float
        The band's softening parameter ``b`` in maggies (see ``ASINH_SOFTENING``).

    Examples
    --------
    >>> import numpy as np
    >>> m = asinh_magnitude(np.array([1000.0, 0.0, -1.0]), ASINH_SOFTENING["r"])
    >>> np.round(m, 3)  # 1000 nmgy is 15 mag; zero flux stays finite
    array([15.   , 24.802, 27.119])
    """
    f = np.asarray(flux, dtype=np.float64) * _NANOMAGGY_IN_MAGGIES
    return -_POGSON * (np.arcsinh(f / (2.0 * softening)) + np.log(softening))


def asinh_magnitude_error(flux: np.ndarray, ivar: np.ndarray, softening: float) -> np.ndarray:
    """Error of an SDSS asinh magnitude from the flux inverse variance.

    ``sigma_m = 2.5/ln(10) * (sigma_f / 2b) / sqrt(1 + (f / 2b)**2)``, with
    ``sigma_f = 1 / sqrt(ivar)``; NaN where ``ivar <= 0`` (no measurement).

    Parameters
    ----------
    flux : array-like
        Flux in nanomaggies.
    ivar : array-like
        Inverse variance of the flux in nanomaggies**-2.
    softening : float
        The band's softening parameter ``b`` in maggies.

    Examples
    --------
    >>> import numpy as np
    >>> err = asinh_magnitude_error(np.array([1000.0, 1000.0]), np.array([1e-2, 0.0]), 1.2e-10)
    >>> np.round(err, 4)  # 1% flux error is about 0.0109 mag; no ivar -> NaN
    array([0.0109,    nan])
    """
    f = np.asarray(flux, dtype=np.float64) * _NANOMAGGY_IN_MAGGIES
    ivar = np.asarray(ivar, dtype=np.float64)
    valid = ivar > 0
    sigma = np.full(ivar.shape, np.nan)
    sigma[valid] = _NANOMAGGY_IN_MAGGIES / np.sqrt(ivar[valid])
    x = f / (2.0 * softening)
    return _POGSON * sigma / (2.0 * softening) / np.sqrt(1.0 + x**2)


def kcorrect_sdss_path() -> Path:
    """Path of kcorrect's ``gst_tests_small.fits`` (10,000 SDSS galaxies).

    Examples
    --------
    >>> kcorrect_sdss_path().name
    'gst_tests_small.fits'
    """
    import kcorrect  # imported here: only this function needs the package

    return Path(kcorrect.__file__).parent / "data" / "test" / "gst_tests_small.fits"


@functools.lru_cache(maxsize=1)
def _read_columns() -> dict[str, np.ndarray]:
    """Read the file once; arrays are native float64 and read-only, so the cache stays intact."""
    table = Table.read(kcorrect_sdss_path(), format="fits")
    columns = {}
    for name in table.colnames:
        array = np.array(table[name], dtype=np.float64)
        array.setflags(write=False)
        columns[name] = array
    return columns


def _description(text: str) -> str:
    return f"{text} (kcorrect data/test/gst_tests_small.fits)"


@dataclass(frozen=True)
class CatalogColumn:
    """One column of :func:`sdss_catalog`: where it comes from and what it means.

    Attributes
    ----------
    name : str
        The column's name in the catalog.
    sources : tuple of str
        The kcorrect file's columns it is computed from, in the order ``transform`` takes
        them.
    transform : callable
        Source arrays to the column's values.
    unit : astropy unit or None
        None for dimensionless columns (ids, redshifts, flags).
    description : str
        What the column holds; the catalog's description adds the source file.
    band : int or None
        Index into the sources' band axis (ugriz), or None to pass whole columns.
    """

    name: str
    sources: tuple[str, ...]
    transform: Callable[..., np.ndarray]
    unit: u.UnitBase | None
    description: str
    band: int | None = None

    def compute(self, raw: Mapping[str, np.ndarray]) -> Column:
        """The column from the kcorrect file's columns ``raw``."""
        arrays = [raw[s] if self.band is None else raw[s][:, self.band] for s in self.sources]
        return Column(
            self.transform(*arrays), unit=self.unit, description=_description(self.description)
        )


def _magnitude_columns(band: str, k: int) -> list[CatalogColumn]:
    """Model and Petrosian asinh magnitudes of one band, extinction corrected, with errors."""
    b = ASINH_SOFTENING[band]
    columns = []
    for prefix, source, kind in (
        ("mag", "MODELFLUX", "model"),
        ("petromag", "PETROFLUX", "Petrosian"),
    ):
        columns += [
            CatalogColumn(
                f"{prefix}_{band}",
                (source, "EXTINCTION"),
                lambda flux, extinction, b=b: asinh_magnitude(flux, b) - extinction,
                u.mag,
                f"SDSS {kind} asinh magnitude in {band} (b = {b:.1e}), corrected for Galactic "
                "extinction",
                band=k,
            ),
            CatalogColumn(
                f"{prefix}err_{band}",
                (source, f"{source}_IVAR"),
                lambda flux, ivar, b=b: asinh_magnitude_error(flux, ivar, b),
                u.mag,
                f"error of {prefix}_{band}; NaN where the inverse variance is <= 0",
                band=k,
            ),
        ]
    return columns


def _twomass_columns(band: str) -> list[CatalogColumn]:
    """A 2MASS magnitude and its error, NaN where the file has no measurement."""
    mag, err = f"{band.upper()}_M_EXT", f"{band.upper()}_MSIG_EXT"
    return [
        CatalogColumn(
            f"twomass_{band}",
            (mag,),
            lambda m: np.where(m == 0, np.nan, m),
            u.mag,
            f"2MASS extended-source {band.upper()} magnitude (Vega); NaN where invalid",
        ),
        CatalogColumn(
            f"twomass_{band}_err",
            (mag, err),
            # an error of 0 is no measurement either (714 H-band rows have a magnitude but
            # no error)
            lambda m, e: np.where((m == 0) | (e <= 0), np.nan, e),
            u.mag,
            f"error of twomass_{band}; NaN where missing or 0",
        ),
    ]


def _catalog_columns() -> tuple[CatalogColumn, ...]:
    bands = list(enumerate(SDSS_BANDS))
    return (
        CatalogColumn(
            "id",
            ("Z",),
            lambda z: np.arange(1, z.size + 1, dtype=np.int64),
            None,
            "row number (1-based) of the galaxy in the kcorrect file",
        ),
        CatalogColumn("ra", ("RA",), np.array, u.deg, "right ascension (J2000)"),
        CatalogColumn("dec", ("DEC",), np.array, u.deg, "declination (J2000)"),
        CatalogColumn("z", ("Z",), np.array, None, "SDSS spectroscopic redshift"),
        *(column for k, band in bands for column in _magnitude_columns(band, k)),
        *(
            column
            for k, band in bands
            for column in (
                CatalogColumn(
                    f"modelflux_{band}",
                    ("MODELFLUX",),
                    np.array,
                    u.nanomaggy,
                    f"SDSS model flux in {band}, not corrected for extinction",
                    band=k,
                ),
                CatalogColumn(
                    f"modelflux_ivar_{band}",
                    ("MODELFLUX_IVAR",),
                    np.array,
                    u.nanomaggy**-2,
                    f"inverse variance of modelflux_{band}",
                    band=k,
                ),
            )
        ),
        *(
            CatalogColumn(
                f"extinction_{band}",
                ("EXTINCTION",),
                np.array,
                u.mag,
                f"Galactic extinction A_{band} (SFD98)",
                band=k,
            )
            for k, band in bands
        ),
        CatalogColumn(
            "ebv",
            ("EXTINCTION",),
            lambda extinction_r: extinction_r / SFD_R_COEFFICIENT,
            u.mag,
            f"E(B-V) = extinction_r / {SFD_R_COEFFICIENT} (SFD98 coefficient for r)",
            band=SDSS_BANDS.index("r"),
        ),
        *(column for band in _TWOMASS_BANDS for column in _twomass_columns(band)),
        CatalogColumn(
            "flux_ok",
            ("MODELFLUX", "MODELFLUX_IVAR"),
            lambda flux, ivar: np.all((flux > 0) & (ivar > 0), axis=1),
            None,
            "all five model fluxes and their inverse variances are > 0",
        ),
    )


#: Every column of :func:`sdss_catalog`, in order: the one place to read what it holds.
SDSS_COLUMNS = _catalog_columns()


def _counts(raw: Mapping[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Non-positive fluxes and invalid 2MASS entries per band, for the catalog's meta."""
    counts: dict[str, dict[str, int]] = {}
    for source in ("MODELFLUX", "PETROFLUX"):
        for key, values in ((source, raw[source]), (f"{source}_IVAR", raw[f"{source}_IVAR"])):
            counts[f"n_nonpositive_{key.lower()}"] = {
                band: int(np.count_nonzero(values[:, k] <= 0)) for k, band in enumerate(SDSS_BANDS)
            }
    mags = {band: raw[f"{band.upper()}_M_EXT"] for band in _TWOMASS_BANDS}
    errs = {band: raw[f"{band.upper()}_MSIG_EXT"] for band in _TWOMASS_BANDS}
    counts["n_invalid_2mass"] = {b: int(np.count_nonzero(mags[b] == 0)) for b in _TWOMASS_BANDS}
    counts["n_invalid_2mass_err"] = {
        b: int(np.count_nonzero((mags[b] == 0) | (errs[b] <= 0))) for b in _TWOMASS_BANDS
    }
    return counts


def sdss_catalog() -> GalaxySet:
    """The 10,000 real SDSS main-sample galaxies shipped with kcorrect, as a GalaxySet.

    Every galaxy is kept. Columns (each with units and a description; :data:`SDSS_COLUMNS`
    says how each is computed):

    - ``id`` (1..N, the row number in the kcorrect file), ``ra``, ``dec`` (deg), ``z``;
    - ``mag_<b>``, ``magerr_<b>`` for b in ugriz: model asinh magnitudes, corrected for
      Galactic extinction; ``petromag_<b>``, ``petromagerr_<b>`` likewise from the
      Petrosian fluxes; errors are NaN where the inverse variance is <= 0;
    - ``modelflux_<b>``, ``modelflux_ivar_<b>``: the measured model fluxes (nanomaggies,
      not extinction corrected) and their inverse variances, for SED fitting;
    - ``extinction_<b>`` (mag) and ``ebv`` = ``extinction_r / 2.751``;
    - ``twomass_<j,h,k>`` and ``twomass_<j,h,k>_err`` (2MASS extended-source Vega
      magnitudes), NaN where the file has 0 (no measurement);
    - ``flux_ok``: all five model fluxes and inverse variances are positive.

    ``meta`` records the source file and the counts of non-positive fluxes and invalid
    2MASS entries per band.

    Examples
    --------
    >>> gs = sdss_catalog()
    >>> len(gs), gs.meta["n_nonpositive_modelflux"]["u"]
    (10000, 12)
    >>> bool(abs(gs.catalog["ebv"][0] * 2.751 - gs.catalog["extinction_r"][0]) < 1e-9)
    True
    """
    raw = _read_columns()
    table = Table(
        [column.compute(raw) for column in SDSS_COLUMNS], names=[c.name for c in SDSS_COLUMNS]
    )
    meta = {
        "source": {
            "file": "gst_tests_small.fits",
            "package": "kcorrect",
            "path_in_package": "data/test/gst_tests_small.fits",
            "kcorrect_version": importlib.metadata.version("kcorrect"),
        },
        "description": (
            "10,000 real SDSS main-sample galaxies with spectroscopic redshifts, ugriz model and "
            "Petrosian fluxes, Galactic extinction and 2MASS JHK, shipped with kcorrect. "
            "Magnitudes are SDSS asinh magnitudes corrected for extinction; nothing is dropped."
        ),
        "n_galaxies": len(table),
        **_counts(raw),
        "n_flux_ok": int(np.count_nonzero(table["flux_ok"])),
    }
    return GalaxySet(table, meta=meta)
