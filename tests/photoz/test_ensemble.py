"""CLAP ensemble: smoothing keeps mass and the mean; the harmonic mean narrows agreement."""

import numpy as np
import pytest

from clapkit.metrics import gaussian_pdfs, point_estimate
from clapkit.photoz.ensemble import ensemble_pdfs, smooth_pdfs

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


def test_ensemble_of_identical_members_is_the_smoothed_member():
    p = gaussian_pdfs([0.3, 0.7], [0.03, 0.05], EDGES)
    assert np.allclose(ensemble_pdfs([p, p, p], sigma_bins=1.0), smooth_pdfs(p, 1.0))


def test_ensemble_of_disjoint_spikes_is_not_empty():
    a = np.zeros((1, 200))
    b = np.zeros((1, 200))
    a[0, 100] = b[0, 104] = 1.0
    p = ensemble_pdfs([a, b], sigma_bins=2.0)
    assert 100 <= int(p.argmax()) <= 104
    assert p.sum() == pytest.approx(1.0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="sigma_bins"):
        smooth_pdfs(np.full((1, 4), 0.25), sigma_bins=0)
    with pytest.raises(ValueError, match="at least one"):
        ensemble_pdfs([])
    with pytest.raises(ValueError, match="negative"):
        smooth_pdfs([[1.5, -0.5]])
