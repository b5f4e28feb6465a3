"""CRPS against closed forms and brute-force integration; point estimates and quantiles."""

import numpy as np
import pytest
from scipy import integrate

from clapkit.metrics import crps, crps_gaussian, gaussian_pdfs, point_estimate, quantile


@pytest.mark.parametrize("z", [-6.0, -1.0, 0.0, 0.37, 2.5, 7.0])
def test_crps_of_fine_gaussian_matches_closed_form(z):
    edges = np.linspace(-6, 6, 4001)
    p = gaussian_pdfs([0.2], [0.8], edges)
    assert crps(p, edges, [z])[0] == pytest.approx(
        crps_gaussian(0.2, 0.8, z)[0], rel=1e-4, abs=1e-6
    )


def test_crps_of_uniform_is_cubic():
    y = np.linspace(0, 1, 11)
    expected = y**3 / 3 + (1 - y) ** 3 / 3
    assert np.allclose(crps(np.ones((11, 1)), [0.0, 1.0], y), expected)


def test_crps_matches_numerical_integration_on_random_uneven_bins():
    rng = np.random.default_rng(0)
    edges = np.sort(np.concatenate([[0.0, 1.0], rng.uniform(0, 1, 12)]))
    p = rng.dirichlet(np.ones(13), size=5)
    p[0, 3:7] = 0
    p[0] /= p[0].sum()
    z = np.array([0.31, -0.2, 1.4, edges[5], 0.999])
    values = crps(p, edges, z)
    for i in range(5):

        def integrand(x, i=i):
            cdf = np.interp(x, edges, np.concatenate([[0.0], np.cumsum(p[i])]))
            return (cdf - (x >= z[i])) ** 2

        points = sorted({*edges.tolist(), float(z[i])})
        expected = integrate.quad(integrand, -1.0, 2.0, points=points, limit=200)[0]
        assert values[i] == pytest.approx(expected, abs=1e-9)


def test_crps_is_zero_only_for_a_perfect_narrow_pdf_and_grows_with_distance():
    edges = np.linspace(0, 1, 1001)
    p = gaussian_pdfs([0.5], [0.001], edges)
    near, far = crps(np.vstack([p, p]), edges, [0.5, 0.7])
    assert near < 1e-3
    assert far == pytest.approx(0.2, abs=1e-3)  # |z_phot - z_true| for a delta


def test_point_estimates_of_symmetric_and_skewed_pdfs():
    edges = np.linspace(0, 1, 201)
    p = gaussian_pdfs([0.4], [0.05], edges)
    for kind in ("mean", "median", "mode"):
        assert point_estimate(p, edges, kind)[0] == pytest.approx(0.4, abs=3e-3)
    skewed = np.array([[0.6, 0.3, 0.1]])
    e = [0.0, 1.0, 2.0, 3.0]
    assert point_estimate(skewed, e, "mean")[0] == pytest.approx(0.6 * 0.5 + 0.3 * 1.5 + 0.1 * 2.5)
    assert point_estimate(skewed, e, "median")[0] == pytest.approx(0.5 / 0.6)
    assert point_estimate(skewed, e, "mode")[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="mean"):
        point_estimate(skewed, e, "average")


def test_float32_pdfs_give_float64_estimates_close_to_float64():
    edges = np.linspace(0, 1, 181)
    p = gaussian_pdfs(np.linspace(0.2, 0.8, 50), np.full(50, 0.03), edges)
    low = point_estimate(p.astype(np.float32), edges)
    assert low.dtype == np.float64
    assert np.allclose(low, point_estimate(p, edges), atol=1e-5)


def test_quantiles_invert_the_cdf():
    edges = np.array([0.0, 1.0, 2.0, 4.0])
    p = np.array([[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]])
    q = quantile(p, edges, [0.0, 0.1, 0.35, 0.75, 1.0])
    assert np.allclose(q[0], [0.0, 0.5, 1.5, 3.0, 4.0])
    assert np.allclose(q[1], [1.0, 1.1, 1.35, 1.75, 2.0])
    assert quantile(p, edges, 0.5).shape == (2,)
    unsorted = quantile(p, edges, [0.75, 0.1])
    assert np.allclose(unsorted[0], [3.0, 0.5])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quantile(p, edges, [1.5])
