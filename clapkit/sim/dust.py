"""Dust: Galactic extinction per band, and inclination-dependent attenuation in disks.

Galactic extinction uses the Gordon et al. (2023) average Milky Way law (R_V = 3.1, from
``dust_extinction``, valid from the far-UV to 32 µm, so WISE W3 is covered) integrated
through each band's response, and the Schlafly & Finkbeiner (2011) recalibration of SFD
reddening, E(B−V)_true = 0.86 E(B−V)_SFD. Catalog ``ebv`` values are SFD values.

Disk attenuation follows the usual inclination law of spiral galaxies, A = γ log10(1/q)
(Giovanelli et al. 1994; Tully et al. 1998), with the wavelength dependence of Charlot &
Fall (2000), A_λ ∝ λ^-0.7, evaluated at the rest-frame wavelength.
"""

from __future__ import annotations

import functools

import astropy.units as u
import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.sim.disk_cache import disk_cached
from clapkit.sim.seds import BAND_SETS, without_kcorrect_file_warnings

#: SFD E(B−V) overestimates the true reddening by 14% (Schlafly & Finkbeiner 2011).
SF11_RECALIBRATION = 0.86
#: Charlot & Fall (2000) slope of the effective attenuation curve.
ATTENUATION_SLOPE = 0.7
V_BAND_ANGSTROM = 5500.0


def _response(name: str):
    import kcorrect.response

    responses = kcorrect.response.ResponseDict()
    without_kcorrect_file_warnings(responses.load_response, name)
    return responses[name]


@functools.lru_cache(maxsize=8)
@disk_cached
def extinction_coefficients(band_set: str) -> NDArray[np.float64]:
    """A_band / E(B−V)_SFD for each band of a band set (flat-f_ν source).

    Examples
    --------
    >>> r = extinction_coefficients("sdss")
    >>> bool(np.all(np.diff(r) < 0))  # bluer bands are extinguished more
    True
    """
    from dust_extinction.parameter_averages import G23

    law = G23(Rv=3.1)
    lo, hi = (1.0 / x for x in law.x_range[::-1])  # µm
    coefficients = []
    for name in BAND_SETS[band_set]:
        response = _response(name)
        wave = np.asarray(response.wave, dtype=np.float64)  # Å
        weight = np.asarray(response.response, dtype=np.float64)
        inside = (wave / 1e4 > lo) & (wave / 1e4 < hi) & (weight > 0)
        # Photon-counting response on a flat f_ν source: weight ∝ R(λ) / λ per dλ.
        w = weight[inside] / wave[inside]
        a_over_av = law(wave[inside] * u.AA)
        transmission = np.trapezoid(w * 10 ** (-0.4 * a_over_av), wave[inside]) / np.trapezoid(
            w, wave[inside]
        )
        # Per unit A_V; then A_V = R_V E(B−V).
        a_v_per_mag = -2.5 * np.log10(transmission)
        coefficients.append(a_v_per_mag * 3.1 * SF11_RECALIBRATION)
    return np.array(coefficients)


def galactic_extinction(ebv_sfd: ArrayLike, band_set: str) -> NDArray[np.float64]:
    """Galactic extinction in magnitudes, shape (N, bands), for SFD reddening values.

    Examples
    --------
    >>> galactic_extinction([0.0, 0.1], "sdss").shape
    (2, 5)
    """
    ebv = np.atleast_1d(np.asarray(ebv_sfd, dtype=np.float64))
    return ebv[:, None] * extinction_coefficients(band_set)[None, :]


@functools.lru_cache(maxsize=8)
@disk_cached
def effective_wavelengths(band_set: str) -> NDArray[np.float64]:
    """Effective wavelength of each band in Å (kcorrect's ``lambda_eff``)."""
    return np.array([float(_response(name).lambda_eff) for name in BAND_SETS[band_set]])


def disk_attenuation(
    axis_ratio: ArrayLike,
    gamma_v: ArrayLike,
    z: ArrayLike,
    band_set: str,
    mean_log_inverse_q: float,
) -> NDArray[np.float64]:
    """Extra attenuation of disk light (mag, shape (N, bands)) relative to an average disk.

    A_V = γ_V [log10(1/q) − <log10(1/q)>]: an edge-on disk is dimmer and redder than the
    average, a face-on one brighter and bluer. The SEDs come from fits to real galaxies
    seen at random inclinations, so only the difference to the population mean is added.
    Scaled to each band as (λ_rest / 5500 Å)^-0.7.

    Parameters
    ----------
    axis_ratio : array, shape (N,)
        Projected axis ratio q of each disk.
    gamma_v : array, shape (N,)
        V-band attenuation per dex of 1/q (mag).
    z : array, shape (N,)
        Redshifts, which move each band's rest-frame wavelength.
    band_set : str
        A band set of :data:`clapkit.sim.seds.BAND_SETS` (``"sdss"``, ``"cfhtls"``, ...).
    mean_log_inverse_q : float
        <log10(1/q)> of the population, the inclination the SEDs already include.

    Returns
    -------
    numpy.ndarray, shape (N, bands)
    """
    q = np.asarray(axis_ratio, dtype=np.float64)
    a_v = np.asarray(gamma_v, dtype=np.float64) * (np.log10(1.0 / q) - mean_log_inverse_q)
    rest = (
        effective_wavelengths(band_set)[None, :] / (1.0 + np.asarray(z, dtype=np.float64))[:, None]
    )
    return a_v[:, None] * (rest / V_BAND_ANGSTROM) ** (-ATTENUATION_SLOPE)
