"""Image-level fidelity metrics: checked against images whose answer is known."""

import galsim
import numpy as np
import pytest
from astropy.table import Table
from scipy import ndimage

from clapkit.errors import ValidationError
from clapkit.translate import (
    background_std,
    galaxy_peak_pixels,
    morphology,
    noise_power_spectrum,
    peak_flux_ratios,
    pixel_metrics,
    relative_errors,
    source_mask,
)

STAMP = 32


def _draw(profile: galsim.GSObject, scale: float = 1.0) -> np.ndarray:
    return profile.drawImage(nx=STAMP, ny=STAMP, scale=scale).array.astype(np.float64)


def _galaxies(n: int = 4) -> np.ndarray:
    """(n, 2, 32, 32) Gaussian galaxies of various sizes, the second band half as bright."""
    stack = np.empty((n, 2, STAMP, STAMP))
    for i in range(n):
        img = _draw(galsim.Gaussian(sigma=1.5 + 0.5 * i, flux=1000.0))
        stack[i, 0], stack[i, 1] = img, 0.5 * img
    return stack


# --- pixel level ------------------------------------------------------------------------


def test_identical_images_are_perfect():
    x = _galaxies()
    m = pixel_metrics(x, x)
    np.testing.assert_array_equal(m["mse"], [0.0, 0.0])
    np.testing.assert_allclose(m["ssim"], [1.0, 1.0])
    assert np.all(np.isinf(m["psnr"]))
    # The default range is the real images' per band, over all galaxies.
    np.testing.assert_allclose(m["data_range"], np.ptp(x, axis=(0, 2, 3)))


def test_gaussian_noise_gives_mse_sigma_squared_and_worse_scores():
    rng = np.random.default_rng(1)
    real = _galaxies(6)
    sigma = 0.5
    translated = real + rng.normal(0.0, sigma, size=real.shape)
    m = pixel_metrics(translated, real)
    np.testing.assert_allclose(m["mse"], sigma**2, rtol=0.05)
    assert np.all(m["ssim"] < 0.99)
    # PSNR = 10 log10(range² / MSE), per galaxy then averaged.
    expected = 10 * np.log10(m["data_range"] ** 2 / sigma**2)
    np.testing.assert_allclose(m["psnr"], expected, atol=0.3)
    # More noise must score worse on all three.
    worse = pixel_metrics(real + rng.normal(0.0, 2 * sigma, size=real.shape), real)
    assert np.all(worse["mse"] > m["mse"])
    assert np.all(worse["psnr"] < m["psnr"])
    assert np.all(worse["ssim"] < m["ssim"])


def test_explicit_data_range_is_used():
    rng = np.random.default_rng(2)
    real = _galaxies(2)
    translated = real + rng.normal(0.0, 0.1, size=real.shape)
    a = pixel_metrics(translated, real, data_range=10.0)
    b = pixel_metrics(translated, real, data_range=100.0)
    np.testing.assert_allclose(b["psnr"] - a["psnr"], 20.0)
    with pytest.raises(ValidationError, match="data_range"):
        pixel_metrics(translated, real, data_range=0.0)


# --- validation -------------------------------------------------------------------------


def test_shape_mismatch_names_the_axis():
    x = _galaxies(3)
    with pytest.raises(ValidationError, match=r"differ in bands \(axis 1\)"):
        pixel_metrics(x, x[:, :1])
    with pytest.raises(ValidationError, match=r"\(N, B, H, W\)"):
        pixel_metrics(x[0], x[0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_pixel_names_galaxy_and_band(bad):
    x = _galaxies(3)
    y = x.copy()
    y[2, 1, 5, 7] = bad
    with pytest.raises(
        ValidationError, match="translated has non-finite pixels in galaxy 2, band 1"
    ):
        pixel_metrics(y, x)
    with pytest.raises(ValidationError, match="galaxy 2, band 1"):
        morphology(y)
    with pytest.raises(ValidationError, match="galaxy 2, band 1"):
        noise_power_spectrum(y)


# --- noise ------------------------------------------------------------------------------


def test_source_mask_finds_the_galaxy_and_not_the_sky():
    rng = np.random.default_rng(3)
    sky = rng.normal(0.0, 1.0, size=(2, 1, STAMP, STAMP))
    x = sky + 50 * _galaxies(2)[:, :1]
    mask = source_mask(x)
    centre = STAMP // 2
    assert mask[:, 0, centre, centre].all()
    # Pure sky: few 3σ peaks, each grown by the dilation; most of the stamp stays free.
    assert source_mask(sky).mean() < 0.1
    assert not source_mask(sky, nsigma=10.0).any()


def test_background_std_recovers_sigma_next_to_a_galaxy():
    rng = np.random.default_rng(4)
    sigma = np.array([0.5, 2.0])[None, :, None, None]  # a different sky per band
    # Compact galaxies (sigma 1.5 to 2.5 px): wings of bigger ones, left unmasked below the
    # threshold, would inflate the estimate, as they would in real data.
    x = 20 * _galaxies(3) + rng.normal(0.0, 1.0, size=(3, 2, STAMP, STAMP)) * sigma
    std = background_std(x)
    assert std.shape == (3, 2)
    # Masking the 3σ tail of the sky trims its spread by a couple of per cent at most.
    np.testing.assert_allclose(std, np.broadcast_to(sigma[:, :, 0, 0], (3, 2)), rtol=0.06)


def test_white_noise_has_flat_spectrum_of_mean_variance():
    rng = np.random.default_rng(5)
    sigma = 1.5
    noise = rng.normal(0.0, sigma, size=(400, 1, STAMP, STAMP))
    k, power = noise_power_spectrum(noise)
    assert k.shape == (STAMP // 2,) and power.shape == (1, STAMP // 2)
    assert k[0] > 0 and k[-1] < 0.5
    # Normalisation: |FFT|²/(H W)/(free fraction) gives σ² per pixel for white noise.
    assert power.mean() == pytest.approx(sigma**2, rel=0.05)
    assert power.max() / power.min() < 1.2


def test_white_noise_normalisation_does_not_depend_on_the_mask():
    rng = np.random.default_rng(6)
    noise = rng.normal(0.0, 1.0, size=(200, 1, STAMP, STAMP))
    mask = np.zeros(noise.shape, dtype=bool)
    mask[..., 8:24, 8:24] = True  # a quarter of every stamp taken by a "source"
    _, power = noise_power_spectrum(noise, mask=mask)
    assert np.nanmean(power) == pytest.approx(1.0, rel=0.05)


def test_correlated_noise_power_falls_with_k():
    rng = np.random.default_rng(7)
    white = rng.normal(0.0, 1.0, size=(100, 1, STAMP, STAMP))
    smooth = ndimage.gaussian_filter(white, sigma=(0, 0, 1.5, 1.5), mode="wrap")
    _, power = noise_power_spectrum(smooth, n_bins=8)
    assert np.all(np.diff(power[0]) < 0)
    assert power[0, -1] < 0.01 * power[0, 0]


# --- morphology -------------------------------------------------------------------------


def test_hsm_size_and_shape_of_round_and_elongated_gaussians():
    sigma_px = 3.0
    scale = 0.2
    round_ = _draw(galsim.Gaussian(sigma=sigma_px * scale, flux=500.0), scale)
    elongated = _draw(galsim.Gaussian(sigma=sigma_px * scale, flux=500.0).shear(g1=0.3), scale)
    x = np.stack([round_, elongated])[:, None]
    t = morphology(x, bands=["r"], subtract_background=False)
    assert t["hsm_ok_r"].all()
    # HSM measures the drawn (pixel-convolved) image: sigma² + 1/12 px², within 2% of truth.
    assert t["sigma_r"][0] == pytest.approx(sigma_px, rel=0.02)
    assert abs(t["e1_r"][0]) < 1e-3 and abs(t["e2_r"][0]) < 1e-3
    assert t["e1_r"][1] > 0.3 and abs(t["e2_r"][1]) < 1e-3
    # GalSim draws at the true centre of the stamp, pixel (nx + 1) / 2, array index (nx - 1) / 2.
    np.testing.assert_allclose(t["x_r"], (STAMP - 1) / 2, atol=1e-3)
    np.testing.assert_allclose(t["y_r"], (STAMP - 1) / 2, atol=1e-3)
    # pixel_scale turns the size into sky units.
    ts = morphology(x, pixel_scale=scale, bands=["r"], subtract_background=False)
    np.testing.assert_allclose(ts["sigma_r"], scale * t["sigma_r"])


def test_total_flux_with_noise_and_background():
    rng = np.random.default_rng(8)
    flux = 2000.0
    img = _draw(galsim.Gaussian(sigma=2.0, flux=flux))
    x = img[None, None] + 10.0 + rng.normal(0.0, 1.0, size=(1, 1, STAMP, STAMP))
    t = morphology(x)
    assert t.colnames[0] == "flux_b0"
    # The background of 10 per pixel is removed; 1024 noise pixels leave ~32 of scatter.
    assert t["flux_b0"][0] == pytest.approx(flux, abs=100.0)
    assert t["peak_b0"][0] == pytest.approx(img.max(), abs=5.0)
    assert t["sigma_b0"][0] == pytest.approx(np.sqrt(4 + 1 / 12), rel=0.05)


def test_de_vaucouleurs_is_more_concentrated_than_exponential():
    hlr = 3.0
    dev = _draw(galsim.DeVaucouleurs(half_light_radius=hlr))
    exp = _draw(galsim.Exponential(half_light_radius=hlr))
    t = morphology(np.stack([dev, exp])[:, None], subtract_background=False)
    c_dev, c_exp = t["concentration_b0"]
    # Untruncated: C ≈ 5.2 (de Vaucouleurs) and 2.7 (exponential); the stamp trims wings.
    assert c_dev > c_exp + 1.0
    assert 2.0 < c_exp < 3.5


def test_hsm_failure_is_flagged_not_raised():
    x = np.zeros((2, 1, STAMP, STAMP))
    x[1, 0] = _draw(galsim.Gaussian(sigma=2.0))
    t = morphology(x, bands=["g"], subtract_background=False)
    assert list(t["hsm_ok_g"]) == [False, True]
    assert np.isnan(t["sigma_g"][0]) and np.isnan(t["e1_g"][0])
    assert np.isfinite(t["sigma_g"][1])


def test_peak_ratio_of_bands_scaled_two_to_one():
    rng = np.random.default_rng(9)
    galaxies = _galaxies(3) + 0.0
    galaxies[:, 1] = galaxies[:, 0] / 2
    noisy = galaxies + 1e-3 * rng.normal(size=galaxies.shape) * [[[[2.0]], [[1.0]]]]
    ratios = peak_flux_ratios(noisy, ["g", "r"])
    assert list(ratios) == ["peak_g/peak_r"]
    np.testing.assert_allclose(ratios["peak_g/peak_r"], 2.0, rtol=1e-3)
    with pytest.raises(ValidationError, match="band names"):
        peak_flux_ratios(noisy, ["g", "r", "i"])


def _galaxy_with_spike(rng: np.random.Generator, n_bands: int = 1) -> np.ndarray:
    """(1, n_bands, 32, 32): a Gaussian galaxy peaking at pixel (row 15, col 17), unit
    noise, and a spike brighter than the galaxy in a corner, far from it."""
    img = _draw(galsim.Gaussian(sigma=2.5, flux=1500.0).shift(1.5, -0.5))
    stack = img[None, None] + rng.normal(0.0, 1.0, size=(1, n_bands, STAMP, STAMP))
    stack[0, :, 2, 3] = 3 * img.max()
    return stack


def test_peak_is_the_galaxy_s_not_a_brighter_spike_in_the_stamp():
    x = _galaxy_with_spike(np.random.default_rng(11))
    galaxy_peak = np.unravel_index(
        np.argmax(_draw(galsim.Gaussian(sigma=2.5).shift(1.5, -0.5))), (STAMP, STAMP)
    )
    found = galaxy_peak_pixels(x)
    assert bool(found["in_segment"][0])
    # The segment holds the galaxy, not the spike; the peak pixel is within a pixel of
    # the galaxy's true peak (noise of 1 on a peak of ~38).
    assert found["segment"][0][galaxy_peak] and not found["segment"][0][2, 3]
    assert abs(int(found["row"][0]) - galaxy_peak[0]) <= 1
    assert abs(int(found["col"][0]) - galaxy_peak[1]) <= 1
    t = morphology(x, bands=["r"])
    assert t["peak_r"][0] < x[0, 0].max() / 2  # not the spike
    assert t["peak_r"][0] == pytest.approx(x[0, 0, found["row"][0], found["col"][0]], abs=0.5)
    assert (t["peak_y"][0], t["peak_x"][0]) == (found["row"][0], found["col"][0])
    assert bool(t["peak_in_segment"][0])


def test_pure_noise_band_is_read_at_the_galaxy_pixel():
    rng = np.random.default_rng(12)
    x = _galaxy_with_spike(rng, n_bands=2)
    x[0, 1] = rng.normal(0.0, 1.0, size=(STAMP, STAMP))  # the galaxy is absent in band 1
    x[0, 1, 30, 28] = 50.0  # and its stamp maximum is far away
    found = galaxy_peak_pixels(x)
    row, col = int(found["row"][0]), int(found["col"][0])
    ratios = peak_flux_ratios(x, ["g", "r"], subtract_background=False)
    # Both bands read at the galaxy's pixel: the ratio is peak / noise value there,
    # not the galaxy's peak over the noise maximum of 50.
    assert ratios["peak_g/peak_r"][0] == pytest.approx(x[0, 0, row, col] / x[0, 1, row, col])
    t = morphology(x, bands=["g", "r"], subtract_background=False)
    assert t["peak_r"][0] == x[0, 1, row, col] and abs(t["peak_r"][0]) < 5.0


def test_peak_ratios_of_a_galaxy_scaled_per_band_are_the_scale_factors():
    rng = np.random.default_rng(13)
    scales = np.array([0.3, 1.0, 2.5, 0.8])
    base = _galaxy_with_spike(rng)[0, 0]  # noise and spike included: scaled with the galaxy
    x = (scales[:, None, None] * base)[None]  # (1, 4, 32, 32)
    ratios = peak_flux_ratios(x, ["u", "g", "r", "i"], subtract_background=False)
    for i, key in enumerate(ratios):
        assert ratios[key][0] == pytest.approx(scales[i] / scales[i + 1], rel=1e-12)


def test_blank_stamp_falls_back_to_the_centroid_or_the_centre():
    x = np.zeros((2, 1, STAMP, STAMP))
    # No segment can be as large as the stamp: the HSM centroid of the detection image.
    x[1, 0] = _draw(galsim.Gaussian(sigma=1.5, flux=10.0).shift(4.5, 3.5))
    found = galaxy_peak_pixels(x, npixels=STAMP * STAMP + 1, subtract_background=False)
    assert not found["in_segment"].any() and not found["segment"].any()
    assert (found["row"][0], found["col"][0]) == (STAMP // 2, STAMP // 2)  # HSM fails
    assert (found["row"][1], found["col"][1]) == (STAMP // 2 + 3, STAMP // 2 + 4)
    with pytest.raises(ValidationError, match="nsigma"):
        galaxy_peak_pixels(x, nsigma=-1.0)


def test_relative_errors_of_morphology_tables():
    real = morphology(_galaxies(3), bands=["g", "r"], subtract_background=False)
    same = relative_errors(real, real, ["flux_g", "sigma_r"])
    assert same == {"flux_g": 0.0, "sigma_r": 0.0}
    brighter = morphology(1.1 * _galaxies(3), bands=["g", "r"], subtract_background=False)
    err = relative_errors(brighter, real, ["flux_g", "sigma_r"])
    assert err["flux_g"] == pytest.approx(0.1)
    assert err["sigma_r"] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValidationError, match="missing"):
        relative_errors(real, Table({"x": [1, 2, 3]}), ["flux_g"])
