"""CLAP ensemble: smoothing keeps mass and the mean; the harmonic mean narrows agreement."""

import numpy as np
import pytest

from clapkit.metrics import gaussian_pdfs, point_estimate
from clapkit.photoz.ensemble import ensemble_pdfs, smooth_pdfs, smooth_pdfs_adaptive

EDGES = np.linspace(0, 1, 201)


def test_smoothing_keeps_the_mean_and_widens_by_the_kernel():
    p = gaussian_pdfs([0.5], [0.02], EDGES)
    smoothed = smooth_pdfs(p, sigma_bins=3.0)
    centers = 0.5 * (EDGES[1:] + EDGES[:-1])

    def variance(q):
        mean = (q * centers).sum()
        return (q * (centers - mean) ** 2).sum()

    assert smoothed.sum() == pytest.approx(1.0)
    assert point_estimate(smoothed, EDGES)[0] == pytest.approx(0.5, abs=1e-9)
    # Variances add: 0.02² + (3 bins × 0.005)².
    assert variance(smoothed) == pytest.approx(0.02**2 + 0.015**2, rel=0.02)


def test_adaptive_smoothing_widens_each_pdf_by_its_own_spread():
    # Two Gaussians of different widths: σ_smooth = α σ each, so variances grow by (1 + α²).
    p = gaussian_pdfs([0.3, 0.6], [0.02, 0.06], EDGES)
    centers = 0.5 * (EDGES[1:] + EDGES[:-1])

    def variance(q):
        mean = q @ centers
        return q @ centers**2 - mean**2

    alpha = 0.5
    smoothed = smooth_pdfs_adaptive(p, EDGES, alpha)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0)
    np.testing.assert_allclose(point_estimate(smoothed, EDGES), [0.3, 0.6], atol=1e-9)
    np.testing.assert_allclose(variance(smoothed), variance(p) * (1 + alpha**2), rtol=0.02)
    # The published α = 0.05 changes a PDF by well under a percent of its width.
    light = smooth_pdfs_adaptive(p, EDGES)
    np.testing.assert_allclose(np.sqrt(variance(light)), np.sqrt(variance(p)), rtol=0.005)


def test_adaptive_smoothing_loses_mass_at_the_grid_edge_then_renormalises():
    # mode="constant": zeros beyond the grid, so a PDF piled on the first bin stays there.
    p = np.zeros((1, 200))
    p[0, :3] = [0.5, 0.3, 0.2]
    smoothed = smooth_pdfs_adaptive(p, EDGES, alpha=2.0)
    assert smoothed.sum() == pytest.approx(1.0)
    assert smoothed[0, 0] > 0.2
    with pytest.raises(ValueError, match="equal-width"):
        smooth_pdfs_adaptive(p, np.r_[EDGES[:-1], 1.5])
    with pytest.raises(ValueError, match="alpha"):
        smooth_pdfs_adaptive(p, EDGES, alpha=0)


def test_ensemble_of_identical_members_is_the_smoothed_member():
    p = gaussian_pdfs([0.3, 0.7], [0.03, 0.05], EDGES)
    fixed = ensemble_pdfs([p, p, p], smoothing="fixed", sigma_bins=1.0)
    assert np.allclose(fixed, smooth_pdfs(p, 1.0))
    adaptive = ensemble_pdfs([p, p, p], EDGES)
    assert np.allclose(adaptive, smooth_pdfs_adaptive(p, EDGES))


def test_ensemble_of_disjoint_spikes_is_not_empty():
    a = np.zeros((1, 200))
    b = np.zeros((1, 200))
    a[0, 100] = b[0, 104] = 1.0
    p = ensemble_pdfs([a, b], smoothing="fixed", sigma_bins=2.0)
    assert 100 <= int(p.argmax()) <= 104
    assert p.sum() == pytest.approx(1.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="sigma_bins"):
        smooth_pdfs(np.full((1, 4), 0.25), sigma_bins=0)
    with pytest.raises(ValueError, match="at least one"):
        ensemble_pdfs([])
    with pytest.raises(ValueError, match="needs the bin edges"):
        ensemble_pdfs([np.full((1, 4), 0.25)])
    with pytest.raises(ValueError, match="smoothing must be one of"):
        ensemble_pdfs([np.full((1, 4), 0.25)], smoothing="box")
    with pytest.raises(ValueError, match="negative"):
        smooth_pdfs([[1.5, -0.5]])
