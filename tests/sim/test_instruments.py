"""The mock instruments: numbers from surveycodex, stamp geometry, unit conversions."""

from __future__ import annotations

from pathlib import Path

import kcorrect
import pytest
import surveycodex
from surveycodex.utilities import mag2counts, mean_sky_level

from clapkit.errors import ValidationError
from clapkit.sim.instruments import (
    INSTRUMENTS,
    electrons_per_nanomaggy,
    instrument,
    sky_nanomaggies_per_pixel,
)

SURVEYS = {"sdss": "SDSS", "cfhtls": "CFHTLS"}


@pytest.mark.parametrize("name", INSTRUMENTS)
def test_numbers_are_surveycodex_numbers(name):
    camera = instrument(name)
    survey = surveycodex.get_survey(SURVEYS[name])
    assert camera.pixel_scale == survey.pixel_scale.to_value("arcsec")
    assert camera.gain == survey.gain.to_value("electron / adu")
    assert camera.band_names == ("u", "g", "r", "i", "z") == tuple(survey.available_filters)
    for band in camera.bands:
        filt = survey.get_filter(band.name)
        assert band.psf_fwhm == filt.psf_fwhm.to_value("arcsec")
        assert band.zeropoint == filt.zeropoint.to_value("mag")
        assert band.sky_brightness == filt.sky_brightness.to_value("mag / arcsec2")
        assert band.exposure == filt.full_exposure_time.to_value("s")
        assert band.effective_wavelength == filt.effective_wavelength.to_value("nm")
        # plain floats, not astropy quantities
        numbers = ("psf_fwhm", "zeropoint", "sky_brightness", "exposure", "effective_wavelength")
        assert all(type(getattr(band, field)) is float for field in numbers)


def test_stamps_cover_the_same_field_of_view():
    sdss, cfhtls = instrument("sdss"), instrument("cfhtls")
    assert (sdss.stamp_size, sdss.pixel_scale) == (64, 0.396)
    assert (cfhtls.stamp_size, cfhtls.pixel_scale) == (136, 0.187)
    assert abs(cfhtls.field_of_view - sdss.field_of_view) <= cfhtls.pixel_scale
    assert sdss.field_of_view == pytest.approx(64 * 0.396)


@pytest.mark.parametrize(
    ("name", "responses"),
    [
        ("sdss", ["sdss_u0", "sdss_g0", "sdss_r0", "sdss_i0", "sdss_z0"]),
        ("cfhtls", [f"cfht_megacam_{b}" for b in "ugriz"]),
    ],
)
def test_kcorrect_responses_exist(name, responses):
    camera = instrument(name)
    assert [band.kcorrect_response for band in camera.bands] == responses
    folder = Path(kcorrect.__file__).parent / "data" / "responses"
    for response in responses:
        assert (folder / f"{response}.dat").is_file(), response


@pytest.mark.parametrize("name", INSTRUMENTS)
def test_electrons_per_nanomaggy_agrees_with_surveycodex(name):
    camera = instrument(name)
    for band in camera.bands:
        # mag 12.5 is 10^4 nanomaggies; surveycodex truncates its counts to integers
        counts = mag2counts(12.5, SURVEYS[name], band.name).value
        assert 1e4 * electrons_per_nanomaggy(band) == pytest.approx(counts, abs=1.0)


@pytest.mark.parametrize("name", INSTRUMENTS)
def test_sky_per_pixel_agrees_with_surveycodex(name):
    camera = instrument(name)
    for band in camera.bands:
        electrons = sky_nanomaggies_per_pixel(band, camera.pixel_scale) * electrons_per_nanomaggy(
            band
        )
        # surveycodex truncates the counts per arcsec² to an integer before the pixel area
        expected = mean_sky_level(SURVEYS[name], band.name).value
        assert electrons == pytest.approx(expected, abs=camera.pixel_scale**2)


def test_sky_scales_with_pixel_area():
    band = instrument("sdss").band("r")
    assert sky_nanomaggies_per_pixel(band, 0.8) == pytest.approx(
        4 * sky_nanomaggies_per_pixel(band, 0.4)
    )


def test_instruments_are_cached_and_psf_model_is_kept():
    assert instrument("sdss") is instrument("sdss")
    assert instrument("sdss", "kolmogorov").psf_model == "kolmogorov"
    assert instrument("sdss").psf_model == "moffat"
    assert instrument("sdss").moffat_beta == 3.0


def test_unknown_instrument_lists_the_known_ones():
    with pytest.raises(ValidationError, match=r"unknown instrument 'hsc'.*'sdss', 'cfhtls'"):
        instrument("hsc")


def test_unknown_psf_model_and_band_are_rejected():
    with pytest.raises(ValidationError, match="psf_model must be one of"):
        instrument("sdss", "gaussian")
    with pytest.raises(ValidationError, match=r"band 'y' is not a band of instrument 'cfhtls'"):
        instrument("cfhtls").band("y")
