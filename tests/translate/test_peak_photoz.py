"""The peak-flux photo-z estimator: redshift read from the colours at the galaxy's peak."""

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.metrics import per_galaxy_parts, sigma_mad
from clapkit.translate.evaluate import BootstrapConfig, compare_images
from clapkit.translate.image_metrics import morphology, peak_flux_ratios, peak_fluxes
from clapkit.translate.peak_photoz import PeakPhotoZ, PeakZConfig, peak_colours

BANDS = ("g", "r", "i")
EDGES = np.linspace(0.0, 1.2, 61)


def stamps(z, seed=0, size=20, noise=0.5):
    """Gaussian galaxies whose peak colours are smooth functions of z, with noise.

    g/r = exp(2 z) and i/r = exp(−1.5 z): the peak ratios determine z exactly, and the
    r peak (the brightness) varies independently of z, so only colours carry redshift.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    c = (size - 1) / 2
    blob = np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * 2.0**2))
    r_peak = rng.uniform(150.0, 400.0, len(z))
    amps = np.stack([r_peak * np.exp(2 * z), r_peak, r_peak * np.exp(-1.5 * z)], axis=1)
    images = amps[:, :, None, None] * blob + rng.normal(0, noise, (len(z), 3, size, size))
    return images


@pytest.fixture(scope="module")
def survey():
    rng = np.random.default_rng(1)
    z_train = rng.uniform(0.05, 1.1, 400)
    z_test = rng.uniform(0.05, 1.1, 120)
    return z_train, stamps(z_train, seed=2), z_test, stamps(z_test, seed=3)


def fitted(z_train, train_images, **config):
    return PeakPhotoZ(EDGES, BANDS, PeakZConfig(**config)).fit_images(train_images, z_train)


def point(p):
    return (p * 0.5 * (EDGES[1:] + EDGES[:-1])).sum(axis=1)


def test_colours_are_log_ratios_far_above_the_noise_and_finite_below_it():
    peaks = np.array([[4e4, 1e4, 5e3], [-3.0, 0.0, 2.0]])
    c = peak_colours(peaks, [1.0, 1.0, 1.0], reference=1)
    np.testing.assert_allclose(c[0], [np.log(4), np.log(0.5)], atol=1e-6)
    assert np.all(np.isfinite(c[1]))  # non-positive fluxes: still a colour
    # Monotonic through zero: a brighter g is a larger colour, whatever the sign.
    g = np.linspace(-5, 5, 11)
    colours = peak_colours(np.stack([g, np.ones(11), np.ones(11)], axis=1), [1, 1, 1], 1)
    assert np.all(np.diff(colours[:, 0]) > 0)


def test_peak_fluxes_are_the_morphology_table_s_peaks(survey):
    _, images, _, _ = survey
    table = morphology(images[:15], 0.2, BANDS)
    peaks = peak_fluxes(images[:15])
    for b, name in enumerate(BANDS):
        np.testing.assert_array_equal(peaks[:, b], table[f"peak_{name}"])
    ratios = peak_flux_ratios(images[:15], BANDS)
    np.testing.assert_allclose(ratios["peak_g/peak_r"], peaks[:, 0] / peaks[:, 1])


def test_redshift_is_recovered_from_the_peak_colours(survey):
    z_train, train, z_test, test = survey
    model = fitted(z_train, train, k=10)
    z_phot = point(model.predict_images(test))
    # The colours fix z; the noise moves a colour by ~1e-3, the bins are 0.02 wide.
    assert sigma_mad(z_phot, z_test) < 0.02
    np.testing.assert_allclose(model.softening_, 0.5, rtol=0.15)  # the noise σ


def test_shuffling_the_bands_peaks_between_galaxies_destroys_the_information(survey):
    z_train, train, z_test, test = survey
    model = fitted(z_train, train, k=10)
    rng = np.random.default_rng(5)
    shuffled = test.copy()
    for b in range(len(BANDS)):  # each band from another galaxy: colours say nothing
        shuffled[:, b] = test[rng.permutation(len(test)), b]
    z_good = point(model.predict_images(test))
    z_bad = point(model.predict_images(shuffled))
    assert sigma_mad(z_bad, z_test) > 0.1 > 5 * sigma_mad(z_good, z_test)


def test_the_estimator_is_deterministic(survey):
    z_train, train, _, test = survey
    a = fitted(z_train, train).predict_images(test[:20])
    b = fitted(z_train, train).predict_images(test[:20])
    np.testing.assert_array_equal(a, b)


def test_applied_to_the_real_images_its_row_is_the_real_row(survey):
    z_train, train, z_test, test = survey
    model = fitted(z_train, train, k=10)
    boot = BootstrapConfig(n_resamples=50, seed=3)
    metrics, _, _ = compare_images(
        test, test, BANDS, 0.2, bootstrap=boot, peak_photoz=model, z_true=z_test
    )
    p = model.predict_images(test)
    parts = per_galaxy_parts(p, EDGES, z_test)
    assert metrics["peakz_sigma_mad"] == pytest.approx(sigma_mad(parts["z_phot"], z_test))
    lo, hi = metrics["peakz_sigma_mad_ci"]
    assert lo <= metrics["peakz_sigma_mad"] <= hi
    # Shuffled bands: a worse σ_MAD whose interval lies above the real one.
    rng = np.random.default_rng(6)
    shuffled = test.copy()
    for b in range(len(BANDS)):
        shuffled[:, b] = test[rng.permutation(len(test)), b]
    worse, _, _ = compare_images(
        shuffled, test, BANDS, 0.2, bootstrap=boot, peak_photoz=model, z_true=z_test
    )
    assert worse["peakz_sigma_mad_ci"][0] > hi


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m, z, x: m.fit(np.ones((5, 2)), z[:5], [1, 1]), r"peaks must be \(galaxies, 3"),
        (lambda m, z, x: m.fit(np.ones((5, 3)), z[:5], [1, 0, 1]), "softening must be"),
        (lambda m, z, x: m.fit(np.full((5, 3), np.nan), z[:5], [1, 1, 1]), "must be finite"),
        (lambda m, z, x: m.predict(np.ones((2, 3))), r"call fit\(\) before"),
        (lambda m, z, x: m.fit_images(x[:, :2], z), "images must be"),
        (lambda m, z, x: m.fit_images(x, z[:3]), r"z must have shape \(20,\)"),
    ],
)
def test_bad_input_is_refused(survey, call, match):
    z_train, train, _, _ = survey
    with pytest.raises(ValidationError, match=match):
        call(PeakPhotoZ(EDGES, BANDS), z_train, train[:20])


def test_bad_settings_are_refused():
    with pytest.raises(ValidationError, match="k must be"):
        PeakZConfig(k=0)
    with pytest.raises(ValidationError, match="reference_band 'y' is not one of"):
        PeakPhotoZ(EDGES, BANDS, PeakZConfig(reference_band="y"))
    with pytest.raises(ValidationError, match="at least 2 bands"):
        PeakPhotoZ(EDGES, ["r"])
    with pytest.raises(ValidationError, match="peak_photoz needs z_true"):
        images = stamps(np.array([0.3, 0.5]))
        compare_images(images, images, BANDS, 0.2, peak_photoz=PeakPhotoZ(EDGES, BANDS))
