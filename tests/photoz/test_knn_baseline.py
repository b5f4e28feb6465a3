"""The photometry KNN baseline: PDFs from neighbours, chosen k, and its input checks."""

import numpy as np
import pytest
from astropy.table import Table

from clapkit.metrics import pit, point_estimate, sigma_mad
from clapkit.photoz import KNNPhotoZ, default_edges, photometry_features, select_k

EDGES = np.linspace(0, 0.5, 101)


def toy_survey(n, seed):
    """Redshift is a smooth function of two features, with scatter 0.01."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 2))
    z = np.clip(0.05 + 0.3 * x[:, 0] + 0.05 * x[:, 1] ** 2 + rng.normal(0, 0.01, n), 0, 0.5)
    return x, z


def test_knn_pdfs_are_histograms_of_the_neighbours_redshifts():
    x, z = toy_survey(2000, 0)
    model = KNNPhotoZ(EDGES, k=15).fit(x, z)
    query = x[:5] + 1e-4
    p = model.predict(query)
    neighbours = model.kneighbors(query)
    assert neighbours.shape == (5, 15)
    expected = np.array([np.histogram(z[idx], bins=EDGES)[0] / 15 for idx in neighbours])
    assert np.allclose(p, expected)


def test_knn_recovers_a_smooth_relation():
    x, z = toy_survey(6000, 1)
    model = KNNPhotoZ(EDGES, k=30).fit(x[:4000], z[:4000])
    p = model.predict(x[4000:], batch_size=700)
    assert sigma_mad(point_estimate(p, EDGES), z[4000:]) < 0.02


def test_uninformative_features_give_the_calibrated_marginal():
    # Neighbours are then random draws from the same distribution as the truth.
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (6000, 2))
    z = rng.uniform(0.1, 0.4, 6000)
    p = KNNPhotoZ(EDGES, k=100).fit(x[:4000], z[:4000]).predict(x[4000:])
    u = pit(p, EDGES, z[4000:])
    assert abs(np.mean((u > 0.16) & (u < 0.84)) - 0.68) < 0.04


def test_features_are_standardised_so_units_do_not_matter():
    x, z = toy_survey(1000, 2)
    scaled = x * np.array([1.0, 1000.0])
    a = KNNPhotoZ(EDGES, k=10).fit(x, z).kneighbors(x[:20])
    b = KNNPhotoZ(EDGES, k=10).fit(scaled, z).kneighbors(scaled[:20])
    assert np.array_equal(a, b)


def test_select_k_prefers_more_neighbours_for_noisy_targets():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (3000, 1))
    z = np.clip(0.2 + rng.normal(0, 0.05, 3000), 0, 0.5)  # features carry nothing
    best, scores = select_k(x[:2000], z[:2000], x[2000:], z[2000:], EDGES, (1, 5, 80))
    assert best == 80
    assert scores[1] > scores[5] > scores[80]


def test_bad_inputs_are_refused():
    x, z = toy_survey(100, 4)
    with pytest.raises(ValueError, match="outside the grid"):
        KNNPhotoZ(EDGES[:10]).fit(x, z)
    with pytest.raises(ValueError, match="row 3, column 1"):
        bad = x.copy()
        bad[3, 1] = np.nan
        KNNPhotoZ(EDGES).fit(bad, z)
    with pytest.raises(ValueError, match="fit"):
        KNNPhotoZ(EDGES).kneighbors(x)
    model = KNNPhotoZ(EDGES, k=5).fit(x, z)
    with pytest.raises(ValueError, match="fitted on 2"):
        model.predict(np.ones((3, 3)))
    with pytest.raises(ValueError, match="exceeds"):
        KNNPhotoZ(EDGES, k=500).fit(x, z)
    with pytest.raises(ValueError, match="constant"):
        KNNPhotoZ(EDGES).fit(np.column_stack([x[:, 0], np.ones(100)]), z)
    for k in (0, 2.5, True):
        with pytest.raises(ValueError, match=f"k must be an integer >= 1, got {k}"):
            KNNPhotoZ(EDGES, k=k)


def test_photometry_features_and_their_errors():
    t = Table({"mag_u": [19.0, 20.0], "mag_g": [18.0, 18.5], "mag_r": [17.0, 17.2]})
    x, names = photometry_features(t, bands=("u", "g", "r"))
    assert names == ["u-g", "g-r", "mag_r"]
    assert np.allclose(x, [[1.0, 1.0, 17.0], [1.5, 1.3, 17.2]])
    with pytest.raises(ValueError, match=r"lacks magnitude columns \['mag_i'\]"):
        photometry_features(t, bands=("g", "r", "i"))
    t["mag_g"][1] = np.nan
    with pytest.raises(ValueError, match="mag_g is not finite at row 1"):
        photometry_features(t, bands=("u", "g", "r"))


def test_default_edges():
    edges = default_edges(np.array([0.01, 0.2, 0.33]), n_bins=180)
    assert edges.size == 181 and edges[0] == 0 and edges[-1] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="z_max"):
        default_edges(np.array([0.1]), z_max=0.0)
