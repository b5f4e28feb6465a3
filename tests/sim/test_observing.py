"""Observing conditions: ``observing="fixed"`` is the mock as before, ``"varying"`` gives
each galaxy its own seeing and sky, recorded, rendered and reflected in the photometry.

Surveys here use chunks of 8 galaxies (``small_chunks``) so that they cost little.
"""

import galsim
import networkx as nx
import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.sim import simulate
from clapkit.sim.conditions import (
    CONDITIONS,
    check_observing,
    condition_columns,
    draw_conditions,
    per_band,
)
from clapkit.sim.graph import IMAGE_PARENTS, image_parents, true_graph
from clapkit.sim.instruments import electrons_per_nanomaggy, instrument, sky_per_pixel
from clapkit.sim.photometry import flux_errors
from clapkit.sim.render import Components, add_noise, render_naive, render_noiseless

pytestmark = pytest.mark.usefixtures("kcorrect_ready", "small_chunks")

CONDITION_COLUMNS = tuple(condition_columns())
#: Columns that depend on the noise level of the catalog photometry.
NOISY = ("mag_", "magerr_", "flux_", "petromag_")


@pytest.fixture(scope="module")
def pair():
    """The same 12 galaxies (two chunks of 8, the last truncated) under both modes."""
    with pytest.MonkeyPatch.context() as patch:
        from clapkit.sim import survey

        patch.setattr(survey, "CHUNK_SIZE", 8)
        default = simulate(12, seed=31)
        fixed = simulate(12, seed=31, observing="fixed")
        varying = simulate(12, seed=31, observing="varying")
    return default, fixed, varying


def _noise_dependent(column: str) -> bool:
    # WISE keeps fixed depths: its magnitudes must not move.
    return column.startswith(NOISY) and not column.endswith(("w1", "w2", "w3"))


def test_fixed_is_the_default_bit_for_bit(pair, assert_same_galaxies):
    default, fixed, _ = pair
    assert_same_galaxies(default, fixed)
    assert fixed.meta == default.meta and "observing" not in default.meta
    assert not set(CONDITION_COLUMNS) & set(default.catalog.colnames)


def test_varying_keeps_the_galaxies_and_moves_only_the_noise(pair):
    _, fixed, varying = pair
    assert varying.meta["observing"] == "varying"
    extra = [c for c in varying.catalog.colnames if c not in fixed.catalog.colnames]
    assert extra == list(CONDITION_COLUMNS)
    for column in fixed.catalog.colnames:
        a, b = np.asarray(fixed.catalog[column]), np.asarray(varying.catalog[column])
        if _noise_dependent(column):
            assert not np.array_equal(a, b), column
        else:
            np.testing.assert_array_equal(a, b, err_msg=column)
    for name in ("psf_fwhm_sdss_r", "sky_cfhtls_u"):
        assert varying.catalog[name].unit == condition_columns()[name][0]
    # The images: the same galaxies, blurred and noised otherwise.
    for name in fixed.stacks:
        a, b = np.asarray(fixed.stacks[name].images), np.asarray(varying.stacks[name].images)
        assert a.shape == b.shape and not np.array_equal(a, b)
        # The total light (noise aside) is the same galaxy's.
        ratio = b[:, 2].sum(axis=(1, 2)) / a[:, 2].sum(axis=(1, 2))
        assert np.median(ratio) == pytest.approx(1.0, abs=0.05)


def test_varying_is_reproducible_and_independent_of_the_stacks(pair):
    _, _, varying = pair
    with pytest.MonkeyPatch.context() as patch:
        from clapkit.sim import survey

        patch.setattr(survey, "CHUNK_SIZE", 8)
        again = simulate(12, seed=31, instruments=("sdss",), observing="varying")
    for column in varying.catalog.colnames:
        np.testing.assert_array_equal(
            np.asarray(again.catalog[column]), np.asarray(varying.catalog[column]), err_msg=column
        )
    np.testing.assert_array_equal(
        np.asarray(again.stacks["sdss"].images), np.asarray(varying.stacks["sdss"].images)
    )


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
def test_recorded_conditions_have_the_intended_scatter_and_bounds(name):
    spread, camera = CONDITIONS[name], instrument(name)
    conditions = draw_conditions(5, 0, 20000)
    fwhm, sky = per_band(conditions, camera)
    nominal_fwhm = np.array([band.psf_fwhm for band in camera.bands])
    nominal_sky = np.array([band.sky_brightness for band in camera.bands])
    factor = fwhm / nominal_fwhm
    # One seeing per exposure: every band of a galaxy has the same factor.
    np.testing.assert_allclose(factor, factor[:, :1].repeat(len(camera.bands), axis=1))
    factor = factor[:, 0]
    assert np.median(factor) == pytest.approx(1.0, abs=0.01)
    assert factor.min() == pytest.approx(spread.seeing_low)
    assert factor.max() == pytest.approx(spread.seeing_high)
    # Log-normal with the stated σ inside the bounds (clipping only trims the tails).
    inside = (factor > spread.seeing_low) & (factor < spread.seeing_high)
    assert np.std(np.log(factor[inside])) == pytest.approx(spread.seeing_sigma, rel=0.1)
    offset = sky - nominal_sky
    np.testing.assert_allclose(offset, offset[:, :1].repeat(len(camera.bands), axis=1))
    assert np.std(offset[:, 0]) == pytest.approx(spread.sky_sigma, rel=0.05)
    assert np.abs(offset).max() == pytest.approx(spread.sky_clip)
    # Seeded by (seed, chunk): reproducible, and other chunks differ.
    again = draw_conditions(5, 0, 20000)
    assert all(np.array_equal(again[c], conditions[c]) for c in conditions)
    other = draw_conditions(5, 1, 20000)
    assert not np.array_equal(other["psf_fwhm_sdss_r"], conditions["psf_fwhm_sdss_r"])


def _star(n: int) -> Components:
    """n point-like sources (a 0.02″ disk), 100 nanomaggies in every band, centred."""
    flux = np.full((n, 5), 100.0)
    return Components(
        np.zeros((n, 5)),
        flux,
        np.full(n, 0.02),
        np.full(n, 0.02),
        np.ones(n),
        np.ones(n),
        np.zeros(n),
        np.zeros(n),
        np.zeros(n),
    )


def _hsm_sigma(image: np.ndarray) -> float:
    return galsim.hsm.FindAdaptiveMom(galsim.Image(image.astype(np.float64))).moments_sigma


def test_a_larger_recorded_fwhm_gives_a_measurably_wider_psf(pair):
    _, _, varying = pair
    sdss = instrument("sdss")
    fwhm, _ = per_band(
        {c: np.asarray(varying.catalog[c]) for c in CONDITION_COLUMNS}, instrument("sdss")
    )
    narrow, wide = int(np.argmin(fwhm[:, 2])), int(np.argmax(fwhm[:, 2]))
    assert fwhm[wide, 2] / fwhm[narrow, 2] > 1.2  # the survey's conditions do vary
    stars = render_noiseless(_star(2), sdss, psf_fwhm=fwhm[[narrow, wide]])
    sizes = [_hsm_sigma(stars[k, 2]) for k in range(2)]
    # A Moffat's size scales with its FWHM; the pixel blurs both alike (slightly).
    assert sizes[1] / sizes[0] == pytest.approx(fwhm[wide, 2] / fwhm[narrow, 2], rel=0.05)
    # The nominal FWHM lies in between.
    nominal = _hsm_sigma(render_noiseless(_star(1), sdss)[0, 2])
    assert sizes[0] < nominal < sizes[1] or fwhm[narrow, 2] > sdss.band("r").psf_fwhm


@pytest.mark.parametrize("name", ["sdss", "cfhtls"])
def test_per_galaxy_psf_rendering_matches_galsim_and_the_nominal_path(name):
    camera = instrument(name)
    nominal = np.array([band.psf_fwhm for band in camera.bands])
    components = Components(
        np.full((3, 5), 20.0),
        np.full((3, 5), 40.0),
        [0.6, 0.4, 0.8],
        [1.5, 1.0, 2.0],
        [0.8, 0.7, 0.9],
        [0.5, 0.3, 0.9],
        [0.3, 1.0, 2.0],
        [0.1, -0.2, 0.0],
        [0.0, 0.15, -0.1],
    )
    fwhm = nominal * np.array([[0.66], [1.0], [1.55]])
    fast = render_noiseless(components, camera, psf_fwhm=fwhm)
    naive = render_naive(components, camera, psf_fwhm=fwhm)
    assert np.abs(fast - naive).max() < 2e-4 * naive.max()
    # The nominal FWHMs, passed per galaxy, give the default rendering.
    same = render_noiseless(components, camera, psf_fwhm=np.tile(nominal, (3, 1)))
    default = render_noiseless(components, camera)
    assert np.abs(same - default).max() < 1e-6 * default.max()
    # Worse seeing: the same flux (but for a little more outside the stamp), a lower peak.
    np.testing.assert_allclose(fast.sum(axis=(2, 3)), default.sum(axis=(2, 3)), rtol=3e-3)
    assert fast[0].max() > default[0].max() and fast[2].max() < default[2].max()


def test_background_sigma_scales_with_the_recorded_sky():
    sdss = instrument("sdss")
    nominal = np.array([band.sky_brightness for band in sdss.bands])
    sky = nominal + np.array([[-0.9], [0.0], [0.9]])  # bright, nominal, dark sky
    noisy = add_noise(np.zeros((3, 5, 64, 64), np.float32), sdss, np.random.default_rng(4), sky)
    per_nmgy = np.array([electrons_per_nanomaggy(band) for band in sdss.bands])
    expected = np.sqrt(sky_per_pixel(sky, sdss.pixel_scale) / per_nmgy)  # Poisson σ, nmgy
    measured = noisy.std(axis=(2, 3))
    np.testing.assert_allclose(measured, expected, rtol=0.05)
    # 0.9 mag of sky is a factor 10^0.36 = 2.29 in σ² between neighbours.
    np.testing.assert_allclose(measured[0] / measured[1], 10**0.18, rtol=0.05)
    # The nominal sky passed per galaxy is the default, draw for draw.
    blank = np.zeros((1, 5, 64, 64), np.float32)
    default = add_noise(blank, sdss, np.random.default_rng(4))
    same = add_noise(blank, sdss, np.random.default_rng(4), nominal[None, :])
    np.testing.assert_array_equal(same, default)


def test_survey_background_follows_each_galaxys_sky(pair):
    _, _, varying = pair
    sdss = instrument("sdss")
    _, sky = per_band({c: np.asarray(varying.catalog[c]) for c in CONDITION_COLUMNS}, sdss)
    images = np.asarray(varying.stacks["sdss"].images)
    border = np.concatenate(
        [
            images[:, :, :6].reshape(*images.shape[:2], -1),
            images[:, :, -6:].reshape(*images.shape[:2], -1),
        ],
        axis=-1,
    )  # the top and bottom 6 rows: sky, hardly any galaxy light
    # Not a median absolute deviation: u-band counts are few electrons, so quantised.
    measured = border.std(axis=-1)
    per_nmgy = np.array([electrons_per_nanomaggy(band) for band in sdss.bands])
    expected = np.sqrt(sky_per_pixel(sky, sdss.pixel_scale) / per_nmgy)
    ratio = measured / expected
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)
    # The recorded sky explains the spread of the background: less scatter about it
    # than about the nominal sky's σ.
    nominal = expected / 10 ** (-0.2 * (sky - [b.sky_brightness for b in sdss.bands]))
    assert np.std(np.log(ratio)) < 0.5 * np.std(np.log(measured / nominal))


def test_magnitude_errors_follow_the_galaxys_sky_and_seeing(pair):
    flux, hlr = np.zeros((2, 5)), np.full(2, 1.0)
    camera = instrument("sdss")
    sky = np.array([band.sky_brightness for band in camera.bands])
    fwhm = np.array([band.psf_fwhm for band in camera.bands])
    # A sky 2.5 log10(2) mag brighter doubles the sky variance of a source-free aperture.
    sigma = flux_errors(
        "sdss", flux, hlr, np.tile(fwhm, (2, 1)), sky - [[0.0], [2.5 * np.log10(2)]]
    )
    np.testing.assert_allclose(sigma[1] / sigma[0], np.sqrt(2))
    np.testing.assert_allclose(sigma[0], flux_errors("sdss", flux, hlr)[0])
    # In the survey, faint-band errors grow with the galaxy's own sky and PSF area.
    _, fixed, varying = pair
    columns = {c: np.asarray(varying.catalog[c]) for c in CONDITION_COLUMNS}
    fwhm_g, sky_g = per_band(columns, camera)
    size = np.asarray(varying.catalog["hlr"]) / 1.1774
    area = (fwhm_g[:, 0] / 2.3548) ** 2 + size**2
    area_nominal = (fwhm[0] / 2.3548) ** 2 + size**2
    predicted = np.sqrt(10 ** (-0.4 * (sky_g[:, 0] - sky[0])) * area / area_nominal)
    observed = np.asarray(varying.catalog["magerr_u"]) / np.asarray(fixed.catalog["magerr_u"])
    assert np.corrcoef(np.log(predicted), np.log(observed))[0, 1] > 0.9


def test_the_true_graph_gains_the_conditions_when_varying(pair):
    _, fixed, varying = pair
    graph = true_graph(("sdss", "cfhtls", "wise"), observing="varying")
    assert nx.is_directed_acyclic_graph(graph)
    assert sorted(graph.successors("psf_fwhm_sdss_r")) == ["mag_r", "magerr_r"]
    assert sorted(graph.successors("sky_cfhtls_u")) == ["mag_cfhtls_u", "magerr_cfhtls_u"]
    for column in CONDITION_COLUMNS:
        assert column in graph and not list(graph.predecessors(column))
    plain = true_graph(("sdss", "cfhtls", "wise"))
    assert set(graph.edges) - set(plain.edges) == {
        (c, child) for c in CONDITION_COLUMNS for child in graph.successors(c)
    }
    assert plain.edges == true_graph(("sdss", "cfhtls", "wise"), observing="fixed").edges
    assert not set(CONDITION_COLUMNS) & set(plain.nodes)
    # WISE magnitudes keep their fixed depths.
    assert not any(p.startswith(("psf_", "sky_")) for p in graph.predecessors("mag_w1"))
    # The selection's r chain gets them even without the SDSS band set.
    assert graph.has_edge("sky_sdss_r", "mag_r")
    selected_only = true_graph(("cfhtls",), observing="varying")
    assert selected_only.has_edge("sky_sdss_r", "mag_r")
    assert "sky_sdss_g" not in selected_only
    # Every node is a catalog column of the survey it describes (or the selection node).
    nodes = set(graph) - {graph.graph["selection"]}
    assert nodes <= set(varying.catalog.colnames)
    assert set(plain) - {"selected"} <= set(fixed.catalog.colnames)
    assert image_parents() == IMAGE_PARENTS
    parents = image_parents("varying")
    assert set(parents) - set(IMAGE_PARENTS) == set(CONDITION_COLUMNS)
    assert set(parents) <= set(varying.catalog.colnames)


@pytest.mark.parametrize("bad", ["Varying", "", None, 1])
def test_a_bad_observing_option_is_refused(bad, tmp_path):
    with pytest.raises(ValidationError, match="observing must be one of"):
        check_observing(bad)
    with pytest.raises(ValidationError, match="observing must be one of"):
        simulate(2, seed=1, instruments=("sdss",), observing=bad)
    with pytest.raises(ValidationError, match="observing must be one of"):
        true_graph(("sdss",), observing=bad)
    from clapkit.sim import simulate_to_file

    with pytest.raises(ValidationError, match="observing must be one of"):
        simulate_to_file(tmp_path / "x.h5", 2, 1, ("sdss",), observing=bad)
    assert list(tmp_path.iterdir()) == []


def test_bad_per_galaxy_conditions_are_refused():
    sdss = instrument("sdss")
    with pytest.raises(ValidationError, match=r"psf_fwhm must have shape \(2, 5\)"):
        render_noiseless(_star(2), sdss, psf_fwhm=np.ones((2, 4)))
    with pytest.raises(ValidationError, match="psf_fwhm must be > 0; galaxy 1, band 0"):
        render_noiseless(_star(2), sdss, psf_fwhm=[[1.0] * 5, [0.0] * 5])
    with pytest.raises(ValidationError, match="sky_brightness must be finite; galaxy 0"):
        add_noise(np.zeros((1, 5, 8, 8)), sdss, np.random.default_rng(0), [[np.nan] * 5])
    with pytest.raises(ValidationError, match=r"sky_brightness must have shape \(1, 5\)"):
        add_noise(np.zeros((1, 5, 8, 8)), sdss, np.random.default_rng(0), [21.0] * 5)
