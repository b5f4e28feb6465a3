"""Catalog photometry of simulated galaxies: component fluxes, errors, noisy magnitudes.

Fluxes of the bulge and the disk in every band come from their kcorrect SEDs at the
galaxy's redshift, dimmed by Milky Way extinction and, for the disk, by its
inclination-dependent dust (:mod:`clapkit.sim.dust`). Flux errors follow each
instrument's noise model — Poisson noise of the source plus the sky within an effective
area of 4π(σ_PSF² + σ_galaxy²) — so catalog errors and image noise agree. WISE has no
image stack here; its errors are those of a sky-limited survey with the AllWISE 5σ
point-source depths (Wright et al. 2010; Cutri et al. 2013), converted to AB.

Magnitudes are asinh magnitudes (Lupton et al. 1999): SDSS's softening parameters for
SDSS bands, b = 1.042 σ_sky for the others, so they stay finite for noisy negative fluxes.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from clapkit.data.sdss import ASINH_SOFTENING, asinh_magnitude
from clapkit.sim.dust import effective_wavelengths, galactic_extinction
from clapkit.sim.instruments import (
    electrons_per_nanomaggy,
    instrument,
    sky_nanomaggies_per_pixel,
    sky_per_pixel,
)
from clapkit.sim.seds import BAND_NAMES, band_fluxes, observed_coeffs

#: AllWISE 5σ point-source depths in Vega mag and the Vega→AB offsets of W1–W3.
WISE_DEPTH_VEGA = {"w1": 16.9, "w2": 16.0, "w3": 11.5}
WISE_VEGA_TO_AB = {"w1": 2.699, "w2": 3.339, "w3": 5.174}
GAUSSIAN_HLR_TO_SIGMA = 1.0 / 1.1774
FWHM_TO_SIGMA = 1.0 / 2.3548
_POGSON = 2.5 / np.log(10.0)


def component_fluxes(
    band_set: str,
    z: NDArray[np.float64],
    bulge_intrinsic: NDArray[np.float64],
    disk_intrinsic: NDArray[np.float64],
    ebv: NDArray[np.float64],
    disk_dust: NDArray[np.float64] | None = None,
    residual: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Observed bulge and disk fluxes in nanomaggies, each (N, bands).

    ``disk_dust`` is the extra disk attenuation in magnitudes, (N, bands), from
    :func:`~clapkit.sim.dust.disk_attenuation`; ``residual`` the SDSS ugriz template-fit
    residuals of the source galaxies, (N, 5), see :func:`residual_in_bands`.

    Parameters
    ----------
    band_set : str
        A band set of :data:`clapkit.sim.seds.BAND_SETS` (``"sdss"``, ``"cfhtls"``, ...).
    z : numpy.ndarray, shape (N,)
        Redshifts.
    bulge_intrinsic, disk_intrinsic : numpy.ndarray, shape (N, 5)
        kcorrect intrinsic coefficients of the bulge and disk SEDs.
    ebv : numpy.ndarray, shape (N,)
        Galactic E(B − V) (mag).
    disk_dust : numpy.ndarray, shape (N, bands), optional
        Extra disk attenuation (mag).
    residual : numpy.ndarray, shape (N, 5), optional
        Template-fit residuals of the source galaxies (mag).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Bulge and disk fluxes, each (N, bands).
    """
    milky_way = 10 ** (-0.4 * galactic_extinction(ebv, band_set))
    if residual is not None:
        milky_way = milky_way * 10 ** (-0.4 * residual_in_bands(residual, band_set))
    bulge = band_fluxes(band_set, z, observed_coeffs(bulge_intrinsic, z)) * milky_way
    disk = band_fluxes(band_set, z, observed_coeffs(disk_intrinsic, z)) * milky_way
    if disk_dust is not None:
        disk = disk * 10 ** (-0.4 * disk_dust)
    return bulge, disk


def residual_in_bands(residual: NDArray[np.float64], band_set: str) -> NDArray[np.float64]:
    """SDSS ugriz fit residuals carried to another band set, (N, bands) in magnitudes.

    Interpolated linearly in observed wavelength between the SDSS bands, so CFHT MegaCam
    bands get the residual of their SDSS neighbours; zero beyond the z band (WISE), where
    no optical residual says anything.

    Examples
    --------
    >>> residual_in_bands(np.array([[0.1, 0.0, 0.0, 0.0, 0.0]]), "wise")
    array([[0., 0., 0.]])
    """
    if band_set == "sdss":
        return residual
    sdss = effective_wavelengths("sdss")
    target = effective_wavelengths(band_set)
    out = np.column_stack([[np.interp(w, sdss, row) for row in residual] for w in target])
    out[:, target > sdss[-1] * 1.2] = 0.0
    return out


def flux_errors(
    band_set: str,
    flux: NDArray[np.float64],
    half_light_radius: NDArray[np.float64],
    psf_fwhm: NDArray[np.float64] | None = None,
    sky_brightness: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """1σ flux errors in nanomaggies, (N, bands), for galaxies of the given size (arcsec).

    Parameters
    ----------
    band_set : str
        ``"sdss"``, ``"cfhtls"`` or ``"wise"``.
    flux : ndarray, shape (N, bands)
        True fluxes, nanomaggies (Poisson noise grows with them).
    half_light_radius : ndarray, shape (N,)
        Sizes, arcsec (a bigger aperture holds more sky).
    psf_fwhm : ndarray, shape (N, bands), optional
        Each galaxy's own PSF FWHM, arcsec (:mod:`clapkit.sim.conditions`); None uses
        the instrument's nominal one.
    sky_brightness : ndarray, shape (N, bands), optional
        Each galaxy's own sky, AB mag per arcsec²; None uses the nominal sky. WISE
        ignores both conditions (fixed depths).

    Returns
    -------
    ndarray, shape (N, bands)

    Examples
    --------
    >>> sigma = flux_errors("sdss", np.array([[100.0] * 5, [1.0] * 5]), np.array([1.0, 1.0]))
    >>> bool(np.all(sigma[0] > sigma[1]))  # brighter sources add Poisson noise
    True
    """
    if band_set == "wise":
        depth_ab = np.array([WISE_DEPTH_VEGA[b] + WISE_VEGA_TO_AB[b] for b in BAND_NAMES["wise"]])
        return np.broadcast_to(10 ** (-0.4 * (depth_ab - 22.5)) / 5.0, flux.shape).copy()
    camera = instrument(band_set)
    sigma = np.empty_like(flux, dtype=np.float64)
    for b, band in enumerate(camera.bands):
        per_nanomaggy = electrons_per_nanomaggy(band)
        if sky_brightness is None:
            sky = sky_nanomaggies_per_pixel(band, camera.pixel_scale)
        else:
            sky = sky_per_pixel(sky_brightness[:, b], camera.pixel_scale)
        fwhm = band.psf_fwhm if psf_fwhm is None else psf_fwhm[:, b]
        area = (
            4
            * np.pi
            * ((fwhm * FWHM_TO_SIGMA) ** 2 + (half_light_radius * GAUSSIAN_HLR_TO_SIGMA) ** 2)
        )
        pixels = area / camera.pixel_scale**2
        sigma[:, b] = np.sqrt(
            np.maximum(flux[:, b], 0.0) / per_nanomaggy + sky * pixels / per_nanomaggy
        )
    return sigma


@functools.lru_cache(maxsize=8)
def softening(band_set: str) -> tuple[float, ...]:
    """Asinh-magnitude softening b (maggies) per band: SDSS's own, else 1.042 σ_sky."""
    if band_set == "sdss":
        return tuple(ASINH_SOFTENING[b] for b in BAND_NAMES["sdss"])
    sky_sigma = flux_errors(band_set, np.zeros((1, len(BAND_NAMES[band_set]))), np.zeros(1))[0]
    return tuple(1.042 * sky_sigma * 1e-9)


def magnitudes(band_set: str, flux: NDArray[np.float64]) -> NDArray[np.float64]:
    """Asinh magnitudes (AB) of fluxes in nanomaggies, (N, bands)."""
    return np.column_stack(
        [asinh_magnitude(flux[:, b], s) for b, s in enumerate(softening(band_set))]
    )


def magnitude_errors(
    band_set: str, flux: NDArray[np.float64], sigma: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Errors of asinh magnitudes for flux errors ``sigma`` (both nanomaggies)."""
    b = np.asarray(softening(band_set))[None, :] / 1e-9  # in nanomaggies
    return _POGSON * sigma / (2 * b) / np.sqrt(1 + (flux / (2 * b)) ** 2)


def observe(
    band_set: str,
    flux: NDArray[np.float64],
    half_light_radius: NDArray[np.float64],
    rng: np.random.Generator,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Noisy fluxes, their asinh magnitudes and magnitude errors, each (N, bands).

    Parameters
    ----------
    band_set : str
        A band set of :data:`clapkit.sim.seds.BAND_SETS` (``"sdss"``, ``"cfhtls"``, ...).
    flux : numpy.ndarray, shape (N, bands)
        True fluxes (nanomaggies).
    half_light_radius : numpy.ndarray, shape (N,)
        Galaxy sizes (arcsec), which set the sky noise in the aperture.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray)
        Fluxes, magnitudes and magnitude errors.
    """
    return observe_deviates(band_set, flux, half_light_radius, rng.normal(0.0, 1.0, flux.shape))


def observe_deviates(
    band_set: str,
    flux: NDArray[np.float64],
    half_light_radius: NDArray[np.float64],
    deviates: NDArray[np.float64],
    psf_fwhm: NDArray[np.float64] | None = None,
    sky_brightness: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """:func:`observe` with given unit normal ``deviates`` (N, bands) and conditions.

    The same deviates under other conditions give the same galaxy's photometry with
    other noise levels, which is how ``observing="varying"`` keeps every other draw.

    Parameters
    ----------
    band_set : str
        ``"sdss"``, ``"cfhtls"`` or ``"wise"``.
    flux : ndarray, shape (N, bands)
        True fluxes, nanomaggies.
    half_light_radius : ndarray, shape (N,)
        Sizes, arcsec.
    deviates : ndarray, shape (N, bands)
        Unit normal draws: the noise of each flux in units of its error.
    psf_fwhm, sky_brightness : ndarray, shape (N, bands), optional
        The galaxies' own conditions, as for :func:`flux_errors`.

    Returns
    -------
    (ndarray, ndarray, ndarray)
        Fluxes, magnitudes and magnitude errors.

    Examples
    --------
    >>> flux, hlr, unit = np.full((1, 5), 50.0), np.ones(1), np.ones((1, 5))
    >>> good = observe_deviates("sdss", flux, hlr, unit)[0]
    >>> bad = observe_deviates("sdss", flux, hlr, unit, np.full((1, 5), 2.5), np.full((1, 5), 19.0))[0]
    >>> bool(np.all(bad - flux > good - flux))  # worse seeing, brighter sky: more noise
    True
    """
    sigma = flux_errors(band_set, flux, half_light_radius, psf_fwhm, sky_brightness)
    noisy = flux + deviates * sigma
    return noisy, magnitudes(band_set, noisy), magnitude_errors(band_set, noisy, sigma)
