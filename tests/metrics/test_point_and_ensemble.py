"""Point statistics and ensemble combination."""

import numpy as np
import pytest
from scipy import stats

from clapkit.metrics import bias, combine, delta_z, gaussian_pdfs, outlier_fraction, sigma_mad


def test_sigma_mad_estimates_gaussian_scatter_and_ignores_outliers():
    rng = np.random.default_rng(0)
    z = rng.uniform(0.05, 0.3, 50_000)
    dz = rng.normal(0.01, 0.02, z.size)
    dz[:2000] = 0.5  # 4% catastrophic outliers barely move the robust scatter
    z_phot = z + dz * (1 + z)
    assert sigma_mad(z_phot, z) == pytest.approx(0.02, rel=0.06)
    assert bias(z_phot[2000:], z[2000:]) == pytest.approx(0.01, abs=1e-3)
    gaussian_tail = stats.norm.sf(2.0) + stats.norm.cdf(-3.0)  # |0.01 + 0.02 x| > 0.05
    expected = 0.04 + 0.96 * gaussian_tail
    assert outlier_fraction(z_phot, z, 0.05) == pytest.approx(expected, abs=3e-3)


def test_outlier_threshold_is_strict_and_uses_one_plus_z():
    z_true = np.array([0.0, 1.0])
    z_phot = np.array([0.0625, 1.125])  # both δz == 0.0625, exact in binary
    assert delta_z(z_phot, z_true).tolist() == [0.0625, 0.0625]
    assert outlier_fraction(z_phot, z_true, 0.0625) == 0.0
    assert outlier_fraction(z_phot, z_true, 0.062) == 1.0


def test_point_statistics_reject_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        sigma_mad([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="index 1"):
        bias([0.1, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        sigma_mad([], [])
    with pytest.raises(ValueError, match="threshold"):
        outlier_fraction([0.1], [0.1], threshold=0)


def test_harmonic_combination_of_identical_members_is_the_member():
    edges = np.linspace(0, 1, 101)
    p = gaussian_pdfs([0.3, 0.6], [0.05, 0.1], edges)
    assert np.allclose(combine([p, p, p]), p)
    assert np.allclose(combine([p, p], "arithmetic"), p)


def test_harmonic_is_narrower_than_arithmetic_for_disagreeing_members():
    edges = np.linspace(0, 1, 401)
    a = gaussian_pdfs([0.45], [0.05], edges)
    b = gaussian_pdfs([0.55], [0.05], edges)
    centers = 0.5 * (edges[1:] + edges[:-1])

    def std(p):
        mean = (p * centers).sum()
        return np.sqrt((p * (centers - mean) ** 2).sum())

    harmonic, arithmetic = combine([a, b]), combine([a, b], "arithmetic")
    assert std(harmonic) < std(a) < std(arithmetic)
    assert np.allclose(harmonic.sum(axis=1), 1.0)


def test_harmonic_zero_rule_and_fallback_warning():
    a = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    b = np.array([[0.25, 0.5, 0.25], [0.0, 0.0, 1.0]])
    with pytest.warns(UserWarning, match="1 of 2 galaxies"):
        result = combine([a, b])
    assert result[0, 2] == 0.0  # zero in a member -> zero in the combination
    assert np.allclose(result[1], [0.5, 0.0, 0.5])  # no common support -> arithmetic mean


def test_combine_rejects_mismatched_members():
    with pytest.raises(ValueError, match="member 1"):
        combine([np.ones((2, 2)) / 2, np.ones((2, 3)) / 3])
    with pytest.raises(ValueError, match=r"member 1 .*negative"):
        combine([np.ones((1, 2)) / 2, np.array([[1.5, -0.5]])])
    with pytest.raises(ValueError, match="at least one"):
        combine([])
    with pytest.raises(ValueError, match="harmonic"):
        combine([np.ones((1, 2)) / 2], how="geometric")
