"""PIT, HPD levels, coverage and uniformity tests against analytic truths and scipy."""

import numpy as np
import pytest
from scipy import stats

from clapkit.metrics import (
    anderson_darling_uniform,
    coverage,
    gaussian_pdfs,
    hpd_level,
    pit,
    pit_uniformity,
    wasserstein_to_uniform,
)

EDGES = np.linspace(-1.0, 2.0, 601)
LEVELS = np.array([0.1, 0.5, 0.68, 0.9, 0.95])


def draw(n, scale_truth, seed=0):
    """Gaussian PDFs of width 0.05 and truths drawn with width 0.05 * scale_truth."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.3, 0.7, n)
    sigma = np.full(n, 0.05)
    z = rng.normal(mu, sigma * scale_truth)
    return gaussian_pdfs(mu, sigma, EDGES), z


def binomial_tolerance(level, n):
    return 4 * np.sqrt(level * (1 - level) / n) + 2e-3


def test_pit_hand_computed():
    p = [[0.2, 0.3, 0.5]]
    edges = [0.0, 1.0, 2.0, 4.0]
    for z, expected in [
        (0.5, 0.1),
        (1.0, 0.2),
        (1.5, 0.35),
        (3.0, 0.75),
        (4.0, 1.0),
        (-1, 0.0),
        (9, 1.0),
    ]:
        assert pit(p, edges, [z])[0] == pytest.approx(expected)


def test_calibrated_gaussians_give_uniform_pit_and_nominal_coverage():
    p, z = draw(20_000, 1.0)
    u = pit(p, EDGES, z)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    for kind in ("central", "hpd"):
        observed = coverage(p, EDGES, z, LEVELS, kind=kind)
        tolerance = binomial_tolerance(LEVELS, z.size)
        assert np.all(np.abs(observed - LEVELS) < tolerance), (kind, observed)


@pytest.mark.parametrize("kind", ["central", "hpd"])
def test_overconfident_pdfs_undercover_and_underconfident_overcover(kind):
    # Truths scattered twice as wide as the PDFs: the PDFs are over-confident.
    p_narrow, z_wide = draw(5_000, 2.0, seed=1)
    p_wide, z_narrow = draw(5_000, 0.5, seed=2)
    for level, low, high in zip(
        LEVELS,
        coverage(p_narrow, EDGES, z_wide, LEVELS, kind),
        coverage(p_wide, EDGES, z_narrow, LEVELS, kind),
        strict=True,
    ):
        assert low < level - 0.03
        assert high > level + 0.03 or high > 0.99


def test_overconfident_pit_is_u_shaped_and_underconfident_is_peaked():
    p, z = draw(5_000, 2.0, seed=3)
    u = pit(p, EDGES, z)
    tails = np.mean((u < 0.1) | (u > 0.9))
    assert tails > 0.3  # uniform would give 0.2
    p, z = draw(5_000, 0.5, seed=4)
    u = pit(p, EDGES, z)
    assert np.mean((u < 0.1) | (u > 0.9)) < 0.1


def test_biased_pdfs_shift_pit():
    p, z = draw(5_000, 1.0, seed=5)
    assert np.median(pit(p, EDGES, z + 0.05)) > 0.75


def test_hpd_level_hand_computed_and_ties():
    edges = [0.0, 1.0, 2.0, 3.0]
    p = [[0.2, 0.5, 0.3]]
    assert hpd_level(p, edges, [1.5])[0] == pytest.approx(0.25)  # densest bin, half of it
    assert hpd_level(p, edges, [2.5])[0] == pytest.approx(0.5 + 0.15)
    assert hpd_level(p, edges, [0.5])[0] == pytest.approx(0.8 + 0.1)
    # Two bins of equal density share their mass: the truth sits in the middle of both.
    assert hpd_level([[0.5, 0.5]], [0.0, 1.0, 2.0], [0.2])[0] == pytest.approx(0.5)
    # Uneven bins: density, not probability, decides.
    assert hpd_level([[0.5, 0.5]], [0.0, 1.0, 3.0], [2.0])[0] == pytest.approx(0.5 + 0.25)
    assert hpd_level(p, edges, [5.0])[0] == 1.0
    assert hpd_level([[0.0, 1.0, 0.0]], edges, [0.5])[0] == 1.0


def test_hpd_coverage_beats_central_for_skewed_pdfs_only_in_width_not_in_calibration():
    # For a calibrated skewed (log-normal) population both kinds give nominal coverage.
    rng = np.random.default_rng(6)
    edges = np.linspace(0, 5, 1001)
    n = 20_000
    centers = 0.5 * (edges[1:] + edges[:-1])
    density = stats.lognorm(s=0.5, scale=1.0).pdf(centers)
    p = np.tile(density / density.sum(), (n, 1))
    z = rng.lognormal(0.0, 0.5, n)
    z = z[z < 5][:10_000]
    p = p[: z.size]
    for kind in ("central", "hpd"):
        observed = coverage(p, edges, z, LEVELS, kind)
        assert np.all(np.abs(observed - LEVELS) < binomial_tolerance(LEVELS, z.size) + 0.01), kind


def test_coverage_rejects_bad_levels_and_kind():
    p, z = draw(10, 1.0)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        coverage(p, EDGES, z, [0.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        coverage(p, EDGES, z, [1.2])
    with pytest.raises(ValueError, match="central"):
        coverage(p, EDGES, z, [0.5], kind="bogus")


def test_uniformity_matches_scipy():
    rng = np.random.default_rng(7)
    u = rng.uniform(size=500) ** 1.2
    result = pit_uniformity(u)
    ks = stats.kstest(u, "uniform")
    cvm = stats.cramervonmises(u, "uniform")
    ad = stats.goodness_of_fit(
        stats.uniform,
        u,
        known_params={"loc": 0, "scale": 1},
        statistic="ad",
        n_mc_samples=10,
        rng=0,
    )
    assert result["ks"] == pytest.approx(ks.statistic)
    assert result["ks_pvalue"] == pytest.approx(ks.pvalue)
    assert result["cvm"] == pytest.approx(cvm.statistic)
    assert result["cvm_pvalue"] == pytest.approx(cvm.pvalue)
    assert result["ad"] == pytest.approx(ad.statistic)
    assert anderson_darling_uniform(u) == pytest.approx(ad.statistic)


def test_wasserstein_to_uniform_matches_scipy_on_a_fine_grid():
    rng = np.random.default_rng(8)
    u = rng.beta(2, 3, size=300)
    grid = (np.arange(200_000) + 0.5) / 200_000
    assert wasserstein_to_uniform(u) == pytest.approx(stats.wasserstein_distance(u, grid), abs=1e-5)
    assert wasserstein_to_uniform(np.full(10, 0.0)) == pytest.approx(0.5)
    assert wasserstein_to_uniform((np.arange(1000) + 0.5) / 1000) < 1e-3


def test_uniformity_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pit_uniformity(np.array([0.1, 1.2]))
    with pytest.raises(ValueError, match="at least 2"):
        pit_uniformity(np.array([0.5]))
