"""Pointwise MI, its decomposition and the Gaussian check, against analytic truths."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from astropy.table import Table
from scipy import stats

from clapkit.errors import ValidationError
from clapkit.interpret.galaxy_types import galaxy_types
from clapkit.interpret.information import (
    GAUSSIAN_TOLERANCE_NATS,
    PROBABILITY_FLOOR,
    TERMS,
    ClassifierConfig,
    ClassifierInputs,
    Decomposition,
    GaussianCheckSettings,
    GaussianModel,
    bin_prior,
    equal_width_bins,
    estimate_information,
    fit_classifier,
    gaussian_check,
    mmi_decomposition,
    pointwise_information,
)
from clapkit.nets.training import TrainingStopped
from clapkit.stopping import clear_stop, request_stop
from clapkit.testing import single_thread_torch

#: Small enough to train three classifiers in a few seconds on one thread, large enough
#: that over seeds 0-9 the estimator error stayed below 0.033 nats (tolerance 0.05).
TINY_CHECK = {"n_train": 4000, "n_test": 2000, "n_bins": 16}
TINY_CLASSIFIER = ClassifierConfig(hidden=(32, 32))


def random_decomposition(n=500, seed=0):
    """Pointwise MIs of mixed sign, as real estimates have."""
    rng = np.random.default_rng(seed)
    mi_1, mi_2 = rng.normal(0.4, 0.5, n), rng.normal(0.3, 0.5, n)
    return Decomposition(mi_1, mi_2, np.maximum(mi_1, mi_2) + rng.normal(0.2, 0.3, n))


# ---------------------------------------------------------------------------------------
# Pointwise MI
# ---------------------------------------------------------------------------------------


def test_perfect_classifier_gains_the_prior_surprise():
    rng = np.random.default_rng(1)
    prior = rng.dirichlet(np.ones(6))
    true_bin = rng.choice(6, size=50, p=prior)
    mi = pointwise_information(np.eye(6)[true_bin], true_bin, prior)
    np.testing.assert_allclose(mi, -np.log(prior[true_bin]), rtol=1e-12)


def test_classifier_returning_the_prior_gains_nothing():
    rng = np.random.default_rng(2)
    prior = rng.dirichlet(np.ones(5))
    true_bin = rng.choice(5, size=40, p=prior)
    mi = pointwise_information(np.tile(prior, (40, 1)), true_bin, prior)
    np.testing.assert_allclose(mi, 0.0, atol=1e-12)


def test_mean_pointwise_mi_is_the_mutual_information_of_a_discrete_joint():
    # With the true p(y | x) as classifier the mean pointwise MI estimates I(X; Y),
    # computed here from the joint table directly
    rng = np.random.default_rng(3)
    joint = rng.dirichlet(np.ones(12)).reshape(3, 4)  # p(x, y)
    p_x, p_y = joint.sum(axis=1), joint.sum(axis=0)
    truth = float(np.sum(joint * np.log(joint / np.outer(p_x, p_y))))
    n = 200_000
    cells = rng.choice(12, size=n, p=joint.ravel())
    x, y = np.divmod(cells, 4)
    mi = pointwise_information((joint / p_x[:, None])[x], y, bin_prior(y, 4))
    assert mi.mean() == pytest.approx(truth, abs=4 * mi.std() / math.sqrt(n))


def test_a_zero_probability_is_floored_not_infinite():
    prior = np.array([0.5, 0.5])
    mi = pointwise_information([[1.0, 0.0], [0.5, 0.5]], [1, 1], prior)
    np.testing.assert_allclose(mi, [math.log(PROBABILITY_FLOOR) - math.log(0.5), 0.0])


def test_bin_prior_counts_and_pseudocount():
    bins = [0, 0, 1, 3, 3, 3]
    np.testing.assert_allclose(bin_prior(bins, 5), [2 / 6, 1 / 6, 0, 3 / 6, 0])
    np.testing.assert_allclose(bin_prior(bins, 5, pseudocount=1.0), np.array([3, 2, 1, 4, 1]) / 11)


def test_a_true_bin_empty_in_training_is_refused_by_name():
    prior = bin_prior([0, 0, 1], 3)
    with pytest.raises(ValidationError, match=r"galaxies \[1\] fall in bins \[2\].*prior"):
        pointwise_information([[0.4, 0.3, 0.3], [0.4, 0.3, 0.3]], [0, 2], prior)


@pytest.mark.parametrize(
    ("probabilities", "true_bin", "prior", "match"),
    [
        ([[0.5, 0.4, 0.0]], [0], None, r"rows \[0\] sum to \[0\.9\]"),
        ([[0.5, 0.5, 0.0]], [3], None, r"true_bin out of range at indices \[0\].*\[0, 2\]"),
        ([[0.5, 0.5, 0.0]], [-1], None, r"true_bin out of range"),
        ([[0.5, 0.5, 0.0]] * 2, [0, 1, 2], None, r"true_bin has 3 entries but .* 2 rows"),
        (
            [[0.5, 0.5, 0.0], [np.nan, 0.5, 0.5]],
            [0, 1],
            None,
            r"finite and >= 0; not in rows \[1\]",
        ),
        ([[1.5, -0.5, 0.0]], [0], None, r"finite and >= 0; not in rows \[0\]"),
        ([[0.5, 0.5, 0.0]], [1.5], None, r"true_bin must hold integer bin indices"),
        ([0.5, 0.5, 0.0], [0], None, r"shape \(N, B\)"),
        ([[0.5, 0.5, 0.0]], [0], [0.5, 0.5], r"prior has 2 bins but probabilities have 3"),
        ([[0.5, 0.5, 0.0]], [0], [0.5, np.nan, 0.5], r"prior must be finite.*bins \[1\]"),
        ([[0.5, 0.5, 0.0]], [0], [0.5, 0.5, 0.5], r"prior must sum to 1, sums to 1\.5"),
    ],
)
def test_pointwise_information_names_bad_input(probabilities, true_bin, prior, match):
    prior = np.full(3, 1 / 3) if prior is None else prior
    with pytest.raises(ValidationError, match=match):
        pointwise_information(probabilities, true_bin, prior)


def test_bin_prior_names_bad_input():
    with pytest.raises(ValidationError, match=r"bins out of range at indices \[2\]"):
        bin_prior([0, 1, 4], 4)
    with pytest.raises(ValidationError, match="bins is empty"):
        bin_prior([], 4)
    with pytest.raises(ValidationError, match="pseudocount"):
        bin_prior([0], 4, pseudocount=-1)


# ---------------------------------------------------------------------------------------
# Decomposition
# ---------------------------------------------------------------------------------------


def test_per_galaxy_decomposition_identities():
    d = random_decomposition()
    np.testing.assert_allclose(d.redundancy + d.unique_1, d.mi_1, atol=1e-12)
    np.testing.assert_allclose(d.redundancy + d.unique_2, d.mi_2, atol=1e-12)
    total = d.redundancy + d.unique_1 + d.unique_2 + d.synergy
    np.testing.assert_allclose(total, d.mi_12, atol=1e-12)
    assert np.all(d.redundancy <= d.mi_1) and np.all(d.redundancy <= d.mi_2)
    # the less informative input of each galaxy has no unique information
    assert np.all(np.minimum(d.unique_1, d.unique_2) == 0)
    assert np.all(d.unique_1 >= 0) and np.all(d.unique_2 >= 0)
    mean = d.mean()
    assert mean["redundancy"] + mean["unique_1"] == pytest.approx(mean["mi_1"])
    assert sum(mean[t] for t in ("redundancy", "unique_1", "unique_2", "synergy")) == (
        pytest.approx(mean["mi_12"])
    )


def test_per_galaxy_redundancy_is_at_most_the_sample_level_one():
    d = random_decomposition()
    per_galaxy, sample = d.mean(), d.mmi()
    shift = sample["redundancy"] - per_galaxy["redundancy"]
    assert shift > 0  # inputs 1 and 2 each win for some galaxies
    assert per_galaxy["unique_1"] == pytest.approx(sample["unique_1"] + shift)
    assert per_galaxy["unique_2"] == pytest.approx(sample["unique_2"] + shift)
    assert per_galaxy["synergy"] == pytest.approx(sample["synergy"] - shift)
    # when one input is the weaker for every galaxy the two agree
    same = Decomposition(d.mi_1 + 10, d.mi_2, d.mi_12 + 10)
    for term in TERMS:
        assert same.mean()[term] == pytest.approx(same.mmi()[term])


def test_mmi_decomposition_closed_forms():
    assert mmi_decomposition(0.3, 0.5, 0.9) == pytest.approx(
        {
            "mi_1": 0.3,
            "mi_2": 0.5,
            "mi_12": 0.9,
            "redundancy": 0.3,
            "unique_1": 0.0,
            "unique_2": 0.2,
            "synergy": 0.4,
        }
    )
    with pytest.raises(ValidationError, match="mi_12 must be finite"):
        mmi_decomposition(0.3, 0.5, math.nan)


def test_by_group_means_over_galaxy_types():
    d = random_decomposition(n=300, seed=4)
    colour = np.random.default_rng(5).uniform(1.0, 3.5, 300)
    labels = galaxy_types(Table({"restframe_u_r": colour}))
    groups = d.by_group(labels)
    assert set(groups) == {"early", "late"}
    for label, means in groups.items():
        rows = labels == label
        assert means["redundancy"] == pytest.approx(np.minimum(d.mi_1, d.mi_2)[rows].mean())
        assert means["mi_12"] == pytest.approx(d.mi_12[rows].mean())
        assert all(type(v) is float for v in means.values())
    json.dumps(groups)
    with pytest.raises(ValidationError, match=r"one entry per galaxy \(300\)"):
        d.by_group(labels[:-1])


def test_bootstrap_intervals_cover_the_means_of_both_decompositions():
    d = random_decomposition()
    intervals = d.intervals(n_resamples=400)
    for kind, values in (("mean", d.mean()), ("mmi", d.mmi())):
        assert list(intervals[kind]) == list(TERMS)
        for term in TERMS:
            lo, hi = intervals[kind][term]
            assert lo <= values[term] <= hi, (kind, term)
    json.dumps(intervals)
    # the same draws for every term: an interval of mi_1 is that of both decompositions
    assert intervals["mean"]["mi_1"] == intervals["mmi"]["mi_1"]


@pytest.mark.parametrize("n", [400, 1600])
def test_bootstrap_interval_width_is_that_of_a_normal_mean(n):
    rng = np.random.default_rng(n)
    d = Decomposition(rng.normal(0.5, 1, n), rng.normal(0.3, 1, n), rng.normal(1.0, 1, n))
    intervals = d.intervals(n_resamples=2000, seed=1)["mean"]
    expected = 2 * stats.norm.ppf(0.975) / math.sqrt(n)  # terms drawn N(mu, 1)
    for term in ("mi_1", "mi_2", "mi_12"):
        lo, hi = intervals[term]
        assert hi - lo == pytest.approx(expected, rel=0.15), term
    lo, hi = d.intervals(n_resamples=2000, confidence=0.5, seed=1)["mean"]["mi_1"]
    assert hi - lo == pytest.approx(2 * stats.norm.ppf(0.75) / math.sqrt(n), rel=0.15)


def test_bootstrap_intervals_repeat_with_the_seed_and_check_their_settings():
    d = random_decomposition(n=200)
    assert d.intervals(n_resamples=100, seed=3) == d.intervals(n_resamples=100, seed=3)
    assert d.intervals(n_resamples=100, seed=3) != d.intervals(n_resamples=100, seed=4)
    with pytest.raises(ValidationError, match="confidence"):
        d.intervals(confidence=1.5)
    with pytest.raises(ValidationError, match="n_resamples"):
        d.intervals(n_resamples=0)
    with pytest.raises(ValidationError, match="no galaxies"):
        Decomposition([], [], []).intervals()


def test_decomposition_names_bad_input():
    with pytest.raises(ValidationError, match="differ in length"):
        Decomposition([0.1, 0.2], [0.1], [0.3, 0.4])
    with pytest.raises(ValidationError, match=r"mi_2 is not finite at galaxies \[1\]"):
        Decomposition([0.1, 0.2], [0.1, np.nan], [0.3, 0.4])
    with pytest.raises(ValidationError, match="mi_1 must be 1-d"):
        Decomposition([[0.1, 0.2]], [[0.1, 0.2]], [[0.3, 0.4]])
    with pytest.raises(ValidationError, match="no galaxies"):
        Decomposition([], [], []).mean()


def test_every_public_name_resolves_and_the_decomposition_loads_without_torch():
    import clapkit.interpret.information as information

    for name in information.__all__:
        assert getattr(information, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        information.nonsense  # noqa: B018
    # a fresh interpreter: this one has torch loaded already
    code = (
        "import sys\n"
        "from clapkit.interpret.information import Decomposition, pointwise_information\n"
        "Decomposition([0.1], [0.2], [0.3]).mean()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ.copy())


# ---------------------------------------------------------------------------------------
# The Gaussian model
# ---------------------------------------------------------------------------------------


def test_uncorrelated_inputs_carry_no_information():
    info = GaussianModel(0.0, 0.0, 0.0).information()
    assert info == pytest.approx(dict.fromkeys(TERMS, 0.0), abs=1e-15)


def test_an_independent_second_input_adds_nothing():
    info = GaussianModel(0.7, 0.0, 0.0).information()
    assert info["mi_12"] == pytest.approx(info["mi_1"])
    assert info["mi_2"] == pytest.approx(0.0, abs=1e-15)
    assert info["synergy"] == pytest.approx(0.0, abs=1e-12)
    assert info["unique_1"] == pytest.approx(info["mi_1"])


def test_a_suppressor_input_is_pure_synergy():
    # X2 is uncorrelated with Y but, correlated with X1, removes X1's noise
    info = GaussianModel(0.6, 0.0, 0.5).information()
    assert info["mi_2"] == pytest.approx(0.0, abs=1e-15)
    assert info["synergy"] == pytest.approx(info["mi_12"] - info["mi_1"])
    assert info["synergy"] > 0.05


@pytest.mark.parametrize("rhos", [(0.8, 0.6, 0.3), (0.5, -0.4, 0.2), (0.3, 0.3, -0.6)])
def test_joint_information_equals_the_determinant_form(rhos):
    # I(Y; X1, X2) = ½ log(det Σ_X / det Σ) for unit-variance Y, an independent formula
    r1, r2, r12 = rhos
    cov = np.array([[1, r1, r2], [r1, 1, r12], [r2, r12, 1]])
    expected = 0.5 * math.log(np.linalg.det(cov[1:, 1:]) / np.linalg.det(cov))
    info = GaussianModel(*rhos).information()
    assert info["mi_12"] == pytest.approx(expected, rel=1e-12)
    assert info["mi_1"] == pytest.approx(-0.5 * math.log(1 - r1**2), rel=1e-12)


def test_closed_forms_match_monte_carlo():
    model = GaussianModel(0.8, 0.6, 0.3)
    n = 200_000
    y, x1, x2 = model.sample(n, seed=6)
    np.testing.assert_allclose(np.corrcoef([y, x1, x2])[0, 1:], [0.8, 0.6], atol=0.01)
    # log density ratio with scipy's normal: mean estimates I(Y; X1)
    ratio = stats.norm.logpdf(y, 0.8 * x1, math.sqrt(1 - 0.64)) - stats.norm.logpdf(y)
    info = model.information()
    assert ratio.mean() == pytest.approx(info["mi_1"], abs=4 * ratio.std() / math.sqrt(n))
    # least squares on the sample: −½ log(residual variance) estimates I(Y; X1, X2)
    design = np.column_stack([x1, x2, np.ones(n)])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    assert -0.5 * math.log(residual.var() / y.var()) == pytest.approx(info["mi_12"], abs=0.01)


def test_invalid_correlations_are_refused():
    with pytest.raises(ValidationError, match="positive-definite"):
        GaussianModel(0.9, 0.9, -0.9)
    with pytest.raises(ValidationError, match=r"rho_1 must be in \(-1, 1\)"):
        GaussianModel(1.0, 0.1, 0.1)


def test_binning_loses_the_predicted_information():
    model = GaussianModel(0.8, 0.6, 0.3)
    continuous = model.information()
    coarse, fine = model.binned_information(32, 5.0), model.binned_information(400, 6.0)
    assert model.binned_information(1, 4.0)["mi_12"] == pytest.approx(0.0, abs=1e-12)
    width = 10.0 / 32
    for s in ("1", "2", "12"):
        key = f"mi_{s}"
        r2 = 1 - math.exp(-2 * continuous[key])
        predicted = width**2 / 24 * (1 / (1 - r2) - 1)
        assert continuous[key] - coarse[key] == pytest.approx(predicted, rel=0.15)
        assert 0 <= continuous[key] - fine[key] < 2e-4


def test_exact_pointwise_values_average_to_the_binned_information():
    model = GaussianModel(0.8, 0.6, 0.3)
    n = 200_000
    y, x1, x2 = model.sample(n, seed=7)
    bins = equal_width_bins(y, 16, 4.0)
    exact = model.pointwise_information(bins, x1, x2, 16, 4.0)
    binned = model.binned_information(16, 4.0)
    for term in ("mi_1", "mi_2", "mi_12"):
        values = getattr(exact, term)
        assert values.mean() == pytest.approx(binned[term], abs=4 * values.std() / math.sqrt(n))


def test_equal_width_bins_clip_into_the_end_bins():
    bins = equal_width_bins([-100.0, -4.0, -3.99, 0.0, 3.99, 4.0, 100.0], 8, 4.0)
    assert bins.tolist() == [0, 0, 0, 4, 7, 7, 7]
    with pytest.raises(ValidationError, match=r"finite; not at \[1\]"):
        equal_width_bins([0.0, np.nan], 8, 4.0)


# ---------------------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------------------


def noise_problem(n, n_features=5, n_bins=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, n_features)), rng.integers(0, n_bins, n)


def test_classifier_keeps_the_best_validation_weights_and_stops_early():
    # pure noise with a wide network: the validation loss falls while the output layer
    # learns the bin frequencies, then rises as the network memorises noise
    x, bins = noise_problem(400)
    config = ClassifierConfig(hidden=(64, 64), epochs=200, patience=3, learning_rate=1e-3)
    rng_state = torch.get_rng_state()
    net = fit_classifier(
        x[:200], bins[:200], 5, features_valid=x[200:], bins_valid=bins[200:], config=config
    )
    assert torch.equal(rng_state, torch.get_rng_state())  # seeded by its own generator
    valid_loss = [record["valid_loss"] for record in net.history]
    best = int(np.argmin(valid_loss))
    assert best > 0 and len(valid_loss) == best + 1 + config.patience < config.epochs
    p = net.predict_proba(x[200:])
    assert p.shape == (200, 5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    cross_entropy = -np.log(p[np.arange(200), bins[200:]]).mean()
    assert cross_entropy == pytest.approx(valid_loss[best], rel=1e-5)


def test_classifier_is_reproducible_from_its_seed():
    x, bins = noise_problem(300, seed=1)
    bins = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)

    def fit(seed):
        config = ClassifierConfig(hidden=(16,), epochs=5, seed=seed)
        net = fit_classifier(
            x[:200], bins[:200], 3, features_valid=x[200:], bins_valid=bins[200:], config=config
        )
        return net.predict_proba(x[200:])

    np.testing.assert_array_equal(fit(0), fit(0))
    assert not np.allclose(fit(0), fit(1))


def test_classifier_names_bad_input():
    x, bins = noise_problem(50)
    valid = {"features_valid": x[:10], "bins_valid": bins[:10]}
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(ValidationError, match=r"features_train is not finite in rows \[7\]"):
        fit_classifier(bad, bins, 5, **valid)
    out_of_range = bins.copy()
    out_of_range[3] = 5
    with pytest.raises(
        ValidationError, match=r"bins_train out of range at indices \[3\].*\[0, 4\]"
    ):
        fit_classifier(x, out_of_range, 5, **valid)
    with pytest.raises(ValidationError, match="features_train has 50 rows but bins_train has 49"):
        fit_classifier(x, bins[:-1], 5, **valid)
    with pytest.raises(ValidationError, match="features_valid has 4 features"):
        fit_classifier(x, bins, 5, features_valid=x[:10, :4], bins_valid=bins[:10])
    net = fit_classifier(x, bins, 5, **valid, config=ClassifierConfig(hidden=(4,), epochs=1))
    with pytest.raises(ValidationError, match="has 2 features; the classifier was trained on 5"):
        net.predict_proba(x[:, :2])


def test_classifier_stops_on_a_stop_request_after_the_epoch():
    # the clapkit command records Ctrl-C/SIGTERM in clapkit.stopping; the shared training
    # loop honours it between epochs
    x, bins = noise_problem(60)
    config = ClassifierConfig(hidden=(4,), epochs=5)
    request_stop()
    try:
        with pytest.raises(TrainingStopped, match="stopped after epoch 0"):
            fit_classifier(x, bins, 5, features_valid=x[:10], bins_valid=bins[:10], config=config)
    finally:
        clear_stop()


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"epochs": 2.5}, r"epochs must be an integer >= 1, got 2\.5"),
        ({"patience": 0}, "patience must be an integer >= 1, got 0"),
        ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
        ({"seed": -1}, "seed must be an integer >= 0, got -1"),
        ({"hidden": (8, 0)}, "hidden widths must be an integer >= 1, got 0"),
    ],
)
def test_classifier_settings_must_be_whole_numbers(setting, match):
    with pytest.raises(ValidationError, match=match):
        ClassifierConfig(**setting)


def test_classifier_restores_the_thread_setting():
    x, bins = noise_problem(60)
    before = torch.get_num_threads()
    config = ClassifierConfig(hidden=(4,), epochs=1, num_threads=before + 1)
    fit_classifier(x, bins, 5, features_valid=x[:10], bins_valid=bins[:10], config=config)
    assert torch.get_num_threads() == before


def test_estimate_information_finds_pure_synergy_in_xor():
    # the bin is the XOR of the inputs' signs: each alone says nothing, both say log 2
    rng = np.random.default_rng(8)
    x1, x2 = rng.normal(size=4000), rng.normal(size=4000)
    bins = ((x1 > 0) ^ (x2 > 0)).astype(int)
    d = estimate_information(
        x1[:3000], x2[:3000], bins[:3000], x1[3000:], x2[3000:], bins[3000:], 2,
        config=ClassifierConfig(hidden=(32, 32), learning_rate=0.01),
    )  # fmt: skip
    mean = d.mean()
    assert abs(mean["mi_1"]) < 0.03 and abs(mean["mi_2"]) < 0.03
    assert math.log(2) - 0.15 < mean["mi_12"] <= math.log(2) + 0.01
    assert mean["synergy"] == pytest.approx(mean["mi_12"], abs=0.06)


def test_estimate_information_names_mismatched_lengths():
    x, bins = noise_problem(50, n_features=2)
    with pytest.raises(ValidationError, match=r"training inputs differ in length"):
        estimate_information(x[:, 0], x[:40, 1], bins, x[:, 0], x[:, 1], bins, 5)
    with pytest.raises(ValidationError, match=r"test inputs differ in length"):
        estimate_information(x[:, 0], x[:, 1], bins, x[:, 0], x[:, 1], bins[:30], 5)
    with pytest.raises(ValidationError, match=r"test galaxies \[0\] fall in bins \[5\]"):
        estimate_information(x[:, 0], x[:, 1], bins, x[:2, 0], x[:2, 1], [5, 0], 6)
    with pytest.raises(ValidationError, match=r"n_bins must be an integer >= 2, got 5\.0"):
        estimate_information(x[:, 0], x[:, 1], bins, x[:, 0], x[:, 1], bins, 5.0)


def blob_images(bins, rng, size=12):
    """One-band stamps whose central blob is bright in bin 1 and faint in bin 0, plus
    noise: the bin is in the pixels only."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    blob = np.exp(-(xx**2 + yy**2) / 8.0)
    amplitude = np.where(np.asarray(bins) == 1, 1.0, 0.2)[:, None, None]
    noise = 0.2 * rng.normal(size=(len(bins), size, size))
    return (amplitude * blob + noise)[:, None].astype(np.float32)


def test_an_image_classifier_reads_the_bin_from_the_pixels():
    # Two equally likely bins written in the images only: MI(images) ≈ log 2, a catalog
    # column of pure noise carries none, and the union (images through the CNN, the
    # column beside them) has all of it, none of it synergy.
    rng = np.random.default_rng(4)
    bins = rng.integers(0, 2, size=1200)
    images = ClassifierInputs(images=blob_images(bins, rng))
    noise = rng.normal(size=(1200, 1))
    train, test = np.arange(900), np.arange(900, 1200)
    config = ClassifierConfig(hidden=(16,), conv_channels=(8,), learning_rate=0.01, epochs=40)
    d = estimate_information(
        images.take(train), noise[train], bins[train], images.take(test), noise[test],
        bins[test], 2, config=config,
    )  # fmt: skip
    mean = d.mean()
    assert math.log(2) - 0.1 < mean["mi_1"] <= math.log(2) + 0.01
    assert abs(mean["mi_2"]) < 0.03
    assert mean["mi_12"] == pytest.approx(mean["mi_1"], abs=0.08)
    assert abs(mean["synergy"]) < 0.08


def test_an_image_classifier_refuses_inputs_unlike_its_training_ones():
    rng = np.random.default_rng(5)
    bins = rng.integers(0, 2, size=60)
    inputs = ClassifierInputs(images=blob_images(bins, rng), features=rng.normal(size=(60, 2)))
    config = ClassifierConfig(hidden=(4,), conv_channels=(2,), epochs=1)
    net = fit_classifier(
        inputs.take(np.arange(40)), bins[:40], 2, features_valid=inputs.take(np.arange(40, 60)),
        bins_valid=bins[40:], config=config,
    )  # fmt: skip
    assert net.predict_proba(inputs).shape == (60, 2)
    with pytest.raises(ValidationError, match=r"images are None .*trained on \(1, 12, 12\)"):
        net.predict_proba(ClassifierInputs(features=inputs.features))
    with pytest.raises(ValidationError, match=r"features has 1 features; .*trained on 2"):
        net.predict_proba(ClassifierInputs(images=inputs.images, features=inputs.features[:, :1]))
    with pytest.raises(ValidationError, match=r"features_valid has 2 features and images None"):
        fit_classifier(inputs, bins, 2, features_valid=inputs.features, bins_valid=bins)
    with pytest.raises(ValidationError, match="images are not finite in rows"):
        ClassifierInputs(images=np.full((2, 1, 4, 4), np.nan))
    with pytest.raises(ValidationError, match="images differ in size"):
        ClassifierInputs.union(
            ClassifierInputs(images=np.zeros((2, 1, 4, 4))),
            ClassifierInputs(images=np.zeros((2, 1, 6, 6))),
        )
    with pytest.raises(ValidationError, match="needs catalog features, images or both"):
        ClassifierInputs()


def test_an_image_classifier_is_reproducible_from_its_seed():
    rng = np.random.default_rng(6)
    bins = rng.integers(0, 2, size=80)
    inputs = ClassifierInputs(images=blob_images(bins, rng))
    train, valid = inputs.take(np.arange(60)), inputs.take(np.arange(60, 80))

    def probabilities(seed):
        config = ClassifierConfig(hidden=(4,), conv_channels=(2,), epochs=3, seed=seed)
        net = fit_classifier(train, bins[:60], 2, features_valid=valid, bins_valid=bins[60:],
                             config=config)  # fmt: skip
        return net.predict_proba(inputs)

    np.testing.assert_array_equal(probabilities(0), probabilities(0))
    assert not np.array_equal(probabilities(0), probabilities(1))


# ---------------------------------------------------------------------------------------
# The Gaussian check, end to end
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def check():
    # module scope runs before the per-test one-thread fixture, so pin threads here too
    with single_thread_torch():
        return gaussian_check(GaussianCheckSettings(**TINY_CHECK, classifier=TINY_CLASSIFIER))


def test_gaussian_check_is_json_ready_and_states_its_truths(check):
    json.dumps(check)
    assert check["mi_1"]["closed_form"] == pytest.approx(-0.5 * math.log(1 - 0.8**2))
    assert check["mi_2"]["closed_form"] == pytest.approx(-0.5 * math.log(1 - 0.6**2))
    for term in ("mi_1", "mi_2", "mi_12"):
        loss = check[term]["closed_form"] - check[term]["binned_exact"]
        assert 0 < loss < 0.05  # 16 bins over ±4σ: narrow against every conditional σ


def test_gaussian_check_records_settings_that_read_back(check):
    settings = GaussianCheckSettings.from_dict(json.loads(json.dumps(check["config"])))
    assert settings == GaussianCheckSettings(**TINY_CHECK, classifier=TINY_CLASSIFIER)
    assert set(check["config"]) == {
        *("n_train", "n_test", "rho_1", "rho_2", "rho_12", "n_bins", "span", "seed"),
        *("valid_fraction", "classifier"),
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_train": 5}, "n_train must be an integer >= 10, got 5"),
        ({"n_test": 0}, "n_test must be an integer >= 1"),
        ({"rho_1": 1.0}, r"rho_1 must be a number in \(-1, 1\)"),
        ({"rho_1": 0.9, "rho_2": 0.9, "rho_12": -0.9}, "positive-definite"),
        ({"n_bins": 1}, "n_bins must be an integer >= 2"),
        ({"span": 0}, "span must be a number > 0"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"valid_fraction": 1.0}, r"valid_fraction must be a number in \(0, 1\)"),
        ({"classifier": {"epoch": 3}}, "classifier: .*epoch"),
    ],
)
def test_a_bad_gaussian_check_setting_is_refused_by_name(changes, message):
    with pytest.raises(ValidationError, match=message):
        GaussianCheckSettings(**changes)


def test_estimator_recovers_the_gaussian_information(check):
    assert check["within_tolerance"]
    for term in TERMS:
        error = check[term]["estimated"] - check[term]["sample_exact"]
        assert abs(error) <= GAUSSIAN_TOLERANCE_NATS, term
    # against the population value the test sample's own noise adds in
    for term in ("mi_1", "mi_2", "mi_12"):
        allowed = GAUSSIAN_TOLERANCE_NATS + 3 * check["standard_error"][term]
        assert abs(check[term]["estimated"] - check[term]["binned_exact"]) <= allowed, term


def test_estimated_pointwise_mi_follows_the_exact_values(check):
    for term, rho in check["pointwise_correlation"].items():
        assert rho > 0.9, term
    per_galaxy = check["per_galaxy"]["redundancy"]
    assert per_galaxy["estimated"] == pytest.approx(
        per_galaxy["exact"], abs=GAUSSIAN_TOLERANCE_NATS
    )
    # the mean of per-galaxy minima sits well below the minimum of the means
    assert per_galaxy["exact"] < check["redundancy"]["sample_exact"] - 0.1
