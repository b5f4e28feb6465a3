"""pynndescent behind NeighbourIndex: recall against the exact search, the same output
contract, reproducibility, its checks, and adaptive-KNN calibration close to exact."""

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.metrics import pit, wasserstein_to_uniform
from clapkit.photoz.adaptive_knn import AdaptiveKNN, log_k_grid
from clapkit.photoz.baselines import KNNPhotoZ
from clapkit.photoz.clap_config import CLAPConfig
from clapkit.photoz.neighbours import NeighbourIndex, check_neighbour_search
from clapkit.photoz.pipeline import resolve_config

N_REF, N_QUERY, DIM, K = 4000, 300, 16, 50
OPTIONS = {"random_state": 3, "epsilon": 0.3}


def clustered(n, rng, centres):
    """Galaxy-like latents: 12 clusters in 16-d with unequal spreads, spread mostly
    along 4 directions (a latent space has few effective dimensions), and a redshift
    that follows the first coordinate."""
    label = rng.integers(0, 12, n)
    spread = np.r_[np.ones(4), np.full(DIM - 4, 0.1)] * rng.uniform(0.3, 1.0, 12)[label, None]
    x = centres[label] + rng.normal(0.0, 1.0, (n, DIM)) * spread
    z = np.clip(0.2 + 0.03 * x[:, 0] + rng.normal(0, 0.01, n), 0.0, 0.4)
    return x.astype(np.float32), z


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    centres = rng.normal(0.0, 3.0, (12, DIM))
    ref, z = clustered(N_REF, rng, centres)
    query, zq = clustered(N_QUERY, rng, centres)
    approx = NeighbourIndex(ref, "pynndescent", **OPTIONS)
    exact = NeighbourIndex(ref)
    return ref, z, query, zq, approx, exact


def distances(ref, query, rows):
    return ((ref[rows].astype(np.float64) - query[:, None, :].astype(np.float64)) ** 2).sum(-1)


def recall(found, truth):
    return (
        np.mean([np.intersect1d(a, b).size for a, b in zip(found, truth, strict=True)])
        / (truth.shape[1])
    )


def test_recall_against_exact(data):
    _, _, query, _, approx, exact = data
    # Measured: 0.993 at k = 50 (4000 references in 12 clusters, epsilon 0.3).
    assert recall(approx.search(query, K), exact.search(query, K)) >= 0.95
    # k far beyond the graph's 30 edges walks to most, not all, true neighbours: measured
    # 0.851 at k = 500 on this set. The bound guards the walk, not a promise of accuracy.
    assert recall(approx.search(query, 500), exact.search(query, 500)) >= 0.8


def test_same_output_contract(data):
    ref, _, query, _, approx, _ = data
    got = approx.search(query, K)
    assert got.shape == (N_QUERY, K) and got.dtype == np.int32
    assert got.min() >= 0 and got.max() < N_REF
    assert all(np.unique(row).size == K for row in got)
    d = distances(ref, query, got)
    assert np.all(np.diff(d, axis=1) >= 0)
    assert approx.search(query[:0], K).shape == (0, K)


def test_exclusion_of_self(data):
    ref, _, _, _, approx, exact = data
    rows = np.arange(0, N_REF, 20)
    got = approx.search(ref[rows], K, exclude=rows)
    assert got.shape == (rows.size, K)
    assert not np.any(got == rows[:, None])
    assert recall(got, exact.search(ref[rows], K, exclude=rows)) >= 0.95  # measured 1.0
    # Without the exclusion the point itself, at distance 0, comes first.
    assert np.array_equal(approx.search(ref[rows], 3)[:, 0], rows)


def test_ties_ordered_like_the_exact_search():
    # Each point three times: equal distances, which both searches order by lower index.
    ref = np.repeat(np.random.default_rng(1).normal(size=(60, 4)), 3, axis=0)
    query = ref[::7] + 0.01
    approx = NeighbourIndex(ref, "pynndescent", random_state=0, n_neighbors=10).search(query, 9)
    exact = NeighbourIndex(ref).search(query, 9)
    same_set = np.array([set(a) == set(b) for a, b in zip(approx, exact, strict=True)])
    assert same_set.mean() >= 0.8
    assert np.array_equal(approx[same_set], exact[same_set])


def test_seeded_reproducibility(data):
    ref, _, query, _, approx, _ = data
    again = NeighbourIndex(ref, "pynndescent", **OPTIONS)
    assert np.array_equal(again.search(query, K), approx.search(query, K))
    assert np.array_equal(approx.search(query, K), approx.search(query, K))


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("annoy", {}, "neighbour search must be one of"),
        ("exact", {"epsilon": 0.1}, "exact neighbour search takes no options"),
        ("pynndescent", {"n_neighbours": 10}, "unknown pynndescent options"),
        ("pynndescent", {"epsilon": -0.1}, "epsilon"),
        ("pynndescent", {"n_neighbors": 1}, "n_neighbors"),
        ("pynndescent", {"diversify_prob": 1.5}, "diversify_prob"),
        ("pynndescent", {"random_state": 1.5}, "random_state"),
        ("pynndescent", {"n_trees": 0}, "n_trees"),
    ],
)
def test_bad_method_or_options(method, options, message):
    with pytest.raises(ValidationError, match=message):
        check_neighbour_search(method, options)
    with pytest.raises(ValidationError, match=message):
        NeighbourIndex(np.zeros((5, 2)), method, **options)


def test_settings_are_checked_and_recorded():
    config = CLAPConfig(neighbour_search="pynndescent", neighbour_options={"epsilon": 0.3})
    recorded = config.to_dict()
    assert recorded["neighbour_search"] == "pynndescent"
    assert recorded["neighbour_options"]["epsilon"] == 0.3
    assert recorded["neighbour_options"]["random_state"] == 0  # defaults written out
    assert CLAPConfig(**recorded).to_dict() == recorded
    assert CLAPConfig().to_dict()["neighbour_search"] == "exact"
    with pytest.raises(ValidationError, match="neighbour search must be one of"):
        CLAPConfig(neighbour_search="faiss")
    with pytest.raises(ValidationError, match="unknown pynndescent options"):
        CLAPConfig(neighbour_search="pynndescent", neighbour_options={"k": 3})
    with pytest.raises(ValidationError, match=r"knn_photometry: .*no options"):
        resolve_config({"knn_photometry": {"neighbour_options": {"epsilon": 0.1}}})
    config = resolve_config({"preset": "tiny", "clap": {"neighbour_search": "pynndescent"}})
    assert config["clap"]["neighbour_search"] == "pynndescent"
    with pytest.raises(ValidationError, match="neighbour search"):
        resolve_config({"clap": {"neighbour_search": "nope"}})


def test_adaptive_knn_calibration_close_to_exact(data):
    ref, z, query, zq, _, _ = data
    edges = np.linspace(0.0, 0.4, 41)
    grid = log_k_grid(5, 200, 12)
    runs = {}
    for method, options in (("exact", None), ("pynndescent", OPTIONS)):
        model = AdaptiveKNN(
            edges, grid, n_pit_bins=20, neighbour_search=method, neighbour_options=options
        ).fit(ref, z)
        result = model.predict(query)
        runs[method] = (result, wasserstein_to_uniform(pit(result.p, edges, zq)))
    exact, approx = runs["exact"], runs["pynndescent"]
    # Measured: PIT W1 0.0306 exact, 0.0291 pynndescent (difference 0.0015), the same k
    # for 99.7% of the targets, PDFs 0.009 apart in L1. The tolerance, 0.01, is below the
    # bootstrap spread of W1 on these 300 targets (0.013): the approximation must not move
    # the calibration by more than this test set can resolve.
    assert abs(exact[1] - approx[1]) < 0.01
    assert np.mean(exact[0].k == approx[0].k) > 0.95
    assert np.abs(exact[0].p - approx[0].p).sum(axis=1).mean() < 0.05


def test_photometry_knn_accepts_pynndescent(data):
    ref, z, query, _, _, _ = data
    edges = np.linspace(0.0, 0.4, 41)
    exact = KNNPhotoZ(edges, 20).fit(ref, z).predict(query)
    approx = KNNPhotoZ(edges, 20, "pynndescent", OPTIONS).fit(ref, z).predict(query)
    assert approx.shape == exact.shape
    assert np.allclose(approx.sum(axis=1), 1.0)
    assert np.abs(exact - approx).sum(axis=1).mean() < 0.05
