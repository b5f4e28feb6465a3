"""Every entry point refuses invalid PDFs; summaries and bin tables agree with direct calls."""

import numpy as np
import pytest

from clapkit.metrics import (
    PDFs,
    calibration_table,
    check_pdfs,
    coverage,
    crps,
    gaussian_pdfs,
    histogram_pdfs,
    pit,
    point_estimate,
    summarize,
)

EDGES = np.linspace(0, 1, 11)
GOOD = np.full((3, 10), 0.1)
Z = np.array([0.1, 0.5, 0.9])
ENTRY_POINTS = [
    lambda p, e, z: pit(p, e, z),
    lambda p, e, z: crps(p, e, z),
    lambda p, e, z: coverage(p, e, z, [0.68]),
    lambda p, e, z: point_estimate(p, e),
    lambda p, e, z: summarize(p, e, z),
    lambda p, e, z: PDFs(p, e, z_true=z),
]


def corrupt(kind):
    p = GOOD.copy()
    if kind == "nan":
        p[1, 4] = np.nan
    elif kind == "inf":
        p[2, 7] = np.inf
    elif kind == "negative":
        p[1, 2] = -0.05
        p[1, 3] = 0.15
    elif kind == "unnormalised":
        p[2] *= 1.5
    return p


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nan", "non-finite value nan at galaxy 1, bin 4"),
        ("inf", "non-finite value inf at galaxy 2, bin 7"),
        ("negative", "negative probability -0.05 at galaxy 1, bin 2"),
        ("unnormalised", "galaxy 2 sums to 1.5"),
    ],
)
def test_invalid_pdfs_are_refused_everywhere(entry, kind, message):
    with pytest.raises(ValueError, match=message):
        entry(corrupt(kind), EDGES, Z)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_shapes_edges_and_truths_are_checked_everywhere(entry):
    with pytest.raises(ValueError, match=r"shape \(N, B\)"):
        entry(GOOD[0], EDGES, Z)
    with pytest.raises(ValueError, match="needs 11 values"):
        entry(GOOD, EDGES[:-1], Z)
    with pytest.raises(ValueError, match="increase strictly"):
        entry(GOOD, EDGES[::-1], Z)
    if entry is not ENTRY_POINTS[3]:
        with pytest.raises(ValueError, match=r"z_true must have shape \(3,\)"):
            entry(GOOD, EDGES, Z[:2])
        with pytest.raises(ValueError, match="index 1"):
            entry(GOOD, EDGES, np.array([0.1, np.nan, 0.2]))


def test_renormalise_only_when_asked_and_say_so():
    with pytest.warns(UserWarning, match="renormalised 1 of 3 rows"):
        fixed = check_pdfs(corrupt("unnormalised"), EDGES, normalize=True)
    assert np.allclose(fixed.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="sums to zero"):
        check_pdfs(np.zeros((1, 10)), EDGES, normalize=True)


def test_validation_keeps_float32_without_copy():
    p = GOOD.astype(np.float32)
    assert check_pdfs(p, EDGES) is p


def test_histogram_pdfs_counts_and_rejects_samples_off_the_grid():
    p = histogram_pdfs([[0.05, 0.05, 0.95, 1.0]], EDGES)
    assert p[0, 0] == 0.5 and p[0, 9] == 0.5
    with pytest.raises(ValueError, match="galaxy 0 lies outside the grid"):
        histogram_pdfs([[0.5, 1.2]], EDGES)


def test_summary_agrees_with_direct_calls():
    rng = np.random.default_rng(0)
    mu = rng.uniform(0.2, 0.8, 3000)
    edges = np.linspace(0, 1, 201)
    z = rng.normal(mu, 0.05)
    p = gaussian_pdfs(mu, np.full(mu.size, 0.05), edges)
    s = summarize(p, edges, z)
    assert s["n"] == 3000
    assert s["crps"] == pytest.approx(crps(p, edges, z).mean())
    assert [s["coverage_68"], s["coverage_95"]] == pytest.approx(
        list(coverage(p, edges, z, [0.68, 0.95]))
    )
    assert abs(s["coverage_68"] - 0.68) < 0.04 and abs(s["coverage_95"] - 0.95) < 0.02


def test_calibration_table_bins_match_subsets():
    rng = np.random.default_rng(1)
    n = 2000
    mu = rng.uniform(0.2, 0.8, n)
    edges = np.linspace(0, 1, 101)
    z = rng.normal(mu, 0.05)
    # Over-confident only for galaxies with by > 0.5: the table must localise it.
    by = rng.uniform(0, 1, n)
    sigma = np.where(by > 0.5, 0.01, 0.05)
    p = gaussian_pdfs(mu, sigma, edges)
    by[:7] = np.nan
    table = calibration_table(p, edges, z, by, bins=[0.0, 0.5, 1.0])
    assert table.meta["n_unbinned"] == 7
    assert table["n"].sum() == n - 7
    low = (by <= 0.5) & np.isfinite(by)
    assert table["crps"][0] == pytest.approx(crps(p[low], edges, z[low]).mean())
    assert table["coverage_68"][1] < 0.4 < table["coverage_68"][0]
    quantile_table = calibration_table(p, edges, z, np.arange(n), bins=4)
    assert quantile_table["n"].tolist() == [500, 500, 500, 500]


def test_calibration_table_empty_bins_are_nan_and_bad_bins_refused():
    p = np.full((2, 10), 0.1)
    table = calibration_table(p, EDGES, [0.5, 0.5], [0.1, 0.2], bins=[0.0, 0.5, 1.0])
    assert table["n"].tolist() == [2, 0]
    assert np.isnan(table["sigma_mad"][1])
    with pytest.raises(ValueError, match="strictly increasing"):
        calibration_table(p, EDGES, [0.5, 0.5], [0.1, 0.2], bins=[0.5, 0.5])
    with pytest.raises(ValueError, match="one value per galaxy"):
        calibration_table(p, EDGES, [0.5, 0.5], [0.1], bins=2)
    with pytest.raises(ValueError, match="bins must be an integer >= 1, got 0"):
        calibration_table(p, EDGES, [0.5, 0.5], [0.1, 0.2], bins=0)
    with pytest.raises(ValueError, match=r"bins must be an integer >= 1, got 2\.5"):
        calibration_table(p, EDGES, [0.5, 0.5], [0.1, 0.2], bins=2.5)


def test_pdfs_class_wraps_the_functions():
    edges = np.linspace(0, 1, 101)
    pdfs = PDFs.from_gaussian(
        [0.3, 0.6, 0.5], [0.05, 0.05, 0.1], edges, z_true=[0.3, 0.7, 0.5], ids=[7, 8, 9]
    )
    assert np.allclose(pdfs.pit(), pit(pdfs.p, edges, pdfs.z_true))
    sub = pdfs[[2, 0]]
    assert sub.ids.tolist() == [9, 7] and sub.z_true.tolist() == [0.5, 0.3]
    assert pdfs.density().sum(axis=1) == pytest.approx(np.full(3, 100.0))
    no_truth = PDFs(pdfs.p, edges)
    with pytest.raises(ValueError, match="no z_true"):
        no_truth.pit()
    with pytest.raises(ValueError, match="ids must have shape"):
        PDFs(pdfs.p, edges, ids=[1, 2])
