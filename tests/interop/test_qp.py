"""clapkit PDFs to and from qp ensembles, and clapkit's calibration metrics checked
against qp's own PIT and KS on the same PDFs."""

import numpy as np
import pytest
from scipy import stats

from clapkit.errors import ValidationError
from clapkit.interop import from_qp, to_qp
from clapkit.metrics import PDFs, summarize

qp = pytest.importorskip("qp")
from qp.metrics.pit import PIT  # noqa: E402  (qp is optional)

EDGES = np.linspace(0.0, 1.0, 201)


def gaussian_ensemble(mean, sigma):
    return qp.Ensemble(
        qp.stats.norm, data={"loc": np.asarray(mean)[:, None], "scale": np.asarray(sigma)[:, None]}
    )


def gaussian_bin_masses(mean, sigma, edges):
    """Exact Gaussian mass of each bin, as CDF differences."""
    cdf = stats.norm.cdf(edges[None, :], np.asarray(mean)[:, None], np.asarray(sigma)[:, None])
    return np.diff(cdf, axis=1)


@pytest.mark.parametrize("ids", [np.array([7, 11, 300]), np.array(["g-1", "g-22", "g-333"])])
def test_to_qp_and_back_is_exact(ids):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(EDGES.size - 1, 0.3), size=3)  # ragged, many near-empty bins
    pdfs = PDFs(p, EDGES, z_true=[0.1, 0.5, 0.97], ids=ids)
    ensemble = to_qp(pdfs)
    assert ensemble.npdf == 3
    back = from_qp(ensemble, EDGES)
    np.testing.assert_allclose(back.p, pdfs.p, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(back.ids, ids)
    np.testing.assert_array_equal(back.z_true, pdfs.z_true)


def test_to_qp_without_truth_has_no_z_true_and_refuses_other_objects():
    pdfs = PDFs.from_gaussian([0.4], [0.05], EDGES)
    assert sorted(to_qp(pdfs).ancil) == ["id"]
    assert from_qp(to_qp(pdfs), EDGES).z_true is None
    with pytest.raises(ValidationError, match="expects clapkit PDFs"):
        to_qp(pdfs.p)


def test_from_qp_of_a_scipy_normal_gives_its_exact_bin_masses():
    # Means ≥ 6σ inside [0, 1]: the mass off the grid (< 1e-9) is within clapkit's
    # normalisation tolerance, so no row is rescaled.
    mean, sigma = np.array([0.3, 0.55, 0.6]), np.array([0.05, 0.02, 0.06])
    pdfs = from_qp(gaussian_ensemble(mean, sigma), EDGES)
    expected = gaussian_bin_masses(mean, sigma, EDGES)
    np.testing.assert_allclose(pdfs.p, expected, rtol=0, atol=1e-12)


def test_from_qp_of_a_mixture_model_gives_its_exact_bin_masses():
    means = np.array([[0.2, 0.6], [0.45, 0.5]])
    stds = np.array([[0.03, 0.08], [0.02, 0.1]])
    weights = np.array([[0.3, 0.7], [0.5, 0.5]])
    ensemble = qp.Ensemble(qp.mixmod, data={"means": means, "stds": stds, "weights": weights})
    expected = sum(
        weights[:, [j]] * gaussian_bin_masses(means[:, j], stds[:, j], EDGES) for j in range(2)
    )
    # Mass off the grid (≤ 6e-7, the 0.5 ± 0.1 component) is within clapkit's
    # normalisation tolerance: rows are kept as the CDF gives them.
    np.testing.assert_allclose(from_qp(ensemble, EDGES).p, expected, rtol=0, atol=1e-12)


def test_from_qp_of_an_interpolated_grid_matches_the_gaussian_within_the_grid_error():
    mean, sigma = np.array([0.35, 0.6]), np.array([0.05, 0.04])
    xvals = np.linspace(0.0, 1.0, 2001)
    ensemble = qp.Ensemble(
        qp.interp,
        data={"xvals": xvals, "yvals": stats.norm.pdf(xvals, mean[:, None], sigma[:, None])},
    )
    # qp.interp is linear between grid points h apart: its density differs from the
    # Gaussian's by at most h²/8·max|f''| (f'' peaks at 1/(σ³√(2π))), so a bin's mass
    # by at most that times the bin width; doubled for qp's renormalisation of the
    # interpolant to unit mass.
    h, width = np.diff(xvals)[0], np.diff(EDGES)[0]
    bound = 2 * h**2 / 8 / (sigma.min() ** 3 * np.sqrt(2 * np.pi)) * width
    expected = gaussian_bin_masses(mean, sigma, EDGES)
    error = np.abs(from_qp(ensemble, EDGES).p - expected).max()
    assert error <= bound
    assert bound < 1e-3 * expected.max()  # the check is tight enough to mean something


def test_from_qp_of_quantiles_matches_the_gaussian_within_the_quantile_spacing():
    mean, sigma = np.array([0.4, 0.5]), np.array([0.05, 0.08])
    levels = np.linspace(0.0005, 0.9995, 400)
    locations = stats.norm.ppf(levels, mean[:, None], sigma[:, None])
    ensemble = qp.Ensemble(qp.quant, data={"quants": levels, "locs": locations})
    pdfs = from_qp(ensemble, EDGES)
    # qp's CDF passes through every (location, level) pair and is monotone, so between
    # two pairs it is off the Gaussian CDF by at most one level spacing; a bin's mass,
    # a CDF difference, by at most two.
    bound = 2 * np.diff(levels)[0]
    expected = gaussian_bin_masses(mean, sigma, EDGES)
    assert np.abs(pdfs.p - expected).max() <= bound
    np.testing.assert_allclose(pdfs.point_estimate(), mean, atol=2e-3)


def test_mass_outside_the_grid_is_renormalised_with_a_warning_or_refused():
    mean, sigma = np.array([0.95]), np.array([0.05])  # 16% of the mass above z = 1
    ensemble = gaussian_ensemble(mean, sigma)
    masses = gaussian_bin_masses(mean, sigma, EDGES)
    assert masses.sum() == pytest.approx(stats.norm.cdf(1.0, 0.95, 0.05), abs=1e-12)
    with pytest.warns(UserWarning, match="renormalised 1 of 1 rows"):
        pdfs = from_qp(ensemble, EDGES)
    np.testing.assert_allclose(pdfs.p, masses / masses.sum(), rtol=0, atol=1e-12)
    with pytest.raises(ValidationError):
        from_qp(ensemble, EDGES, normalize=False)


def test_from_qp_refuses_bad_inputs():
    pdfs = PDFs.from_gaussian([0.4], [0.05], EDGES)
    with pytest.raises(ValidationError, match=r"expects a qp\.Ensemble, got PDFs"):
        from_qp(pdfs, EDGES)
    ensemble = to_qp(pdfs)
    for bad_edges in (EDGES[::-1], np.array([0.5]), np.stack([EDGES, EDGES]), [0.0, np.nan, 1.0]):
        with pytest.raises(ValidationError):
            from_qp(ensemble, bad_edges)
    with np.errstate(invalid="ignore"):
        broken = gaussian_ensemble([0.4, 0.5], [0.05, np.nan])
        with pytest.raises(ValidationError, match=r"CDF is not finite for PDF index \[1\]"):
            from_qp(broken, EDGES)


def test_the_overrides_of_truth_and_ids_win_over_the_ancillary_data():
    pdfs = PDFs.from_gaussian([0.3, 0.6], [0.05, 0.05], EDGES, z_true=[0.3, 0.6], ids=[1, 2])
    back = from_qp(to_qp(pdfs), EDGES, z_true=[0.31, 0.62], ids=["a", "b"])
    np.testing.assert_array_equal(back.z_true, [0.31, 0.62])
    np.testing.assert_array_equal(back.ids, ["a", "b"])


# ---------------------------------------------------------------------- cross-check


@pytest.mark.parametrize("truth_scatter, calibrated", [(1.0, True), (2.0, False)])
def test_qp_and_clapkit_agree_on_pit_and_ks(truth_scatter, calibrated):
    """qp scores the analytic Gaussians; clapkit their bin masses on EDGES."""
    rng = np.random.default_rng(19)
    n, sigma = 2000, 0.04
    mean = rng.uniform(0.3, 0.7, n)
    z_true = rng.normal(mean, truth_scatter * sigma)  # twice too wide: PDFs over-confident
    ensemble = gaussian_ensemble(mean, np.full(n, sigma))
    qp_pit = PIT(ensemble, z_true, np.linspace(0, 1, 101))
    pdfs = from_qp(ensemble, EDGES, z_true=z_true)
    clap_pit = pdfs.pit()
    clap_ks = summarize(pdfs.p, pdfs.edges, z_true)["pit_ks"]

    # clapkit's CDF equals the Gaussian's at every edge (bin masses are exact CDF
    # differences; the means sit 7σ inside the grid, so renormalising changes nothing
    # measurable) and is linear in between: the interpolation error of a linear
    # interpolant on a bin of width Δ is at most Δ²/8·max|F''| = Δ²/8·max|f'|, and a
    # Gaussian's |f'| peaks at 1/(σ²√(2πe)). A truth below or above the grid gets 0 or 1
    # from clapkit and F(truth), within the same bound here, from qp.
    width = np.diff(EDGES)[0]
    bound = width**2 / 8 / (sigma**2 * np.sqrt(2 * np.pi * np.e)) + 1e-9
    assert np.abs(clap_pit - qp_pit.pit_samps).max() <= bound
    # Moving every PIT value by at most δ moves the empirical CDF's distance to the
    # uniform one, the KS statistic, by at most δ.
    qp_ks = qp_pit.evaluate_PIT_KS().statistic
    assert abs(clap_ks - qp_ks) <= bound
    assert bound < 1e-3  # far below the statistics' own scatter (~1/√n = 0.02)
    if calibrated:
        assert qp_ks < 0.05 and clap_ks < 0.05
    else:
        # Over-confident PDFs pile PIT values at 0 and 1: both see it.
        assert qp_ks > 0.15 and clap_ks > 0.15


def test_qp_and_clapkit_pit_are_the_same_on_a_histogram_ensemble():
    """On qp's histogram form of clapkit's PDFs both sides use the same CDF (linear
    within bins): the PIT values agree to rounding, truths off the grid included."""
    rng = np.random.default_rng(3)
    mean = rng.uniform(0.1, 0.9, 500)
    z_true = np.concatenate([rng.normal(mean[:-2], 0.06), [-0.1, 1.2]])
    pdfs = PDFs.from_gaussian(mean, np.full(500, 0.04), EDGES, z_true=z_true)
    qp_pit = PIT(to_qp(pdfs), z_true, np.linspace(0, 1, 101))
    np.testing.assert_allclose(pdfs.pit(), qp_pit.pit_samps, rtol=0, atol=1e-12)
    assert summarize(pdfs.p, EDGES, z_true)["pit_ks"] == pytest.approx(
        qp_pit.evaluate_PIT_KS().statistic, abs=1e-12
    )
