"""Overlapping (published) neighbourhoods, weights and predictive efficiency of the local
tests: analytic truths, seeded nulls, measured false-positive rates, stored results."""

import json

import numpy as np
import pytest
from astropy.table import Table

from clapkit.errors import ValidationError
from clapkit.interpret.causal_graph import CausalGraph, LocalTestResult
from clapkit.interpret.local_tests import disjoint_neighbourhoods, local_test, run_local_tests
from clapkit.interpret.neighbourhood_stats import (
    correlation_with,
    distance_weights,
    latent_cells,
    predictive_efficiency,
    weighted_correlation,
)
from clapkit.interpret.overlapping import overlapping_neighbourhoods, published_null_p
from clapkit.interpret.settings import CausalSettings


def hidden_sample(seed: int, n: int = 600):
    """Y = a + b with a latent space that knows a: ``b`` is hidden, ``noise`` not."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n))
    latent = np.column_stack([a, 0.3 * rng.normal(size=n)])
    return latent, a + b, b + 0.5 * rng.normal(size=n), rng.normal(size=n)


# -- analytic truths ---------------------------------------------------------------------


def test_predictive_efficiency_is_one_for_an_exact_quadratic_and_near_zero_when_independent():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 50))
    y = 0.3 - 2.0 * x + 0.7 * x**2
    np.testing.assert_allclose(predictive_efficiency(y, x), 1.0, atol=1e-9)
    # Independent: two regressors explain 2 / (k - 1) of the variance by chance.
    k = 4000
    eff = predictive_efficiency(rng.normal(size=(10, k)), rng.normal(size=(10, k)))
    assert np.all(eff >= 0) and eff.mean() < 5 * 2 / (k - 1)


def test_predictive_efficiency_matches_a_polynomial_fit_and_is_zero_without_variance():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(2, 3, 30))
    y += x**2
    for xi, yi, eff in zip(x, y, predictive_efficiency(y, x), strict=True):
        residual = yi - np.polyval(np.polyfit(xi, yi, 2), xi)
        assert eff == pytest.approx(1 - residual.var() / yi.var(), abs=1e-10)
    assert predictive_efficiency(np.ones((1, 10)), x[:1, :10]).tolist() == [0.0]
    # A constant predictor explains nothing (the design is rank-deficient there).
    assert predictive_efficiency(y[:1], np.ones((1, 30)))[0] == pytest.approx(0, abs=1e-12)


def test_weighted_correlation_with_equal_weights_is_pearson_and_weights_select_members():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2, 5, 40))
    y += 0.5 * x
    pearson = np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(weighted_correlation(x, y), pearson, atol=1e-12)
    np.testing.assert_allclose(weighted_correlation(x, y, np.full((5, 40), 3.0)), pearson)
    w = np.ones((5, 40))
    w[:, 30:] = 0.0  # members without weight do not count
    first = np.array([np.corrcoef(a[:30], b[:30])[0, 1] for a, b in zip(x, y, strict=True)])
    np.testing.assert_allclose(weighted_correlation(x, y, w), first, atol=1e-12)
    # Integer weights count a member that many times.
    w = rng.integers(1, 4, size=40)
    repeated = np.corrcoef(np.repeat(x[0], w), np.repeat(y[0], w))[0, 1]
    assert weighted_correlation(x[:1], y[:1], w[None])[0] == pytest.approx(repeated)
    # The batched form used by the nulls agrees.
    np.testing.assert_allclose(
        correlation_with(y, w[None] + 0 * y)(x), weighted_correlation(x, y, w[None] + 0 * y)
    )


def test_weighted_correlation_refuses_bad_weights():
    x = np.ones((2, 4)) * np.arange(4)
    with pytest.raises(ValidationError, match="weights must have shape"):
        weighted_correlation(x, x, np.ones(4))
    with pytest.raises(ValidationError, match="non-negative"):
        weighted_correlation(x, x, -np.ones((2, 4)))
    with pytest.raises(ValidationError, match="all zero in 1 rows"):
        weighted_correlation(x, x, np.r_[[np.ones(4)], [np.zeros(4)]])


def test_distance_weights_fall_with_latent_distance_from_the_centre():
    rng = np.random.default_rng(3)
    latent = rng.normal(size=(300, 2))
    members = overlapping_neighbourhoods(latent, 21)
    w = distance_weights(latent, members, np.arange(300))
    assert np.all(w[:, 0] == 1.0)  # the centre
    assert np.all(np.diff(w, axis=1) <= 1e-12)  # nearest first, so weights fall
    assert np.all((w > 0) & (w <= 1))
    # The median member (the 11th of 21, nearest first) sits where the kernel is exp(-1/2).
    np.testing.assert_allclose(w[:, 10], np.exp(-0.5), rtol=1e-9)


def test_overlapping_neighbourhoods_are_every_galaxys_true_knn_set_itself_first():
    rng = np.random.default_rng(4)
    latent = rng.normal(size=(200, 3))
    members = overlapping_neighbourhoods(latent, 15)
    assert members.shape == (200, 15) and np.all(members[:, 0] == np.arange(200))
    d = np.linalg.norm(latent[:, None] - latent[None], axis=2)
    np.testing.assert_array_equal(
        np.sort(members, axis=1), np.sort(np.argsort(d, axis=1)[:, :15], axis=1)
    )


def test_latent_cells_partition_the_sample_by_position_and_are_seeded():
    latent = np.random.default_rng(5).normal(size=(1000, 2))
    cells = latent_cells(latent, 20, seed=1)
    assert cells.shape == (1000,) and set(cells.tolist()) == set(range(50))
    np.testing.assert_array_equal(cells, latent_cells(latent, 20, seed=1))
    assert not np.array_equal(cells, latent_cells(latent, 20, seed=2))
    # Cells are compact: galaxies of a cell are far closer than random pairs.
    spread = np.mean([latent[cells == c].std(axis=0).mean() for c in range(50)])
    assert spread < 0.5 * latent.std(axis=0).mean()


# -- the tests ---------------------------------------------------------------------------


def test_the_overlapping_scheme_is_seeded_and_records_the_published_summary():
    latent, mass, hidden, noise = hidden_sample(0)
    first = local_test(latent, mass, hidden, neighbourhoods="overlapping", n_permutations=99)
    again = local_test(latent, mass, hidden, neighbourhoods="overlapping", n_permutations=99)
    other = local_test(
        latent, mass, hidden, neighbourhoods="overlapping", n_permutations=99, seed=1
    )
    assert first.k == 100 and first.n_centres == 600 and first.cell_size == 10
    np.testing.assert_array_equal(first.centres, np.arange(600))
    assert first.to_dict() == again.to_dict()  # the nulls are seeded
    assert not np.array_equal(first.centre_r_permuted, other.centre_r_permuted)
    np.testing.assert_array_equal(first.centre_r, other.centre_r)  # the data are not random
    assert first.effect == pytest.approx(first.centre_r.mean())
    assert first.effect_permuted == pytest.approx(first.centre_r_permuted.mean())
    assert first.effect > 0.3 > abs(first.effect_permuted)
    assert first.verdict == "dependent" and first.p_value == 0.01
    null = local_test(latent, mass, noise, neighbourhoods="overlapping", n_permutations=99)
    assert null.verdict == "independent"
    assert first.pred_efficiency > null.pred_efficiency + 0.2


def test_the_weighted_published_null_resamples_and_is_seeded():
    latent, mass, hidden, _ = hidden_sample(1)
    options = {"neighbourhoods": "overlapping", "weights": "distance", "n_permutations": 39}
    first = local_test(latent, mass, hidden, **options)
    assert first.weights == "distance" and first.verdict == "dependent"
    assert first.to_dict() == local_test(latent, mass, hidden, **options).to_dict()
    unweighted = local_test(latent, mass, hidden, neighbourhoods="overlapping", n_permutations=39)
    assert not np.allclose(first.centre_r, unweighted.centre_r)
    assert abs(first.effect_permuted) < 0.1


def test_disjoint_weighted_tests_find_the_hidden_variable_only():
    latent, mass, hidden, noise = hidden_sample(2, 1500)
    found = local_test(latent, mass, hidden, k=30, weights="distance", n_permutations=199)
    assert found.verdict == "dependent" and found.weights == "distance"
    assert found.effect_permuted is None and found.centre_r_permuted is None
    null = local_test(latent, mass, noise, k=30, weights="distance", n_permutations=199)
    assert null.verdict == "independent"


def test_the_stored_predictive_efficiency_is_that_of_each_neighbourhood():
    latent, mass, hidden, _ = hidden_sample(3, 1200)
    result = local_test(latent, mass, hidden, k=30, n_permutations=99, seed=4)
    centre_rng = np.random.default_rng(4).spawn(2)[0]
    centres, members = disjoint_neighbourhoods(latent, 30, seed=centre_rng)
    np.testing.assert_array_equal(centres, result.centres)
    expected = predictive_efficiency(mass[members], hidden[members])
    np.testing.assert_allclose(result.centre_pred_efficiency, expected)
    assert result.pred_efficiency == pytest.approx(expected.mean())
    assert result.pred_efficiency_spread == pytest.approx(expected.std())


def test_conditioned_predictive_efficiency_removes_what_the_condition_explains():
    # Y and X share only c: unconditionally X predicts Y, given c (as published) it does not.
    rng = np.random.default_rng(6)
    n = 1500
    a, c = rng.normal(size=(2, n))
    catalog = Table({"log_mstar": a + 2 * c + 0.3 * rng.normal(size=n), "x": c, "c": c})
    catalog["x"] = c + 0.1 * rng.normal(size=n)
    graph = run_local_tests(
        a[:, None], catalog, external=["x"], conditioning="c", k=30, n_permutations=99
    )
    assert graph.result("x").pred_efficiency > 0.8
    assert graph.result("x", ["c"]).pred_efficiency < 0.2


# -- validity: measured false-positive rates ---------------------------------------------


def _null_sample(seed: int, n: int):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, n))
    return np.column_stack([a, 0.3 * rng.normal(size=n)]), a + b, rng.normal(size=n)


@pytest.mark.parametrize("weights", ["none", "distance"])
def test_the_default_verdict_keeps_its_false_positive_rate_on_pure_noise(weights):
    scheme = CausalSettings().neighbourhoods
    assert scheme == "disjoint"
    repeats, rejected = 100, 0
    for seed in range(repeats):
        latent, mass, noise = _null_sample(seed, 300)
        result = local_test(
            latent, mass, noise, k=10, weights=weights, n_permutations=99, seed=seed,
            neighbourhoods=scheme,
        )  # fmt: skip
        rejected += result.verdict == "dependent"
    assert rejected / repeats <= 0.10


def test_overlapping_nulls_on_pure_noise_the_published_one_is_anti_conservative():
    repeats, published, cells = 60, 0, 0
    for seed in range(repeats):
        latent, mass, noise = _null_sample(seed, 300)
        result = local_test(
            latent, mass, noise, k=50, neighbourhoods="overlapping", n_permutations=39,
            seed=seed,
        )  # fmt: skip
        published += published_null_p(result.centre_r, result.centre_r_permuted) < 0.05
        cells += result.p_value < 0.05
    assert cells / repeats <= 0.10
    assert published / repeats > 0.25  # far above α = 0.05: why it decides nothing


# -- stored results ----------------------------------------------------------------------


def test_an_overlapping_result_round_trips_through_json_and_files(tmp_path):
    latent, mass, hidden, _ = hidden_sample(7, 400)
    catalog = Table({"log_mstar": mass, "hidden": hidden, "z": latent[:, 1]})
    graph = run_local_tests(
        latent, catalog, external=["hidden"], k=40, n_permutations=39,
        neighbourhoods="overlapping", weights="distance",
    )  # fmt: skip
    result = graph.result("hidden", ["z"])
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    again = LocalTestResult.from_dict(data)
    assert again.to_dict() == result.to_dict()
    np.testing.assert_array_equal(again.centre_r_permuted, result.centre_r_permuted)
    assert (again.neighbourhoods, again.weights, again.cell_size) == ("overlapping", "distance", 4)
    loaded = CausalGraph.load(graph.save(tmp_path / "tests.json"))
    assert loaded.to_dict() == graph.to_dict()
    row = loaded.edges[0]
    assert row["neighbourhoods"] == "overlapping" and row["effect_permuted"] is not None


def test_results_stored_before_the_schemes_read_with_their_defaults():
    latent, mass, hidden, _ = hidden_sample(8, 1200)
    data = local_test(latent, mass, hidden, k=30, n_permutations=99).to_dict()
    for key in (
        "neighbourhoods", "weights", "cell_size", "pred_efficiency", "pred_efficiency_spread",
        "centre_pred_efficiency", "effect_permuted", "centre_r_permuted",
    ):  # fmt: skip
        del data[key]
    old = LocalTestResult.from_dict(data)
    assert (old.neighbourhoods, old.weights) == ("disjoint", "none")
    assert old.pred_efficiency is None and old.centre_pred_efficiency is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"neighbourhoods": "every"}, "neighbourhoods must be one of"),
        ({"weights": "inverse"}, "weights must be one of"),
        ({"centre_pred_efficiency": [0.1]}, r"centre_pred_efficiency must have shape \(2,\)"),
        ({"centre_r_permuted": [0.1, 0.2, 0.3]}, r"centre_r_permuted must have shape \(2,\)"),
    ],
)
def test_a_result_refuses_bad_new_fields(change, message):
    values = dict(
        effect=0.2, effect_err=0.03, p_value=0.004, verdict="dependent", alpha=0.05,
        conditioned_on=(), adjust_latent=False, k=30, n_centres=2, n_permutations=249,
        seed=0, centres=[3, 8], centre_r=[0.25, 0.15], centre_p=[0.01, 0.2],
    )  # fmt: skip
    with pytest.raises(ValidationError, match=message):
        LocalTestResult(**{**values, **change})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"neighbourhoods": "every"}, "neighbourhoods must be one of"),
        ({"weights": "gauss"}, "weights must be one of"),
        ({"neighbourhoods": "overlapping", "n_centres": 20}, "n_centres applies to disjoint"),
        ({"cell_size": 5}, "cell_size applies to overlapping"),
        ({"neighbourhoods": "overlapping", "k": 300}, "at least 600 are needed"),
        ({"neighbourhoods": "overlapping", "cell_size": 1}, "cell_size must be an integer >= 2"),
        ({"neighbourhoods": "overlapping", "cell_size": 300}, "cell_size must be at most half"),
    ],
)
def test_the_schemes_refuse_bad_settings(change, message):
    latent, mass, hidden, _ = hidden_sample(9, 500)
    with pytest.raises(ValidationError, match=message):
        local_test(latent, mass, hidden, **{"k": 20, "n_permutations": 39, **change})
