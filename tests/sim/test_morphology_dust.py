"""SEDs and their fluxes, dust, and bulge + disk morphology of the mock galaxies."""

import astropy.units as u
import numpy as np
import pytest
from astropy.cosmology import Planck18

from clapkit.errors import ValidationError
from clapkit.sim.dust import (
    disk_attenuation,
    effective_wavelengths,
    extinction_coefficients,
    galactic_extinction,
)
from clapkit.sim.morphology import (
    DISK_THICKNESS,
    MAX_BULGE_FRACTION,
    angular_size_arcsec,
    disk_axis_ratio,
    draw_morphology,
    mean_log_inverse_axis_ratio,
    restframe_u_r,
    size_early_kpc,
    size_late_kpc,
)
from clapkit.sim.population import draw_population, population_prior
from clapkit.sim.seds import (
    BAND_SETS,
    band_fluxes,
    kcorrect_model,
    luminosity_distance_mpc,
    observed_coeffs,
    old_templates,
)

pytestmark = pytest.mark.usefixtures("kcorrect_ready")

#: Schlafly & Finkbeiner (2011) Table 6, R_V = 3.1: A_b / E(B−V)_SFD for SDSS ugriz.
SF11_SDSS = np.array([4.239, 3.303, 2.285, 1.698, 1.263])


@pytest.fixture(scope="module")
def draw():
    return draw_population(600, np.random.default_rng(5))


@pytest.fixture(scope="module")
def morphology(draw):
    return draw_morphology(draw.z, draw.intrinsic, draw.log_mstar, np.random.default_rng(6))


# -- SEDs and fluxes ---------------------------------------------------------------------


def test_band_fluxes_are_linear_in_the_coefficients(draw):
    coeffs = draw.coeffs[:20]
    one = band_fluxes("sdss", draw.z[:20], coeffs)
    assert one.shape == (20, 5) and np.all(one > 0)
    np.testing.assert_allclose(band_fluxes("sdss", draw.z[:20], 3 * coeffs), 3 * one, rtol=1e-5)
    # A mixture's flux is the sum of its templates' fluxes.
    parts = sum(
        band_fluxes("sdss", draw.z[:20], coeffs * np.eye(5)[k]) for k in range(coeffs.shape[1])
    )
    np.testing.assert_allclose(parts, one, rtol=1e-5)


@pytest.mark.parametrize("band_set", sorted(BAND_SETS))
def test_fluxes_dim_as_luminosity_distance_squared_times_the_k_correction(draw, band_set):
    # Put the same intrinsic SEDs at several redshifts: the observed flux times d_L² is
    # what kcorrect gives for the unscaled coefficients at that redshift (the
    # K-correction), whatever the distance.
    intrinsic = draw.intrinsic[:10]
    model = kcorrect_model(band_set)
    for z in (0.02, 0.2, 0.6):
        zs = np.full(10, z)
        flux = band_fluxes(band_set, zs, observed_coeffs(intrinsic, zs))
        k_corrected = np.asarray(
            model.reconstruct(redshift=zs.astype(np.float32), coeffs=intrinsic.astype(np.float32))
        )
        np.testing.assert_allclose(
            flux * luminosity_distance_mpc(zs)[:, None] ** 2, k_corrected * 1e9, rtol=1e-4
        )


def test_fluxes_fall_roughly_as_luminosity_distance_squared(draw):
    # Between z = 0.1 and 0.2 the i-band K-correction of a typical galaxy is a few tenths
    # of a magnitude at most, while d_L² changes by a factor 4.5 (d_A² by 3.2: 0.15 dex less).
    intrinsic = draw.intrinsic[:50]
    near, far = (np.full(50, z) for z in (0.1, 0.2))
    ratio = (
        band_fluxes("sdss", near, observed_coeffs(intrinsic, near))[:, 3]
        / band_fluxes("sdss", far, observed_coeffs(intrinsic, far))[:, 3]
    )
    expected = (luminosity_distance_mpc([0.2])[0] / luminosity_distance_mpc([0.1])[0]) ** 2
    assert np.all(np.abs(np.log10(ratio / expected)) < 0.1)
    assert np.median(np.abs(np.log10(ratio / expected))) < 0.05


@pytest.mark.parametrize("z", [0.81, -0.01])
def test_band_fluxes_refuse_redshifts_outside_the_range(z):
    with pytest.raises(ValidationError, match=r"\(index 1\) is outside the simulator's range"):
        band_fluxes("sdss", [0.1, z], [[1e-13] * 5, [1e-13] * 5])


def test_band_fluxes_refuse_a_nan_redshift():
    with pytest.raises(ValidationError, match="index 1"):
        band_fluxes("sdss", [0.1, np.nan], [[1e-13] * 5, [1e-13] * 5])


def test_band_fluxes_refuse_mismatched_rows():
    with pytest.raises(ValidationError, match="2 rows for 3 redshifts"):
        band_fluxes("sdss", [0.1, 0.2, 0.3], np.ones((2, 5)))


def test_red_galaxies_redden_with_redshift():
    # The 4000 Å break of old populations moves from g into r between z = 0.05 and 0.3.
    prior = population_prior()
    red = np.flatnonzero(restframe_u_r(prior.intrinsic, prior.z) > 2.5)[:200]
    assert red.size == 200

    def g_minus_r(z):
        zs = np.full(red.size, z)
        flux = band_fluxes("sdss", zs, observed_coeffs(prior.intrinsic[red], zs))
        return -2.5 * np.log10(flux[:, 1] / flux[:, 2])

    near, mid, far = g_minus_r(0.05), g_minus_r(0.15), g_minus_r(0.3)
    assert np.all(mid > near) and np.all(far > mid)
    assert np.median(far - near) > 0.4


def test_surface_brightness_dims_as_one_plus_z_to_the_fourth():
    # Tolman dimming: the simulator's fluxes fall as d_L⁻², its angular sizes as d_A⁻¹,
    # so flux per unit solid angle of a fixed SED and physical size is
    # (1+z)⁻⁴ × (the K-correction), since d_L = (1+z)² d_A.
    intrinsic = np.array([[2.0, 0.5, 1.0, 0.3, 0.1]]) * 1e-2
    size_kpc = np.array([3.0])
    model = kcorrect_model("sdss")
    normalised = []
    for z in (0.03, 0.1, 0.3, 0.6):
        zs = np.array([z])
        flux = band_fluxes("sdss", zs, observed_coeffs(intrinsic, zs))[0]
        area = np.pi * angular_size_arcsec(size_kpc, zs)[0] ** 2
        k = np.asarray(model.reconstruct(redshift=zs.astype(np.float32), coeffs=intrinsic))[0]
        normalised.append(flux / area * (1 + z) ** 4 / k)
    np.testing.assert_allclose(normalised, [normalised[0]] * 4, rtol=1e-4)


def test_old_templates_hold_only_old_stars():
    old = old_templates()
    assert old.shape == (5,) and 1 <= old.sum() < 5
    # Their rest-frame colours are redder than those of the young templates.
    colours = restframe_u_r(np.eye(5), np.full(5, 0.1))
    assert colours[old].min() > colours[~old].max()


# -- dust --------------------------------------------------------------------------------


def test_sdss_extinction_coefficients_agree_with_schlafly_finkbeiner_2011():
    np.testing.assert_allclose(extinction_coefficients("sdss"), SF11_SDSS, rtol=0.05)


@pytest.mark.parametrize("band_set", ["sdss", "cfhtls"])
def test_optical_extinction_decreases_with_wavelength(band_set):
    coefficients = extinction_coefficients(band_set)
    assert np.all(np.diff(effective_wavelengths(band_set)) > 0)
    assert np.all(np.diff(coefficients) < 0)


def test_infrared_extinction_is_small():
    # W3 sits on the 10 µm silicate feature, so WISE is not monotonic: only W1 > W2.
    wise = extinction_coefficients("wise")
    assert np.all(wise > 0) and np.all(wise < extinction_coefficients("sdss")[-1] / 5)
    assert wise[0] > wise[1]
    # Similar filters of two cameras see similar extinction.
    np.testing.assert_allclose(
        extinction_coefficients("cfhtls"), extinction_coefficients("sdss"), rtol=0.1
    )


def test_galactic_extinction_is_proportional_to_reddening():
    a = galactic_extinction([0.0, 0.05, 0.1], "cfhtls")
    assert a.shape == (3, 5)
    np.testing.assert_array_equal(a[0], 0.0)
    np.testing.assert_allclose(a[2], 2 * a[1])
    np.testing.assert_allclose(a[1], 0.05 * extinction_coefficients("cfhtls"))


def test_disk_attenuation_vanishes_at_the_reference_inclination_and_grows_edge_on():
    mean = mean_log_inverse_axis_ratio()
    reference_q = 10 ** (-mean)
    q = np.array([reference_q, DISK_THICKNESS, 1.0])
    att = disk_attenuation(q, np.ones(3), np.full(3, 0.1), "sdss", mean)
    np.testing.assert_allclose(att[0], 0.0, atol=1e-12)
    assert np.all(att[1] > 0)  # edge-on: dimmer than the average disk
    assert np.all(att[2] < 0)  # face-on: brighter
    # Bluer bands are attenuated more (in absolute value), as λ^-0.7 in the rest frame.
    assert np.all(np.diff(att[1]) < 0) and np.all(np.diff(np.abs(att[2])) < 0)
    ratio = att[1, 0] / att[1, 2]
    lam = effective_wavelengths("sdss")
    assert ratio == pytest.approx((lam[0] / lam[2]) ** -0.7, rel=1e-9)


def test_disk_attenuation_scales_with_gamma_and_the_rest_frame_wavelength():
    mean = mean_log_inverse_axis_ratio()
    q = np.full(2, 0.3)
    att = disk_attenuation(q, np.array([0.5, 1.0]), np.array([0.1, 0.1]), "sdss", mean)
    np.testing.assert_allclose(att[1], 2 * att[0])
    # The same observed band probes bluer rest-frame light at higher redshift.
    near, far = disk_attenuation(np.full(2, 0.3), np.ones(2), np.array([0.05, 0.5]), "sdss", mean)
    assert np.all(far > near)


def test_average_disk_attenuation_over_random_inclinations_is_zero():
    cos_i = np.random.default_rng(0).uniform(0, 1, 200_000)
    q = disk_axis_ratio(np.arccos(cos_i))
    log_inverse_q = np.log10(1 / q)
    assert np.mean(log_inverse_q) == pytest.approx(mean_log_inverse_axis_ratio(), abs=2e-3)


# -- morphology --------------------------------------------------------------------------


def test_bulge_and_disk_coefficients_sum_to_the_galaxy(draw, morphology):
    np.testing.assert_allclose(
        morphology.bulge_intrinsic + morphology.disk_intrinsic, draw.intrinsic, rtol=1e-12
    )
    assert np.all(morphology.bulge_intrinsic >= 0) and np.all(morphology.disk_intrinsic >= -1e-30)


def test_bulges_use_only_old_templates(morphology):
    young = ~old_templates()
    np.testing.assert_array_equal(morphology.bulge_intrinsic[:, young], 0.0)
    assert np.any(morphology.bulge_intrinsic[:, ~young] > 0)


def test_bulge_fraction_is_the_r_band_flux_fraction_of_the_bulge(draw, morphology):
    bulge = band_fluxes("sdss", draw.z, observed_coeffs(morphology.bulge_intrinsic, draw.z))
    total = band_fluxes("sdss", draw.z, draw.coeffs)
    np.testing.assert_allclose(morphology.bulge_fraction, bulge[:, 2] / total[:, 2], atol=1e-5)
    assert np.all((morphology.bulge_fraction >= 0) & (morphology.bulge_fraction <= 0.95))
    assert MAX_BULGE_FRACTION == 0.95


def test_bulges_are_never_bluer_than_their_disks(draw, morphology):
    # The disk is the rest of the old light plus all the young light, so its u − r lies
    # between the bulge's and the young templates': bluer, or equal when the SED fit
    # has no young light at all (then bulge and disk share one SED).
    both = (morphology.bulge_fraction > 0.1) & (morphology.bulge_fraction < 0.9)
    assert both.sum() > 50
    z = draw.z[both]
    bulge = band_fluxes("sdss", z, observed_coeffs(morphology.bulge_intrinsic[both], z))
    disk = band_fluxes("sdss", z, observed_coeffs(morphology.disk_intrinsic[both], z))
    bulge_u_r = -2.5 * np.log10(bulge[:, 0] / bulge[:, 2])
    disk_u_r = -2.5 * np.log10(disk[:, 0] / disk[:, 2])
    assert np.all(bulge_u_r > disk_u_r - 1e-5)
    young_part = draw.intrinsic[both] * ~old_templates()
    young = band_fluxes("sdss", z, observed_coeffs(young_part, z))[:, 2]
    has_young = young > 0.05 * (bulge[:, 2] + disk[:, 2])  # of the r-band light
    assert has_young.sum() > 50
    assert np.all(bulge_u_r[has_young] > disk_u_r[has_young] + 0.05)


def test_bulge_fraction_rises_with_restframe_colour(morphology):
    colour, fraction = morphology.restframe_u_r, morphology.bulge_fraction
    red, blue = colour > 2.4, colour < 2.0
    assert red.sum() > 50 and blue.sum() > 50
    assert fraction[red].mean() > fraction[blue].mean() + 0.3
    assert np.corrcoef(colour, fraction)[0, 1] > 0.5


def test_restframe_colour_does_not_depend_on_distance(draw):
    a = restframe_u_r(draw.intrinsic[:30], draw.z[:30])
    b = restframe_u_r(draw.intrinsic[:30], np.full(30, 0.5))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_shen_size_relations_grow_with_mass():
    mass = np.logspace(9, 12, 31)
    assert np.all(np.diff(size_early_kpc(mass)) > 0)
    assert np.all(np.diff(size_late_kpc(mass)) > 0)
    # The fits of Shen et al. (2003, Table 1): a 10^11 M⊙ early type has R50 ≈ 4.2 kpc, a
    # 10^10 M⊙ late type ≈ 2.7 kpc; early types are steeper (slope 0.56 against 0.14–0.39),
    # so small early types are smaller than late types of the same mass.
    assert size_early_kpc(np.array([1e11]))[0] == pytest.approx(4.16, rel=0.05)
    assert size_late_kpc(np.array([1e10]))[0] == pytest.approx(2.66, rel=0.05)
    assert size_early_kpc(np.array([1e9]))[0] < size_late_kpc(np.array([1e9]))[0]


def test_drawn_sizes_follow_mass(draw, morphology):
    massive = draw.log_mstar > np.median(draw.log_mstar)
    for size in (morphology.bulge_hlr_kpc, morphology.disk_hlr_kpc):
        assert np.all(size > 0)
        assert np.median(size[massive]) > 1.3 * np.median(size[~massive])


def test_angular_sizes_use_the_angular_diameter_distance(draw, morphology):
    # Check against astropy's Planck18 directly, not through the simulator's cosmology.
    per_kpc = Planck18.arcsec_per_kpc_proper(draw.z).to_value(u.arcsec / u.kpc)
    expected = np.maximum(morphology.disk_hlr_kpc * per_kpc, 0.05)
    np.testing.assert_allclose(morphology.disk_hlr, expected, rtol=1e-6)
    np.testing.assert_allclose(
        angular_size_arcsec(np.array([10.0]), np.array([0.5])),
        10 * Planck18.arcsec_per_kpc_proper(0.5).to_value(u.arcsec / u.kpc),
        rtol=1e-6,
    )


def test_angular_size_shrinks_with_distance_then_turns_over():
    z = np.array([0.01, 0.05, 0.1, 0.3, 0.7])
    size = angular_size_arcsec(np.full(z.size, 5.0), z)
    assert np.all(np.diff(size) < 0)
    # ... but more slowly than 1/d_L: at z = 0.7 the ratio of the two is (1+z)².
    by_luminosity_distance = 5.0 / (luminosity_distance_mpc(z) * 1e3) * 206264.806
    np.testing.assert_allclose(size / by_luminosity_distance, (1 + z) ** 2, rtol=1e-6)


def test_disk_axis_ratio_from_inclination():
    assert disk_axis_ratio(np.array([0.0]))[0] == pytest.approx(1.0)
    assert disk_axis_ratio(np.array([np.pi / 2]))[0] == pytest.approx(DISK_THICKNESS)
    assert DISK_THICKNESS == 0.2
    q = disk_axis_ratio(np.linspace(0, np.pi / 2, 50))
    assert np.all(np.diff(q) < 0)


def test_drawn_shapes_are_random_orientations(morphology):
    inclination = morphology.inclination
    assert np.all((inclination >= 0) & (inclination <= np.pi / 2))
    # cos i uniform: mean 1/2, standard deviation 1/√12.
    assert np.mean(np.cos(inclination)) == pytest.approx(0.5, abs=0.05)
    np.testing.assert_allclose(morphology.disk_q, disk_axis_ratio(inclination))
    assert np.all((morphology.bulge_q >= 0.5) & (morphology.bulge_q <= 1.0))
    assert np.all((morphology.position_angle >= 0) & (morphology.position_angle < np.pi))


def test_draw_morphology_is_deterministic_for_a_seeded_generator(draw):
    args = (draw.z[:20], draw.intrinsic[:20], draw.log_mstar[:20])
    a = draw_morphology(*args, np.random.default_rng(1))
    b = draw_morphology(*args, np.random.default_rng(1))
    for name in a.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
