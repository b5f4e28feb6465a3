"""Catalog photometry of the mock galaxies: component fluxes, errors, asinh magnitudes."""

import numpy as np
import pytest

from clapkit.data.sdss import ASINH_SOFTENING
from clapkit.sim.dust import galactic_extinction
from clapkit.sim.instruments import electrons_per_nanomaggy, instrument, sky_nanomaggies_per_pixel
from clapkit.sim.photometry import (
    component_fluxes,
    flux_errors,
    magnitude_errors,
    magnitudes,
    observe,
    residual_in_bands,
    softening,
)
from clapkit.sim.seds import BAND_NAMES, band_fluxes, observed_coeffs

pytestmark = pytest.mark.usefixtures("kcorrect_ready")

BAND_SET_NAMES = ["sdss", "cfhtls", "wise"]


def _fluxes(band_set, values):
    return np.repeat(np.asarray(values, dtype=float)[:, None], len(BAND_NAMES[band_set]), axis=1)


@pytest.mark.parametrize("band_set", ["sdss", "cfhtls"])
def test_flux_errors_grow_with_flux_and_with_size(band_set):
    flux = _fluxes(band_set, [0.0, 10.0, 100.0, 1000.0])
    sigma = flux_errors(band_set, flux, np.full(4, 1.0))
    assert sigma.shape == flux.shape and np.all(sigma > 0)
    assert np.all(np.diff(sigma, axis=0) > 0)  # Poisson noise of the source
    sizes = flux_errors(band_set, _fluxes(band_set, [50.0] * 4), np.array([0.0, 0.5, 1.0, 3.0]))
    assert np.all(np.diff(sizes, axis=0) > 0)  # more sky in a larger aperture


def test_flux_errors_follow_the_instrument_noise_model():
    # Sky-limited: σ² = sky per pixel × pixels in 4π(σ_PSF² + σ_gal²), in electrons.
    sdss = instrument("sdss")
    band = sdss.band("r")
    sigma_psf = band.psf_fwhm / 2.3548
    sigma_gal = 2.0 / 1.1774
    pixels = 4 * np.pi * (sigma_psf**2 + sigma_gal**2) / sdss.pixel_scale**2
    per_nmgy = electrons_per_nanomaggy(band)
    expected = np.sqrt(sky_nanomaggies_per_pixel(band, sdss.pixel_scale) * pixels / per_nmgy)
    sigma = flux_errors("sdss", np.zeros((1, 5)), np.array([2.0]))
    assert sigma[0, 2] == pytest.approx(expected, rel=1e-3)
    # A source of flux f adds f / (electrons per nanomaggy) to the variance.
    bright = flux_errors("sdss", np.full((1, 5), 400.0), np.array([2.0]))
    assert bright[0, 2] ** 2 - sigma[0, 2] ** 2 == pytest.approx(400.0 / per_nmgy, rel=1e-6)


def test_cfhtls_is_deeper_than_sdss():
    # Longer exposures on a larger telescope: smaller errors for the same galaxy.
    flux = np.full((1, 5), 30.0)
    assert np.all(
        flux_errors("cfhtls", flux, np.array([1.5])) < flux_errors("sdss", flux, np.array([1.5]))
    )


def test_wise_errors_are_sky_limited_constants():
    sigma = flux_errors("wise", _fluxes("wise", [1.0, 1000.0]), np.array([0.5, 5.0]))
    np.testing.assert_array_equal(sigma[0], sigma[1])
    # AllWISE 5σ depth in W1 (16.9 Vega = 19.6 AB): σ ≈ 2.7 nanomaggies.
    assert 5 * sigma[0, 0] == pytest.approx(10 ** (-0.4 * (16.9 + 2.699 - 22.5)), rel=1e-6)
    assert sigma[0, 0] < sigma[0, 1] < sigma[0, 2]


@pytest.mark.parametrize("band_set", BAND_SET_NAMES)
def test_magnitudes_are_finite_for_zero_and_negative_fluxes(band_set):
    flux = _fluxes(band_set, [-50.0, -1.0, 0.0, 1.0, 1e4])
    mags = magnitudes(band_set, flux)
    assert np.all(np.isfinite(mags))
    assert np.all(np.diff(mags, axis=0) < 0)  # brighter is smaller, through zero


def _bright(band_set):
    """Fluxes (nanomaggies) of 300 and 3000 times each band's softening parameter."""
    b = np.asarray(softening(band_set)) / 1e-9
    return np.array([300.0, 3000.0])[:, None] * b[None, :]


@pytest.mark.parametrize("band_set", BAND_SET_NAMES)
def test_bright_magnitudes_are_pogson_magnitudes(band_set):
    flux = _bright(band_set)
    np.testing.assert_allclose(magnitudes(band_set, flux), 22.5 - 2.5 * np.log10(flux), atol=5e-5)


def test_sdss_softening_is_sdss_own_and_others_follow_the_sky_noise():
    assert softening("sdss") == tuple(ASINH_SOFTENING[b] for b in "ugriz")
    # Elsewhere b = 1.042 σ of the sky under a point source, as SDSS chose its b.
    for band_set in ("cfhtls", "wise"):
        n_bands = len(BAND_NAMES[band_set])
        sky = flux_errors(band_set, np.zeros((1, n_bands)), np.zeros(1))[0]
        np.testing.assert_allclose(np.asarray(softening(band_set)) / 1e-9, 1.042 * sky)


@pytest.mark.parametrize("band_set", BAND_SET_NAMES)
def test_magnitude_errors_of_bright_sources_are_1_0857_sigma_over_flux(band_set):
    flux = _bright(band_set)
    sigma = 0.01 * flux
    errors = magnitude_errors(band_set, flux, sigma)
    np.testing.assert_allclose(errors, 1.0857 * sigma / flux, rtol=1e-4)


def test_magnitude_errors_stay_finite_at_zero_flux():
    errors = magnitude_errors("sdss", np.zeros((1, 5)), np.ones((1, 5)))
    assert np.all(np.isfinite(errors)) and np.all(errors > 0)


def test_observe_scatters_fluxes_by_their_errors():
    rng = np.random.default_rng(0)
    flux = np.full((20_000, 5), 80.0)
    hlr = np.full(20_000, 1.5)
    noisy, mags, magerrs = observe("sdss", flux, hlr, rng)
    sigma = flux_errors("sdss", flux, hlr)
    pulls = (noisy - flux) / sigma
    np.testing.assert_allclose(pulls.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(pulls.std(axis=0), 1.0, atol=0.03)
    np.testing.assert_array_equal(mags, magnitudes("sdss", noisy))
    np.testing.assert_array_equal(magerrs, magnitude_errors("sdss", noisy, sigma))


def test_component_fluxes_apply_milky_way_and_disk_dust():
    z = np.array([0.1, 0.2])
    bulge_in = np.array([[1.0, 0, 0.5, 0.2, 0], [0.5, 0, 0.1, 0.1, 0]]) * 1e-3
    disk_in = np.array([[0.1, 0.3, 0.1, 0.2, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2]]) * 1e-3
    ebv = np.array([0.0, 0.1])
    dust = np.array([[0.5] * 5, [0.0] * 5])
    bulge, disk = component_fluxes("sdss", z, bulge_in, disk_in, ebv, dust)
    bare_bulge = band_fluxes("sdss", z, observed_coeffs(bulge_in, z))
    bare_disk = band_fluxes("sdss", z, observed_coeffs(disk_in, z))
    milky_way = 10 ** (-0.4 * galactic_extinction(ebv, "sdss"))
    np.testing.assert_allclose(bulge, bare_bulge * milky_way, rtol=1e-12)
    np.testing.assert_allclose(disk, bare_disk * milky_way * 10 ** (-0.4 * dust), rtol=1e-12)
    # No disk dust is the same as zero disk dust.
    no_dust = component_fluxes("sdss", z, bulge_in, disk_in, ebv)
    np.testing.assert_allclose(no_dust[1], bare_disk * milky_way, rtol=1e-12)


def test_fit_residuals_dim_every_component_like_extinction():
    z = np.array([0.1])
    bulge_in = np.array([[1.0, 0, 0.5, 0.2, 0]]) * 1e-3
    disk_in = np.array([[0.1, 0.3, 0.1, 0.2, 0.1]]) * 1e-3
    residual = np.array([[0.3, 0.1, 0.0, -0.1, -0.2]])
    plain = component_fluxes("sdss", z, bulge_in, disk_in, np.zeros(1))
    shifted = component_fluxes("sdss", z, bulge_in, disk_in, np.zeros(1), residual=residual)
    for a, b in zip(plain, shifted, strict=True):
        np.testing.assert_allclose(b, a * 10 ** (-0.4 * residual), rtol=1e-12)


def test_fit_residuals_carry_over_to_neighbouring_bands_and_not_to_the_infrared():
    residual = np.array([[0.2] * 5, [0.0, 0.1, 0.2, 0.3, 0.4]])
    np.testing.assert_array_equal(residual_in_bands(residual, "sdss"), residual)
    np.testing.assert_array_equal(residual_in_bands(residual, "wise"), np.zeros((2, 3)))
    cfhtls = residual_in_bands(residual, "cfhtls")
    np.testing.assert_allclose(cfhtls[0], 0.2)  # a constant stays constant
    # A residual rising with wavelength rises across the MegaCam bands, within its range.
    assert np.all(np.diff(cfhtls[1]) > 0)
    assert np.all((cfhtls[1] >= 0) & (cfhtls[1] <= 0.4))


# -- the catalog of a simulated survey ---------------------------------------------------


def test_sdss_and_cfhtls_see_the_same_total_flux_up_to_filter_differences(mock_survey):
    catalog = mock_survey.catalog
    true = np.asarray(catalog["true_mag_r"] - catalog["true_mag_cfhtls_r"])
    observed = np.asarray(catalog["mag_r"] - catalog["mag_cfhtls_r"])
    assert np.all(np.abs(true) < 0.2)
    assert np.mean(np.abs(observed) < 0.2) >= 0.9
    # The images agree too: r-band stamp sums of the two cameras over the same field.
    sums = {
        name: np.asarray(mock_survey.stacks[name].images[:, 2].sum(axis=(1, 2)), dtype=float)
        for name in ("sdss", "cfhtls")
    }
    assert np.mean(np.abs(2.5 * np.log10(sums["cfhtls"] / sums["sdss"])) < 0.2) >= 0.9


def test_catalog_magnitudes_are_noisy_true_magnitudes(mock_survey):
    catalog = mock_survey.catalog
    for prefix, bands in (("", "ugriz"), ("cfhtls_", "ugriz"), ("", ("w1", "w2", "w3"))):
        for band in bands:
            mag = np.asarray(catalog[f"mag_{prefix}{band}"])
            err = np.asarray(catalog[f"magerr_{prefix}{band}"])
            true = np.asarray(catalog[f"true_mag_{prefix}{band}"])
            assert np.all(np.isfinite(mag)) and np.all(err > 0), band
            # Within 5σ everywhere (σ in magnitudes is good for pulls of bright sources).
            assert np.all(np.abs(mag - true) < 5 * err + 0.05), f"{prefix}{band}"


def test_catalog_fluxes_are_the_magnitudes_before_extinction_correction(mock_survey):
    catalog = mock_survey.catalog
    for band in "ugriz":
        flux = np.asarray(catalog[f"flux_{band}"])
        expected = magnitudes("sdss", np.repeat(flux[:, None], 5, axis=1))[:, "ugriz".index(band)]
        np.testing.assert_allclose(
            np.asarray(catalog[f"mag_{band}"] + catalog[f"extinction_{band}"]), expected, atol=1e-9
        )


def test_catalog_magnitude_errors_match_the_spread_of_the_noise(mock_survey):
    # Pulls of observed against true r-band fluxes: unit scatter, no bias.
    catalog = mock_survey.catalog
    flux = np.asarray(catalog["flux_r"])
    true = 10 ** (-0.4 * (np.asarray(catalog["true_mag_r"] + catalog["extinction_r"]) - 22.5))
    sigma = flux_errors("sdss", np.repeat(true[:, None], 5, axis=1), np.asarray(catalog["hlr"]))
    pulls = (flux - true) / sigma[:, 2]
    assert abs(np.mean(pulls)) < 0.6  # 40 galaxies: the mean of N(0, 1) has σ = 0.16
    assert 0.6 < np.std(pulls) < 1.5
