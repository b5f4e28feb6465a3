"""CLAP recalibration: flat PIT leaves PDFs alone, a skewed PIT moves them where truths fall."""

import numpy as np
import pytest
from scipy import stats

from clapkit.metrics import gaussian_pdfs, pit
from clapkit.photoz.recalibrate import fit_pit_polynomial, recalibrate

EDGES = np.linspace(0, 1, 201)


def test_polynomial_fit_recovers_a_quadratic_density():
    n_bins = 50
    u = (np.arange(n_bins) + 0.5) / n_bins
    density = 0.75 + 3 * (u - 0.5) ** 2  # integrates to 0.75 + 0.25 = 1
    coeffs = fit_pit_polynomial((density / n_bins)[None, :])
    assert coeffs[0] == pytest.approx([1.5, -3.0, 3.0], abs=1e-9)


def test_flat_pit_histogram_leaves_pdfs_unchanged():
    p = gaussian_pdfs([0.3, 0.6], [0.05, 0.1], EDGES)
    assert np.allclose(recalibrate(p, EDGES, np.full((2, 100), 0.01)), p)


def test_recalibration_fixes_a_biased_population():
    rng = np.random.default_rng(0)
    n = 4000
    mu = rng.uniform(0.3, 0.7, n)
    z = rng.normal(mu + 0.03, 0.05)  # truths sit high in their PDFs
    p = gaussian_pdfs(mu, np.full(n, 0.05), EDGES)
    before = pit(p, EDGES, z)
    histogram = np.histogram(before, bins=100, range=(0, 1))[0] / n
    fixed = recalibrate(p, EDGES, np.tile(histogram, (n, 1)))
    after = pit(fixed, EDGES, z)
    assert (
        stats.kstest(after, "uniform").statistic < 0.5 * stats.kstest(before, "uniform").statistic
    )
    assert np.allclose(fixed.sum(axis=1), 1.0)


def test_vanishing_weights_keep_the_raw_pdf_with_a_warning():
    # A U-shaped PIT histogram fits a parabola that is negative around u = 0.5, which is
    # where the CDF of a one-bin PDF sits.
    p = np.array([[0.0, 1.0, 0.0, 0.0]])
    u_shaped = np.zeros((1, 10))
    u_shaped[0, [0, 9]] = 0.5
    with pytest.warns(UserWarning, match="keep their raw PDFs"):
        result = recalibrate(p, [0, 1, 2, 3, 4], u_shaped, cdf_at="centre")
    assert np.array_equal(result, p)


def test_edge_evaluation_is_the_published_formula():
    # CLAP_knn_recalibration.py: p * polyval(polyfit(pit_grid, hist, 2), cumsum(p)), then
    # renormalised (the histogram in fractions: its scale cancels).
    rng = np.random.default_rng(3)
    p = gaussian_pdfs(rng.uniform(0.2, 0.8, 20), rng.uniform(0.01, 0.1, 20), EDGES)
    hist = rng.dirichlet(np.full(100, 20.0), size=20)
    grid = (np.arange(100) + 0.5) / 100
    expected = np.array(
        [
            row * np.polyval(np.polyfit(grid, h, 2), np.cumsum(row))
            for row, h in zip(p, hist, strict=True)
        ]
    )
    assert np.all(expected >= 0)  # no clipping in this case
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(recalibrate(p, EDGES, hist), expected, rtol=1e-8, atol=1e-12)
    # The centre evaluation differs, most for PDFs only a few bins wide.
    centre = recalibrate(p, EDGES, hist, cdf_at="centre")
    assert not np.allclose(centre, expected)
    with pytest.raises(ValueError, match="cdf_at"):
        recalibrate(p, EDGES, hist, cdf_at="middle")


def test_bad_histograms_are_refused():
    p = gaussian_pdfs([0.5], [0.1], EDGES)
    with pytest.raises(ValueError, match="row 0"):
        recalibrate(p, EDGES, np.full((1, 10), 0.2))
    with pytest.raises(ValueError, match="2 rows for 1 PDFs"):
        recalibrate(p, EDGES, np.full((2, 10), 0.1))
    with pytest.raises(ValueError, match="shape"):
        fit_pit_polynomial(np.full((1, 2), 0.5))
