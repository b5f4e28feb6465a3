"""Instruments of the mock survey: pixel grid, PSF and photometric calibration per band.

The numbers come from ``surveycodex`` (pixel scale, gain, and per filter the PSF FWHM,
zero point, sky brightness, full exposure time and effective wavelength), so the mock
SDSS and CFHTLS images have the depth and resolution of the real surveys. Zero points
follow surveycodex's convention: the AB magnitude of a source giving 1 electron per
second. Images themselves are kept in nanomaggies (AB zero point 22.5 in every band);
:func:`electrons_per_nanomaggy` and :func:`sky_nanomaggies_per_pixel` convert between
the two.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from clapkit.errors import ValidationError

__all__ = [
    "INSTRUMENTS",
    "Band",
    "Instrument",
    "electrons_per_nanomaggy",
    "instrument",
    "sky_nanomaggies_per_pixel",
    "sky_per_pixel",
]

INSTRUMENTS = ("sdss", "cfhtls")
PSF_MODELS = ("moffat", "kolmogorov")
NANOMAGGY_ZEROPOINT = 22.5  # AB magnitude of a 1-nanomaggy source

# The SDSS-like stamp is 64×64 at 0.396″; every other instrument covers the same field.
_SDSS_STAMP = 64
_SDSS_PIXEL_SCALE = 0.396

# surveycodex survey name, and the kcorrect response-file stem per band.
_SURVEYS = {
    "sdss": ("SDSS", {b: f"sdss_{b}0" for b in "ugriz"}),
    "cfhtls": ("CFHTLS", {b: f"cfht_megacam_{b}" for b in "ugriz"}),
}


@dataclass(frozen=True)
class Band:
    """One filter of an instrument.

    Parameters
    ----------
    name : str
        Filter name, e.g. ``"r"``.
    psf_fwhm : float
        Full width at half maximum of the PSF, arcsec.
    zeropoint : float
        AB magnitude of a source giving 1 electron per second.
    sky_brightness : float
        Sky surface brightness, AB mag per arcsec².
    exposure : float
        Exposure time, seconds.
    effective_wavelength : float
        Effective wavelength of the filter, nm.
    kcorrect_response : str
        Stem of the kcorrect response file of this filter, e.g. ``"sdss_r0"``.

    Examples
    --------
    >>> band = Band("r", 1.32, 25.62, 20.84, 54.1, 620.6, "sdss_r0")
    >>> band.name, band.psf_fwhm
    ('r', 1.32)
    """

    name: str
    psf_fwhm: float
    zeropoint: float
    sky_brightness: float
    exposure: float
    effective_wavelength: float
    kcorrect_response: str


@dataclass(frozen=True)
class Instrument:
    """A camera: its bands, pixel grid, gain and PSF model.

    Parameters
    ----------
    name : str
        Instrument name, e.g. ``"sdss"``.
    bands : tuple of Band
        The filters, in image-plane order.
    pixel_scale : float
        Arcseconds per pixel.
    stamp_size : int
        Width and height of a galaxy stamp, pixels.
    gain : float
        Electrons per ADU.
    psf_model : str
        ``"moffat"`` or ``"kolmogorov"``.
    moffat_beta : float
        Moffat index β, used when ``psf_model`` is ``"moffat"``.

    Examples
    --------
    >>> sdss = instrument("sdss")
    >>> sdss.band_names, sdss.stamp_size, sdss.pixel_scale
    (('u', 'g', 'r', 'i', 'z'), 64, 0.396)
    """

    name: str
    bands: tuple[Band, ...]
    pixel_scale: float
    stamp_size: int
    gain: float
    psf_model: str = "moffat"
    moffat_beta: float = 3.0

    @property
    def band_names(self) -> tuple[str, ...]:
        """Names of the bands, in image-plane order.

        Examples
        --------
        >>> instrument("cfhtls").band_names
        ('u', 'g', 'r', 'i', 'z')
        """
        return tuple(band.name for band in self.bands)

    @property
    def field_of_view(self) -> float:
        """Width of a stamp on the sky, arcsec.

        Examples
        --------
        >>> round(instrument("sdss").field_of_view, 3)
        25.344
        """
        return self.stamp_size * self.pixel_scale

    def band(self, name: str) -> Band:
        """Return the band called ``name``.

        Examples
        --------
        >>> instrument("sdss").band("r").psf_fwhm
        1.32
        """
        for band in self.bands:
            if band.name == name:
                return band
        raise ValidationError(
            f"band {name!r} is not a band of instrument {self.name!r}; expected one of {self.band_names}"
        )


@functools.cache
def instrument(name: str, psf_model: str = "moffat") -> Instrument:
    """The instrument ``name`` (``"sdss"`` or ``"cfhtls"``) with numbers from surveycodex.

    Both cover the same field of view: SDSS with 64×64 pixels of 0.396″, CFHTLS with
    pixels of 0.187″ and the even stamp size closest to the same width (136).

    Parameters
    ----------
    name : str
        One of :data:`INSTRUMENTS`.
    psf_model : str
        ``"moffat"`` (β = 3) or ``"kolmogorov"``; the FWHM is the survey's per band.

    Returns
    -------
    Instrument
        Cached: the same object for the same arguments.

    Examples
    --------
    >>> cfhtls = instrument("cfhtls")
    >>> cfhtls.stamp_size, cfhtls.pixel_scale, cfhtls.band("i").kcorrect_response
    (136, 0.187, 'cfht_megacam_i')
    >>> instrument("euclid")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: unknown instrument 'euclid'; expected one of ('sdss', 'cfhtls')
    """
    if name not in _SURVEYS:
        raise ValidationError(f"unknown instrument {name!r}; expected one of {INSTRUMENTS}")
    if psf_model not in PSF_MODELS:
        raise ValidationError(f"psf_model must be one of {PSF_MODELS}, got {psf_model!r}")
    # Imported here so that clapkit imports without the optional `sim` dependencies.
    import surveycodex

    survey_name, responses = _SURVEYS[name]
    survey = surveycodex.get_survey(survey_name)
    bands = []
    for filter_name in survey.available_filters:
        filt = survey.get_filter(filter_name)
        bands.append(
            Band(
                name=filter_name,
                psf_fwhm=float(filt.psf_fwhm.to_value("arcsec")),
                zeropoint=float(filt.zeropoint.to_value("mag")),
                sky_brightness=float(filt.sky_brightness.to_value("mag / arcsec2")),
                exposure=float(filt.full_exposure_time.to_value("s")),
                effective_wavelength=float(filt.effective_wavelength.to_value("nm")),
                kcorrect_response=responses[filter_name],
            )
        )
    pixel_scale = float(survey.pixel_scale.to_value("arcsec"))
    # Even, so that every instrument centres its galaxies on a pixel corner alike.
    stamp_size = 2 * round(_SDSS_STAMP * _SDSS_PIXEL_SCALE / pixel_scale / 2)
    return Instrument(
        name=name,
        bands=tuple(bands),
        pixel_scale=pixel_scale,
        stamp_size=stamp_size,
        gain=float(survey.gain.to_value("electron / adu")),
        psf_model=psf_model,
    )


def electrons_per_nanomaggy(band: Band) -> float:
    """Electrons collected in one exposure from a source of 1 nanomaggy (AB mag 22.5).

    Examples
    --------
    >>> round(electrons_per_nanomaggy(instrument("sdss").band("r")), 1)
    957.6
    """
    return band.exposure * 10.0 ** (-0.4 * (NANOMAGGY_ZEROPOINT - band.zeropoint))


def sky_nanomaggies_per_pixel(band: Band, pixel_scale: float) -> float:
    """Sky flux falling on one pixel of ``pixel_scale`` arcsec, in nanomaggies.

    Examples
    --------
    >>> round(sky_nanomaggies_per_pixel(instrument("sdss").band("r"), 0.396), 3)
    0.723
    """
    return 10.0 ** (-0.4 * (band.sky_brightness - NANOMAGGY_ZEROPOINT)) * pixel_scale**2


def sky_per_pixel(sky_brightness, pixel_scale: float):
    """Sky flux per pixel in nanomaggies for a sky brightness in AB mag per arcsec².

    The array form of :func:`sky_nanomaggies_per_pixel`, for per-galaxy skies.

    Examples
    --------
    >>> round(float(sky_per_pixel(20.84, 0.396)), 3)
    0.723
    """
    return 10.0 ** (-0.4 * (np.asarray(sky_brightness) - NANOMAGGY_ZEROPOINT)) * pixel_scale**2
