"""The population prior (kcorrect fits to the real SDSS galaxies) and draws from it."""

import dataclasses

import numpy as np
import pytest

from clapkit.sim.population import (
    LUMINOSITY_JITTER_DEX,
    MAX_RESIDUAL,
    REDSHIFT_JITTER,
    Z_MAX,
    Z_MIN,
    PopulationPrior,
    _mass_per_intrinsic,
    draw_population,
    population_prior,
)
from clapkit.sim.seds import kcorrect_model

pytestmark = pytest.mark.usefixtures("kcorrect_ready")


@pytest.fixture(scope="module")
def prior() -> PopulationPrior:
    return population_prior()


@pytest.fixture(scope="module")
def big_draw(prior):
    # Large enough that the jitter statistics are measured to a few per cent.
    return draw_population(20_000, np.random.default_rng(12), prior)


def test_prior_keeps_all_but_a_counted_few_of_the_10000_real_galaxies(prior):
    assert prior.n_real == 10_000
    assert len(prior) + prior.n_excluded == 10_000
    assert 0 <= prior.n_excluded < 100
    for name in ("z", "log_mstar", "ebv"):
        assert getattr(prior, name).shape == (len(prior),)
    assert prior.intrinsic.shape == prior.petro_offset.shape == (len(prior), 5)


def test_prior_is_physically_plausible(prior):
    # The SDSS main sample: massive nearby galaxies, non-negative template mixtures.
    assert np.all(np.isfinite(prior.log_mstar))
    assert 10.5 < np.median(prior.log_mstar) < 11.2
    assert prior.log_mstar.min() > 7.5 and prior.log_mstar.max() < 12.8
    assert np.all(prior.intrinsic >= 0) and np.all(prior.intrinsic.sum(axis=1) > 0)
    assert np.all((prior.z > 0) & (prior.z < 0.8))
    assert 0.05 < np.median(prior.z) < 0.15
    assert np.all(prior.ebv >= 0)


def test_fit_residuals_are_clipped_and_small_on_average(prior):
    assert prior.residual.shape == (len(prior), 5)
    assert np.all(np.abs(prior.residual) <= MAX_RESIDUAL)
    # Five templates fit the real photometry to a few hundredths of a magnitude.
    assert np.all(np.abs(np.median(prior.residual, axis=0)) < 0.15)
    assert np.all(np.abs(np.median(prior.residual[:, 1:4], axis=0)) < 0.05)


def test_prior_masses_are_linear_in_the_intrinsic_coefficients(prior):
    # kcorrect's mremain of every real galaxy equals the per-template masses times its
    # intrinsic coefficients: the mass does not depend on where the galaxy is put.
    mass = _mass_per_intrinsic(prior.intrinsic)
    np.testing.assert_allclose(np.log10(mass), prior.log_mstar, atol=1e-5)
    # Doubling the coefficients (twice the light) adds log10(2) to the mass.
    np.testing.assert_allclose(
        np.log10(_mass_per_intrinsic(2 * prior.intrinsic[:50])),
        prior.log_mstar[:50] + np.log10(2),
        atol=1e-5,
    )


def test_drawn_masses_agree_with_kcorrect_at_the_drawn_redshift(big_draw):
    # An independent route to the mass: kcorrect's own derived() on the observed-frame
    # coefficients at the new redshift (it uses the same Planck18 distances).
    some = slice(0, 2000)
    model = kcorrect_model("sdss")
    mremain = model.derived(
        redshift=big_draw.z[some].astype(np.float32),
        coeffs=big_draw.coeffs[some].astype(np.float32),
    )["mremain"]
    np.testing.assert_allclose(np.log10(mremain), big_draw.log_mstar[some], atol=1e-4)


def test_draw_is_deterministic_for_a_seeded_generator(prior):
    a = draw_population(50, np.random.default_rng(3), prior)
    b = draw_population(50, np.random.default_rng(3), prior)
    c = draw_population(50, np.random.default_rng(4), prior)
    for name in a.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert not np.array_equal(a.z, c.z)


def test_draw_copies_what_travels_with_the_source_galaxy(prior, big_draw):
    # Reddening, Petrosian offset and template-fit residual belong to the real galaxy.
    for name in ("ebv", "petro_offset", "residual"):
        np.testing.assert_array_equal(
            getattr(big_draw, name), getattr(prior, name)[big_draw.source], err_msg=name
        )
    assert big_draw.source.min() >= 0 and big_draw.source.max() < len(prior)


def test_redshift_jitter_is_a_five_per_cent_scatter_inside_the_range(prior, big_draw):
    assert np.all((big_draw.z >= Z_MIN) & (big_draw.z <= Z_MAX))
    log_ratio = np.log(big_draw.z / prior.z[big_draw.source])
    free = (big_draw.z > Z_MIN) & (big_draw.z < Z_MAX)  # not clipped
    assert abs(np.mean(log_ratio[free])) < 0.003
    assert np.std(log_ratio[free]) == pytest.approx(REDSHIFT_JITTER, rel=0.05)


def test_sed_jitter_keeps_the_shape_close_to_the_source(prior, big_draw):
    source = prior.intrinsic[big_draw.source]
    shape = big_draw.intrinsic / big_draw.intrinsic.sum(axis=1, keepdims=True)
    source_shape = source / source.sum(axis=1, keepdims=True)
    used = source_shape > 0.05  # templates that carry light
    ratio = np.log(shape[used] / source_shape[used])
    assert 0.02 < np.std(ratio) < 0.08
    assert np.all(big_draw.intrinsic >= 0)


def test_masses_follow_the_luminosity_jitter(prior, big_draw):
    # The total of the intrinsic coefficients scales by the luminosity jitter, and the
    # mass moves with it: the SED-shape jitter changes the mass per unit light very little.
    luminosity = np.log10(
        big_draw.intrinsic.sum(axis=1) / prior.intrinsic[big_draw.source].sum(axis=1)
    )
    shift = big_draw.log_mstar - prior.log_mstar[big_draw.source]
    assert np.std(luminosity) == pytest.approx(LUMINOSITY_JITTER_DEX, rel=0.05)
    assert abs(np.mean(shift)) < 0.002
    assert np.std(shift - luminosity) < 0.01
    assert np.corrcoef(luminosity, shift)[0, 1] > 0.98


def test_draw_of_a_custom_prior_scales_with_its_coefficients(prior):
    # A prior whose galaxies are all twice as luminous (and massive) gives the same draw,
    # twice as luminous, log10(2) more massive: nothing else depends on the scale.
    doubled = dataclasses.replace(
        prior, intrinsic=2 * prior.intrinsic, log_mstar=prior.log_mstar + np.log10(2)
    )
    a = draw_population(30, np.random.default_rng(9), prior)
    b = draw_population(30, np.random.default_rng(9), doubled)
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_allclose(b.intrinsic, 2 * a.intrinsic, rtol=1e-12)
    np.testing.assert_allclose(b.log_mstar, a.log_mstar + np.log10(2), atol=1e-12)


def test_take_selects_the_same_rows_of_every_field(big_draw):
    index = np.array([5, 0, 17])
    part = big_draw.take(index)
    np.testing.assert_array_equal(part.source, big_draw.source[index])
    np.testing.assert_array_equal(part.intrinsic, big_draw.intrinsic[index])
    np.testing.assert_array_equal(part.coeffs, big_draw.coeffs[index])
