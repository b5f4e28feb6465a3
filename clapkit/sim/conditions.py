"""Observing conditions of the mock survey: nominal, or varying from galaxy to galaxy.

``observing="fixed"`` (the default) observes every galaxy with the nominal PSF FWHM and
sky brightness that :mod:`surveycodex` gives per band (:mod:`clapkit.sim.instruments`).
``observing="varying"`` gives each galaxy, per instrument, its own exposure: one
*seeing factor* that multiplies the nominal FWHM of every band, and one *sky offset*
(mag) added to the nominal sky brightness of every band. One factor per exposure, not
per band, because the bands of an SDSS or MegaCam exposure are taken through the same
atmosphere within minutes: a galaxy seen in bad seeing is seen in bad seeing in every
band, and the per-band FWHMs of one galaxy move together (their ratios stay the
nominal ones). Likewise a bright (moonlit) sky brightens every band at once; that the
moon brightens blue bands more is ignored (an assumption).

Distributions (``CONDITIONS``)
------------------------------
Seeing factor: log-normal around 1 (median = surveycodex's nominal FWHM), clipped to
``[low, high]``; sky offset: normal around 0 mag, clipped to ±``sky_clip``.

- SDSS: σ(ln FWHM) = 0.18, factor in [0.65, 1.6] (≈ 0.85–2.1″ in r around the nominal
  1.32″). The SDSS imaging papers (Stoughton et al. 2002, AJ 123, 485; the DR7 paper,
  Abazajian et al. 2009, ApJS 182, 543) quote a median r-band PSF FWHM of ~1.4″ with
  imaging accepted up to ~2″; the 18% scatter and the bounds are our reading of that
  range, **an assumption** not checked against the per-field seeing distribution.
- CFHTLS: σ(ln FWHM) = 0.15, factor in [0.65, 1.5]. MegaCam's queue scheduling kept
  the CFHTLS Wide in good seeing (the CFHTLS T0007 release notes give i-band seeing of
  ~0.5–0.9″ around a median ~0.65″); the scatter and the bounds are **an assumption**.
- Sky: σ = 0.3 mag, clipped to ±0.9 mag, for both instruments: moon phase, airmass and
  zodiacal light move the sky by a few tenths of a magnitude; **an assumption** (not a
  fit to SDSS or CFHTLS sky measurements).

Reproducibility
---------------
The conditions of chunk ``k`` of a survey with seed ``s`` come from a random stream of
their own, ``np.random.default_rng([s, k, 0x0B5E7])``, drawn for every instrument in
:data:`CONDITION_INSTRUMENTS` order whatever stacks are rendered. So ``varying`` uses
exactly the same draws as ``fixed`` for everything else: the same galaxies, the same
unit noise deviates, only scaled by other noise levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clapkit.errors import ValidationError
from clapkit.sim.instruments import Instrument, instrument

__all__ = [
    "CONDITIONS",
    "CONDITION_INSTRUMENTS",
    "OBSERVING",
    "ConditionRange",
    "check_observing",
    "condition_columns",
    "draw_conditions",
    "psf_column",
    "sky_column",
]

#: Observing modes of :func:`clapkit.sim.simulate`.
OBSERVING = ("fixed", "varying")
#: Instruments whose conditions vary (WISE photometry keeps its fixed depths).
CONDITION_INSTRUMENTS = ("sdss", "cfhtls")
_STREAM = 0x0B5E7  # the conditions' own stream key, beside the chunk's other seeds


@dataclass(frozen=True)
class ConditionRange:
    """How an instrument's seeing and sky vary from exposure to exposure.

    Parameters
    ----------
    seeing_sigma : float
        Standard deviation of ln(FWHM / nominal FWHM).
    seeing_low, seeing_high : float
        Bounds of the seeing factor FWHM / nominal FWHM.
    sky_sigma : float
        Standard deviation of the sky-brightness offset, mag per arcsec².
    sky_clip : float
        The offset is clipped to ±``sky_clip`` mag.

    Examples
    --------
    >>> CONDITIONS["sdss"].seeing_low, CONDITIONS["sdss"].seeing_high
    (0.65, 1.6)
    """

    seeing_sigma: float
    seeing_low: float
    seeing_high: float
    sky_sigma: float
    sky_clip: float


#: Per instrument; see the module docstring for where the numbers come from.
CONDITIONS = {
    "sdss": ConditionRange(0.18, 0.65, 1.6, 0.3, 0.9),
    "cfhtls": ConditionRange(0.15, 0.65, 1.5, 0.3, 0.9),
}


def check_observing(observing: str) -> str:
    """Return ``observing`` if it is one of :data:`OBSERVING`, else raise.

    Examples
    --------
    >>> check_observing("varying")
    'varying'
    >>> check_observing("bad")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: observing must be one of ('fixed', 'varying'), got 'bad'
    """
    if not isinstance(observing, str) or observing not in OBSERVING:
        raise ValidationError(f"observing must be one of {OBSERVING}, got {observing!r}")
    return observing


def psf_column(name: str, band: str) -> str:
    """Catalog column of the PSF FWHM (arcsec) of instrument ``name`` in ``band``.

    Examples
    --------
    >>> psf_column("sdss", "r")
    'psf_fwhm_sdss_r'
    """
    return f"psf_fwhm_{name}_{band}"


def sky_column(name: str, band: str) -> str:
    """Catalog column of the sky brightness (mag/arcsec²) of ``name`` in ``band``.

    Examples
    --------
    >>> sky_column("cfhtls", "u")
    'sky_cfhtls_u'
    """
    return f"sky_{name}_{band}"


def condition_columns() -> dict[str, tuple[str, str]]:
    """Unit and description of every condition column, in catalog order.

    Examples
    --------
    >>> info = condition_columns()
    >>> info["psf_fwhm_sdss_r"][0], info["sky_sdss_r"][0], len(info)
    ('arcsec', 'mag / arcsec2', 20)
    """
    info = {}
    for name in CONDITION_INSTRUMENTS:
        for band in instrument(name).band_names:
            info[psf_column(name, band)] = (
                "arcsec",
                f"PSF FWHM of this galaxy's {name} {band} image",
            )
        for band in instrument(name).band_names:
            info[sky_column(name, band)] = (
                "mag / arcsec2",
                f"sky surface brightness (AB) of this galaxy's {name} {band} exposure",
            )
    return info


def draw_conditions(seed: int, chunk: int, size: int) -> dict[str, np.ndarray]:
    """Seeing and sky of ``size`` galaxies of chunk ``chunk``, per instrument and band.

    Parameters
    ----------
    seed : int
        The survey's seed.
    chunk : int
        The chunk's index.
    size : int
        Galaxies in the chunk.

    Returns
    -------
    dict of str to numpy.ndarray
        The :func:`condition_columns`, each of shape ``(size,)``: PSF FWHM in arcsec and
        sky brightness in AB mag per arcsec².

    Examples
    --------
    >>> c = draw_conditions(1, 0, 4)
    >>> c["psf_fwhm_sdss_r"].shape, bool(np.all(c["psf_fwhm_sdss_g"] > c["psf_fwhm_sdss_r"]))
    ((4,), True)
    """
    rng = np.random.default_rng([seed, chunk, _STREAM])
    columns = {}
    for name in CONDITION_INSTRUMENTS:
        spread = CONDITIONS[name]
        seeing = np.clip(
            np.exp(rng.normal(0.0, spread.seeing_sigma, size)),
            spread.seeing_low,
            spread.seeing_high,
        )
        sky = np.clip(rng.normal(0.0, spread.sky_sigma, size), -spread.sky_clip, spread.sky_clip)
        camera = instrument(name)
        for band in camera.bands:
            columns[psf_column(name, band.name)] = band.psf_fwhm * seeing
        for band in camera.bands:
            columns[sky_column(name, band.name)] = band.sky_brightness + sky
    return columns


def per_band(columns: dict[str, np.ndarray], camera: Instrument) -> tuple[np.ndarray, np.ndarray]:
    """PSF FWHM (arcsec) and sky brightness (mag/arcsec²) of ``camera``, each (N, bands).

    Examples
    --------
    >>> fwhm, sky = per_band(draw_conditions(1, 0, 3), instrument("sdss"))
    >>> fwhm.shape, sky.shape
    ((3, 5), (3, 5))
    """
    fwhm = np.column_stack([columns[psf_column(camera.name, b)] for b in camera.band_names])
    sky = np.column_stack([columns[sky_column(camera.name, b)] for b in camera.band_names])
    return fwhm, sky
