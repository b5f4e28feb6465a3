"""CLAP's adaptive KNN against a literal reference, on known cases, and its input checks."""

from fractions import Fraction

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.metrics import histogram_pdfs
from clapkit.photoz.adaptive_knn import (
    STATE_KEYS,
    AdaptiveKNN,
    choose_k,
    default_k_grid,
    training_pit_table,
)

EDGES = np.linspace(0.0, 0.4, 81)
K_GRID = default_k_grid(5, 100, 25)


def reference(train_latent, train_z, target_latent, k_grid, edges, n_pit_bins=100):
    """The published procedure, literally: per galaxy, per k, plain NumPy."""
    k_max = k_grid[-1]
    d_train = ((train_latent[:, None, :] - train_latent[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d_train, np.inf)  # neighbours are the *other* training galaxies
    train_nb = np.argsort(d_train, axis=1, kind="stable")[:, :k_max]
    # PIT bins in exact arithmetic: np.histogram on float edges puts a PIT of exactly 0.7
    # in bin 69, because linspace(0, 1, 101)[70] rounds to 0.7000000000000001.
    pit_bin = np.empty((len(train_z), len(k_grid)), dtype=int)
    for j, zj in enumerate(train_z):
        for c, k in enumerate(k_grid):
            zn = train_z[train_nb[j, :k]]
            pit = Fraction(2 * int(np.sum(zn < zj)) + int(np.sum(zn == zj)), 2 * int(k))
            pit_bin[j, c] = min(int(pit * n_pit_bins), n_pit_bins - 1)
    d_target = ((target_latent[:, None, :] - train_latent[None, :, :]) ** 2).sum(-1)
    target_nb = np.argsort(d_target, axis=1, kind="stable")[:, :k_max]
    cdf_uniform = np.arange(1, n_pit_bins + 1) / n_pit_bins
    chosen, pdfs = [], []
    for nb in target_nb:
        w1 = []
        for c, k in enumerate(k_grid):
            h = np.bincount(pit_bin[nb[:k], c], minlength=n_pit_bins)
            w1.append(np.sum(np.abs(np.cumsum(h) / k - cdf_uniform)) / n_pit_bins)
        w1 = np.array(w1)
        # First k on ties; the tolerance absorbs rounding of mathematically equal distances.
        k = k_grid[np.flatnonzero(w1 <= w1.min() + 1e-12)[0]]
        chosen.append(k)
        pdfs.append(histogram_pdfs(train_z[nb[None, :k]], edges)[0])
    return np.array(chosen), np.array(pdfs)


def informative_problem(n_train, n_target, seed, noise=0.01):
    """Latents are redshift plus noise in two dims, pure noise in two more."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.01, 0.39, n_train + n_target)
    latent = np.column_stack(
        [z + rng.normal(0, noise, z.size), z + rng.normal(0, noise, z.size)]
        + [rng.normal(0, 0.05, z.size) for _ in range(2)]
    )
    return latent[:n_train], z[:n_train], latent[n_train:], z[n_train:]


def test_default_k_grid_has_120_distinct_log_spaced_values():
    grid = default_k_grid()
    assert grid.size == 120 and grid[0] == 5 and grid[-1] == 2000
    assert np.all(np.diff(grid) > 0)
    # Log-spaced at the top, where rounding does not bunch values.
    assert np.allclose(np.diff(np.log(grid[-30:])), np.log(400) / 119, rtol=0.2)


def test_matches_the_literal_reference():
    x_train, z_train, x_target, _ = informative_problem(300, 50, 0, noise=0.03)
    # Coarse redshifts make ties in the PIT common, so their half counting is exercised.
    z_train = np.round(z_train, 2)
    result = (
        AdaptiveKNN(EDGES, k_grid=K_GRID, batch_size=70).fit(x_train, z_train).predict(x_target)
    )
    k_ref, p_ref = reference(
        x_train.astype(np.float32).astype(np.float64),
        z_train,
        x_target.astype(np.float32).astype(np.float64),
        K_GRID,
        EDGES,
    )
    assert np.array_equal(result.k, k_ref)
    assert np.array_equal(result.p, p_ref)
    assert result.neighbours.shape == (50, K_GRID[-1])
    assert np.allclose(result.local_pit_hist.sum(axis=1), 1.0)


def test_ties_count_one_half_by_hand():
    # Galaxy 0 has z=0.2; its neighbours have z 0.1, 0.2, 0.3, 0.2, 0.0.
    neighbour_z = np.array([[0.1, 0.2, 0.3, 0.2, 0.0]])
    pit, pit_bin = training_pit_table(neighbour_z, [0.2], [1, 2, 3, 4, 5], n_pit_bins=4)
    # k=1: 1 below -> 1; k=2: 1 + 0.5 -> 0.75; k=3: 1.5/3; k=4: 2/4; k=5: 3/5.
    assert np.allclose(pit[0], [1.0, 0.75, 0.5, 0.5, 0.6])
    assert pit_bin[0].tolist() == [3, 3, 2, 2, 2]


def test_wasserstein_distance_and_local_histogram():
    # Two training galaxies, PIT bins 0 and 3 of 4 at both k: at k=2 the histogram is
    # {0: 1, 3: 1}; CDF at the edges 0.5, 0.5, 0.5, 1 against 0.25, 0.5, 0.75, 1.
    pit_bin = np.array([[0, 0], [3, 3]], dtype=np.uint8)
    k_index, w1, hist = choose_k([[0, 1]], pit_bin, [1, 2], n_pit_bins=4)
    assert k_index.tolist() == [1]
    assert w1[0] == pytest.approx((0.25 + 0 + 0.25) / 4)
    assert hist.tolist() == [[0.5, 0.0, 0.0, 0.5]]


def test_uninformative_latents_choose_large_k():
    rng = np.random.default_rng(1)
    z = rng.uniform(0.01, 0.39, 1200)
    latent = rng.normal(size=(1200, 3))
    grid = default_k_grid(5, 400, 30)
    result = AdaptiveKNN(EDGES, k_grid=grid).fit(latent[:1000], z[:1000]).predict(latent[1000:])
    # Random neighbours: a small-k PIT histogram is noisy, a large-k one nearly flat.
    assert np.median(result.k) >= 200
    assert np.all(result.k > 20)


def test_informative_latents_choose_moderate_k_and_narrow_pdfs():
    x_train, z_train, x_target, z_target = informative_problem(3000, 200, 2, noise=0.005)
    grid = default_k_grid(5, 1000, 40)
    result = AdaptiveKNN(EDGES, k_grid=grid).fit(x_train, z_train).predict(x_target)
    assert np.median(result.k) <= 50
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    mean = result.p @ centres
    spread = np.sqrt(result.p @ centres**2 - mean**2)
    assert np.median(spread) < 0.015
    assert np.median(np.abs(mean - z_target)) < 0.01


@pytest.mark.parametrize(
    ("train_latent", "train_z", "message"),
    [
        (np.zeros((200, 2, 1)), np.full(200, 0.1), "shape"),
        (np.where(np.arange(400).reshape(200, 2) == 7, np.nan, 1.0), np.full(200, 0.1), "row 3"),
        (np.ones((200, 2)), np.full(199, 0.1), "train_z must have shape"),
        (np.ones((200, 2)), np.r_[np.full(199, 0.1), 0.5], "index 199"),
        (np.ones((200, 2)), np.r_[np.nan, np.full(199, 0.1)], "index 0"),
        (np.ones((50, 2)), np.full(50, 0.1), "k_max=100"),
    ],
)
def test_bad_training_input_raises(train_latent, train_z, message):
    with pytest.raises(ValidationError, match=message):
        AdaptiveKNN(EDGES, k_grid=K_GRID).fit(train_latent, train_z)


def test_bad_configuration_and_targets_raise():
    with pytest.raises(ValidationError, match="strictly increasing"):
        AdaptiveKNN(EDGES, k_grid=[5, 5, 10])
    with pytest.raises(ValidationError, match="distinct integers"):
        default_k_grid(5, 10, 20)
    model = AdaptiveKNN(EDGES, k_grid=K_GRID)
    with pytest.raises(ValidationError, match="fit"):
        model.predict(np.zeros((2, 4)))
    x_train, z_train, _, _ = informative_problem(150, 0, 3)
    model.fit(x_train, z_train)
    with pytest.raises(ValidationError, match="3 dimensions"):
        model.predict(np.zeros((2, 3)))
    with pytest.raises(ValidationError, match="row 1, column 2"):
        model.predict(np.where(np.arange(8).reshape(2, 4) == 6, np.inf, 0.0))


def test_duplicate_training_latents_match_the_literal_reference():
    # A galaxy's copies are its neighbours at distance 0; only its own row is left out.
    x_train, z_train, x_target, _ = informative_problem(260, 30, 4, noise=0.02)
    x_train[50:60] = x_train[3]
    z_train[50:60] = z_train[3]
    x_target[:5] = x_train[3]
    result = AdaptiveKNN(EDGES, k_grid=K_GRID, batch_size=64).fit(x_train, z_train)
    result = result.predict(x_target)
    k_ref, p_ref = reference(
        x_train.astype(np.float32).astype(np.float64),
        z_train,
        x_target.astype(np.float32).astype(np.float64),
        K_GRID,
        EDGES,
    )
    assert np.array_equal(result.k, k_ref)
    assert np.array_equal(result.p, p_ref)


def test_state_round_trip_restores_the_model():
    x_train, z_train, x_target, _ = informative_problem(500, 40, 5)
    model = AdaptiveKNN(EDGES, k_grid=K_GRID, n_pit_bins=50).fit(x_train, z_train)
    state = model.state()
    assert set(state) == set(STATE_KEYS)
    assert state["train_latent"].dtype == np.float32
    assert state["n_pit_bins"].shape == () and int(state["n_pit_bins"]) == 50
    # As read back from a file: plain arrays, copied, a 0-d integer for n_pit_bins.
    restored = AdaptiveKNN.from_state({key: np.array(value) for key, value in state.items()})
    assert restored.n_pit_bins == 50 and restored.dim_ == 4
    assert np.array_equal(restored.k_grid, model.k_grid)
    assert np.array_equal(restored.edges, model.edges)
    assert np.array_equal(restored.pit_, model.pit_)
    assert np.array_equal(restored.pit_bin_, model.pit_bin_)
    assert restored.pit_bin_.dtype == model.pit_bin_.dtype
    first, again = model.predict(x_target), restored.predict(x_target)
    for field in ("k", "neighbours", "local_pit_hist", "w1", "p"):
        assert np.array_equal(getattr(first, field), getattr(again, field))


def test_bad_state_raises():
    x_train, z_train, _, _ = informative_problem(200, 0, 6)
    state = AdaptiveKNN(EDGES, k_grid=K_GRID).fit(x_train, z_train).state()
    with pytest.raises(ValidationError, match="call fit"):
        AdaptiveKNN(EDGES).state()
    with pytest.raises(ValidationError, match="lacks pit_bin"):
        AdaptiveKNN.from_state({k: v for k, v in state.items() if k != "pit_bin"})
    bad = {**state, "pit_bin": state["pit_bin"][:-1]}
    with pytest.raises(ValidationError, match="pit and pit_bin must have shape"):
        AdaptiveKNN.from_state(bad)
    bad = {**state, "pit_bin": np.full_like(state["pit_bin"], 100)}
    with pytest.raises(ValidationError, match="pit_bin must hold integers"):
        AdaptiveKNN.from_state(bad)
    bad = {**state, "pit": state["pit"] + 2}
    with pytest.raises(ValidationError, match=r"pit must lie in \[0, 1\]"):
        AdaptiveKNN.from_state(bad)
    bad = {**state, "train_z": state["train_z"][:-1]}
    with pytest.raises(ValidationError, match="train_z must have shape"):
        AdaptiveKNN.from_state(bad)
    bad = {**state, "n_pit_bins": np.array([100])}
    with pytest.raises(ValidationError, match="n_pit_bins must be one integer"):
        AdaptiveKNN.from_state(bad)
    bad = {**state, "k_grid": np.array([5, 10, 400])}
    with pytest.raises(ValidationError, match="k_max=400"):
        AdaptiveKNN.from_state(bad)
