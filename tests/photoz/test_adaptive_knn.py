"""CLAP's adaptive KNN against a literal reference, on known cases, and its input checks."""

from fractions import Fraction

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.metrics import histogram_pdfs
from clapkit.photoz.adaptive_knn import (
    PUBLISHED_K_GRID,
    STATE_KEYS,
    VALID_STATE_KEYS,
    AdaptiveKNN,
    choose_k,
    k_grid,
    log_k_grid,
    published_k_grid,
    training_pit_table,
)

EDGES = np.linspace(0.0, 0.4, 81)
K_GRID = log_k_grid(5, 100, 25)


def training_neighbours(train_latent, k_max, include_self):
    """Each training galaxy's PIT neighbours: itself first, then its nearest others (or
    only the others)."""
    d_train = ((train_latent[:, None, :] - train_latent[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d_train, np.inf)
    others = np.argsort(d_train, axis=1, kind="stable")
    if include_self:
        return np.column_stack([np.arange(len(train_latent)), others[:, : k_max - 1]])
    return others[:, :k_max]


def reference(
    train_latent, train_z, target_latent, k_grid, edges, n_pit_bins=100, include_self=True
):
    """The published procedure, literally: per galaxy, per k, plain NumPy."""
    k_max = k_grid[-1]
    train_nb = training_neighbours(train_latent, k_max, include_self)
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


def test_published_k_grid_is_the_papers_piecewise_linear_grid():
    grid = published_k_grid()
    assert grid.size == 120 and grid[0] == 5 and grid[-1] == 2000
    steps = np.diff(grid)
    # Steps of 5 up to 200, of 10 to 600, of 20 to 1000 and of 50 to 2000.
    for low, high, step in ((5, 200, 5), (200, 600, 10), (600, 1000, 20), (1000, 2000, 50)):
        inside = (grid[1:] > low) & (grid[1:] <= high)
        assert np.all(steps[inside] == step), (low, high)
    assert published_k_grid(5, 42).tolist() == [5, 10, 15, 20, 25, 30, 35, 40]
    assert published_k_grid(190, 640).tolist()[:4] == [190, 195, 200, 210]
    with pytest.raises(ValidationError, match=r"no value in 1\.\.4"):
        published_k_grid(1, 4)
    # The default of the estimator is the published grid.
    assert np.array_equal(AdaptiveKNN(EDGES).k_grid, PUBLISHED_K_GRID)


def test_log_k_grid_has_120_distinct_log_spaced_values():
    grid = log_k_grid()
    assert grid.size == 120 and grid[0] == 5 and grid[-1] == 2000
    assert np.all(np.diff(grid) > 0)
    # Log-spaced at the top, where rounding does not bunch values.
    assert np.allclose(np.diff(np.log(grid[-30:])), np.log(400) / 119, rtol=0.2)
    assert k_grid("log", 5, 12, 120).tolist() == list(range(5, 13))  # capped at the integers
    with pytest.raises(ValidationError, match="k grid must be one of"):
        k_grid("linear", 5, 100)


@pytest.mark.parametrize("include_self", [True, False])
def test_matches_the_literal_reference(include_self):
    x_train, z_train, x_target, _ = informative_problem(300, 50, 0, noise=0.03)
    # Coarse redshifts make ties in the PIT common, so their half counting is exercised.
    z_train = np.round(z_train, 2)
    model = AdaptiveKNN(EDGES, k_grid=K_GRID, batch_size=70, pit_includes_self=include_self)
    result = model.fit(x_train, z_train).predict(x_target)
    k_ref, p_ref = reference(
        x_train.astype(np.float32).astype(np.float64),
        z_train,
        x_target.astype(np.float32).astype(np.float64),
        K_GRID,
        EDGES,
        include_self=include_self,
    )
    assert np.array_equal(result.k, k_ref)
    assert np.array_equal(result.p, p_ref)
    assert result.neighbours.shape == (50, K_GRID[-1])
    assert np.allclose(result.local_pit_hist.sum(axis=1), 1.0)


def test_the_validation_pit_table_matches_option_2_literally():
    x_train, z_train, x_target, _ = informative_problem(300, 40, 7, noise=0.03)
    x_valid, z_valid, _, _ = informative_problem(80, 0, 8, noise=0.03)
    grid = log_k_grid(5, 60, 10)
    model = AdaptiveKNN(EDGES, k_grid=grid, n_pit_bins=20, batch_size=90)
    result = model.fit(x_train, z_train, x_valid, z_valid).predict(x_target)
    xt, xv = (a.astype(np.float32).astype(np.float64) for a in (x_train, x_valid))
    # Each training galaxy's nearest validation galaxy lends its spec-z ...
    nearest = np.argmin(((xt[:, None, :] - xv[None, :, :]) ** 2).sum(-1), axis=1)
    z_lent = z_valid[nearest]
    # ... ranked among the training galaxy's own PIT neighbours (itself included).
    train_nb = training_neighbours(xt, grid[-1], include_self=True)
    for j in (0, 17, 299):
        for c, k in enumerate(grid):
            zn = z_train[train_nb[j, :k]]
            expected = (np.sum(zn < z_lent[j]) + 0.5 * np.sum(zn == z_lent[j])) / k
            assert model.pit_valid_[j, c] == pytest.approx(expected, abs=1e-6)
    # A target's validation histogram reads that table at its chosen k.
    for t in (0, 39):
        c = int(np.flatnonzero(grid == result.k[t])[0])
        bins = model.pit_bin_valid_[result.neighbours[t, : result.k[t]], c]
        expected = np.bincount(bins, minlength=20) / result.k[t]
        np.testing.assert_allclose(result.valid_pit_hist[t], expected)
    averaged = result.recalibration_hist("train_valid")
    np.testing.assert_allclose(averaged, 0.5 * (result.local_pit_hist + result.valid_pit_hist))
    np.testing.assert_allclose(averaged.sum(axis=1), 1.0, atol=1e-6)
    # Without a validation table, option 2 is refused by name.
    plain = AdaptiveKNN(EDGES, k_grid=grid).fit(x_train, z_train).predict(x_target[:2])
    assert plain.valid_pit_hist is None
    with pytest.raises(ValidationError, match="train_valid"):
        plain.recalibration_hist("train_valid")
    with pytest.raises(ValidationError, match="both valid_latent and valid_z"):
        AdaptiveKNN(EDGES, k_grid=grid).fit(x_train, z_train, valid_latent=x_valid)


def test_training_pdfs_leave_each_galaxy_out():
    x_train, z_train, _, _ = informative_problem(200, 0, 9, noise=0.02)
    model = AdaptiveKNN(EDGES, k_grid=log_k_grid(5, 40, 6)).fit(x_train, z_train)
    result = model.predict_training()
    assert result.p.shape == (200, EDGES.size - 1)
    assert not np.any(result.neighbours == np.arange(200)[:, None])
    # Each row is what predicting that galaxy from the others gives.
    others = AdaptiveKNN(EDGES, k_grid=model.k_grid).fit(x_train[1:], z_train[1:])
    alone = others.predict(x_train[:1])
    np.testing.assert_array_equal(result.neighbours[0, :10] - 1, alone.neighbours[0, :10])


def test_neighbour_distance_compares_targets_with_the_training_set():
    x_train, z_train, x_target, _ = informative_problem(400, 20, 10, noise=0.02)
    model = AdaptiveKNN(EDGES, k_grid=log_k_grid(5, 40, 6)).fit(x_train, z_train)
    assert model.train_distance_.shape == (400,) and np.all(model.train_distance_ > 0)
    far = x_target + 5.0  # far outside the training cloud
    near_d = model.neighbour_distance(x_target, model.predict(x_target).neighbours)
    far_d = model.neighbour_distance(far, model.predict(far).neighbours)
    assert np.all(far_d > model.train_distance_.max())
    assert np.median(near_d) < 3 * np.median(model.train_distance_)
    # The mean distance to the first ten neighbours, by hand.
    nb = model.predict(x_target[:1]).neighbours[0, :10]
    by_hand = np.linalg.norm(
        x_train[nb].astype(np.float32) - x_target[:1].astype(np.float32), axis=1
    )
    assert near_d[0] == pytest.approx(by_hand.mean(), rel=1e-5)


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
    grid = log_k_grid(5, 400, 30)
    result = AdaptiveKNN(EDGES, k_grid=grid).fit(latent[:1000], z[:1000]).predict(latent[1000:])
    # Random neighbours: a small-k PIT histogram is noisy, a large-k one nearly flat.
    assert np.median(result.k) >= 200
    assert np.all(result.k > 20)


def test_informative_latents_choose_moderate_k_and_narrow_pdfs():
    x_train, z_train, x_target, z_target = informative_problem(3000, 200, 2, noise=0.005)
    grid = log_k_grid(5, 1000, 40)
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
        log_k_grid(5, 10, 20)
    with pytest.raises(ValidationError, match="k_min must be an integer >= 1, got 0"):
        log_k_grid(0, 10, 3)
    with pytest.raises(ValidationError, match=r"k_max must be an integer >= 5, got 40\.5"):
        published_k_grid(5, 40.5)
    with pytest.raises(ValidationError, match=r"n must be an integer >= 1, got 2\.5"):
        k_grid("log", 5, 40, 2.5)
    with pytest.raises(ValidationError, match="k_max must be an integer >= 5, got 4"):
        log_k_grid(5, 4, 1)
    with pytest.raises(ValidationError, match=r"n must be an integer >= 1, got 3\.0"):
        log_k_grid(5, 10, 3.0)
    with pytest.raises(ValidationError, match="n_pit_bins must be an integer >= 1, got 0"):
        AdaptiveKNN(EDGES, k_grid=K_GRID, n_pit_bins=0)
    with pytest.raises(ValidationError, match="n_pit_bins must be at most 65536"):
        AdaptiveKNN(EDGES, k_grid=K_GRID, n_pit_bins=70_000)
    with pytest.raises(ValidationError, match=r"n_pit_bins must be an integer >= 1, got 1\.5"):
        training_pit_table(np.zeros((2, 5)), [0.1, 0.2], [1, 2], n_pit_bins=1.5)
    with pytest.raises(ValidationError, match="batch_size must be an integer >= 1, got True"):
        AdaptiveKNN(EDGES, k_grid=K_GRID, batch_size=True)
    model = AdaptiveKNN(EDGES, k_grid=K_GRID)
    with pytest.raises(ValidationError, match="fit"):
        model.predict(np.zeros((2, 4)))
    x_train, z_train, _, _ = informative_problem(150, 0, 3)
    model.fit(x_train, z_train)
    with pytest.raises(ValidationError, match="3 dimensions"):
        model.predict(np.zeros((2, 3)))
    with pytest.raises(ValidationError, match="row 1, column 2"):
        model.predict(np.where(np.arange(8).reshape(2, 4) == 6, np.inf, 0.0))


@pytest.mark.parametrize("include_self", [True, False])
def test_duplicate_training_latents_match_the_literal_reference(include_self):
    # A galaxy's copies are its neighbours at distance 0; only its own row is left out of
    # the search (and, with include_self, put first).
    x_train, z_train, x_target, _ = informative_problem(260, 30, 4, noise=0.02)
    x_train[50:60] = x_train[3]
    z_train[50:60] = z_train[3]
    x_target[:5] = x_train[3]
    model = AdaptiveKNN(EDGES, k_grid=K_GRID, batch_size=64, pit_includes_self=include_self)
    result = model.fit(x_train, z_train).predict(x_target)
    k_ref, p_ref = reference(
        x_train.astype(np.float32).astype(np.float64),
        z_train,
        x_target.astype(np.float32).astype(np.float64),
        K_GRID,
        EDGES,
        include_self=include_self,
    )
    assert np.array_equal(result.k, k_ref)
    assert np.array_equal(result.p, p_ref)


def test_state_round_trip_restores_the_model():
    x_train, z_train, x_target, _ = informative_problem(500, 40, 5)
    x_valid, z_valid, _, _ = informative_problem(100, 0, 11)
    model = AdaptiveKNN(EDGES, k_grid=K_GRID, n_pit_bins=50, pit_includes_self=False)
    model.fit(x_train, z_train, x_valid, z_valid)
    state = model.state()
    assert set(state) == set(STATE_KEYS) | set(VALID_STATE_KEYS)
    assert state["train_latent"].dtype == np.float32
    assert state["n_pit_bins"].shape == () and int(state["n_pit_bins"]) == 50
    # As read back from a file: plain arrays, copied, a 0-d integer for n_pit_bins.
    restored = AdaptiveKNN.from_state({key: np.array(value) for key, value in state.items()})
    assert restored.n_pit_bins == 50 and restored.dim_ == 4
    assert restored.pit_includes_self is False
    assert np.array_equal(restored.pit_bin_valid_, model.pit_bin_valid_)
    assert np.array_equal(restored.train_distance_, model.train_distance_)
    assert np.array_equal(restored.k_grid, model.k_grid)
    assert np.array_equal(restored.edges, model.edges)
    assert np.array_equal(restored.pit_, model.pit_)
    assert np.array_equal(restored.pit_bin_, model.pit_bin_)
    assert restored.pit_bin_.dtype == model.pit_bin_.dtype
    first, again = model.predict(x_target), restored.predict(x_target)
    for field in ("k", "neighbours", "local_pit_hist", "w1", "p", "valid_pit_hist"):
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
    bad = {**state, "pit_valid": state["pit"]}
    with pytest.raises(ValidationError, match="not both"):
        AdaptiveKNN.from_state(bad)
    bad = {**state, "train_distance": state["train_distance"][:3]}
    with pytest.raises(ValidationError, match="train_distance must have shape"):
        AdaptiveKNN.from_state(bad)
