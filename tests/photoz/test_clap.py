"""CLAP's training pieces: resuming a killed realisation, the refit variants, the stored KNN
index, the network baselines, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clapkit.errors import ValidationError
from clapkit.metrics import crps, histogram_pdfs
from clapkit.nets.training import TrainingStopped
from clapkit.photoz.adaptive_knn import AdaptiveKNN
from clapkit.photoz.clap import (
    CLAPConfig,
    load_knn,
    predict_clap,
    save_knn,
    train_clap,
    train_realisation,
)
from clapkit.photoz.network_baselines import BaselineConfig, predict_baseline, train_baseline
from clapkit.photoz.network_inputs import make_input_spec, network_inputs
from clapkit.photoz.pipeline import _method_configs, resolve_config

EDGES = np.linspace(0.0, 0.4, 21)


@pytest.fixture(scope="module")
def catalog_inputs(make_galaxies, tiny_config):
    galaxies = make_galaxies(n=400, images=False, bands="griz")
    labels = np.asarray(galaxies.catalog["split"]).astype(str)
    train = galaxies[np.flatnonzero(labels == "train")]
    valid = galaxies[np.flatnonzero(labels == "valid")]
    spec = make_input_spec(train, EDGES)
    clap, baselines = _method_configs(resolve_config(tiny_config), "features")
    inputs = [network_inputs(spec, part, require_z=True) for part in (train, valid)]
    return spec, clap, baselines, *inputs


def with_options(config: CLAPConfig, **options) -> CLAPConfig:
    return CLAPConfig(**{**config.to_dict(), **options})


def test_a_killed_realisation_resumes_to_the_same_model(catalog_inputs, tmp_path):
    spec, config, _, train, valid = catalog_inputs
    config = with_options(config, refit_on="valid")
    straight = tmp_path / "straight"
    train_realisation(straight, spec, config, train, valid, seed=4)

    killed = tmp_path / "killed"
    with pytest.raises(TrainingStopped):
        train_realisation(killed, spec, config, train, valid, seed=4, stop_after=1)
    assert (killed / "net.ckpt").exists() and not (killed / "net.pt").exists()
    train_realisation(killed, spec, config, train, valid, seed=4)
    assert not (killed / "net.ckpt").exists()
    for name in ("net.pt", "refit.pt"):
        a = torch.load(straight / name, weights_only=True)
        b = torch.load(killed / name, weights_only=True)
        for key in a:
            torch.testing.assert_close(a[key], b[key])
    # A finished realisation is not trained again.
    stamp = (killed / "refit.pt").stat().st_mtime_ns
    train_realisation(killed, spec, config, train, valid, seed=4)
    assert (killed / "refit.pt").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("refit_on", ["target", "valid", "train_loo"])
def test_every_refit_gives_calibrated_stages_and_a_novelty_score(
    catalog_inputs, tmp_path, refit_on
):
    spec, config, _, train, valid = catalog_inputs
    config = with_options(
        config,
        refit_on=refit_on,
        n_realisations=1,
        train={"epochs": 30, "batch_size": 32, "learning_rate": 1e-2},
        refit={"epochs": 40, "batch_size": 32, "learning_rate": 1e-2},
    )
    train_clap(tmp_path, spec, config, train, valid, seed=1)
    assert (tmp_path / "r0" / "refit.pt").is_file() == (refit_on != "target")
    prediction = predict_clap(tmp_path, spec, config, valid, seed=1)
    edges = np.asarray(spec.edges)
    assert set(prediction.pdfs) == {"clap_scl", "clap_raw", "clap_recal", "clap_refit", "clap"}
    prior = np.tile(histogram_pdfs(train.z[None], edges), (len(valid), 1))
    prior_crps = crps(prior, edges, valid.z).mean()
    for name, p in prediction.pdfs.items():
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9, err_msg=name)
        # Every stage has learned the redshift: far below the training-set prior.
        assert crps(p, edges, valid.z).mean() < 0.5 * prior_crps, name
    assert prediction.novelty.shape == (len(valid),)
    assert np.all((prediction.novelty >= 0) & (prediction.novelty <= 100))


def test_a_refit_on_the_targets_refuses_too_few_galaxies(catalog_inputs, tmp_path):
    spec, config, _, _, valid = catalog_inputs
    config = with_options(config, refit_on="target", n_realisations=1)
    with pytest.raises(ValidationError, match="at least 50 galaxies; got 12"):
        predict_clap(tmp_path, spec, config, valid.take(np.arange(12)))


def test_the_stored_knn_index_predicts_like_the_original(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.uniform(0.01, 0.39, 300)
    latent = np.column_stack([z * 10, rng.normal(0, 0.1, (300, 3))]).astype(np.float32)
    knn = AdaptiveKNN(EDGES, k_grid=[3, 6, 12, 24], n_pit_bins=10).fit(latent, z)
    ids = np.arange(300) + 50
    save_knn(tmp_path / "knn.h5", knn, ids)
    loaded, loaded_ids = load_knn(tmp_path / "knn.h5")
    np.testing.assert_array_equal(loaded_ids, ids)
    targets = latent[:20] + 0.01
    a, b = knn.predict(targets), loaded.predict(targets)
    np.testing.assert_array_equal(a.k, b.k)
    np.testing.assert_array_equal(a.p, b.p)


def test_mc_dropout_combines_several_masks(catalog_inputs, tmp_path):
    spec, _, baselines, train, valid = catalog_inputs
    train_baseline("mcdropout", tmp_path, spec, baselines, train, valid, seed=0)
    net = torch.load(tmp_path / "net.pt", weights_only=True)
    assert baselines.dropout == 0.5 and baselines.mc_dropout_in == "encoder_and_head"

    def predict(**options):
        config = BaselineConfig(**{**baselines.to_dict(), **options})
        return predict_baseline("mcdropout", tmp_path, spec, config, valid, seed=0)

    single = [
        predict_baseline(
            "mcdropout",
            tmp_path,
            spec,
            BaselineConfig(**{**baselines.to_dict(), "mc_samples": 1}),
            valid,
            seed=s,
        )
        for s in (0, 1)
    ]
    assert not np.allclose(single[0], single[1])  # dropout is active at prediction
    assert net  # the state dict loads with weights_only
    samples = 6
    harmonic = predict(mc_samples=samples)
    arithmetic = predict(mc_samples=samples, mc_combine="arithmetic")
    for p in (harmonic, arithmetic):
        np.testing.assert_allclose(p.sum(axis=1), 1.0)

    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1).mean()

    # A mixture is broader than its members; the harmonic mean keeps what all agree on.
    assert entropy(arithmetic) > entropy(single[0])
    assert entropy(harmonic) < entropy(arithmetic)


def test_the_mixture_network_learns_the_redshifts(catalog_inputs, tmp_path):
    spec, _, baselines, train, valid = catalog_inputs
    config = BaselineConfig(
        **{**baselines.to_dict(), "train": {"epochs": 15, "batch_size": 32, "learning_rate": 1e-2}}
    )
    train_baseline("gmm", tmp_path, spec, config, train, valid, seed=0)
    p = predict_baseline("gmm", tmp_path, spec, config, valid, seed=0)
    edges = np.asarray(spec.edges)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    prior = np.tile(histogram_pdfs(train.z[None], edges), (len(valid), 1))
    assert crps(p, edges, valid.z).mean() < 0.7 * crps(prior, edges, valid.z).mean()


def test_configs_refuse_nonsense():
    with pytest.raises(ValidationError, match="n_realisations"):
        CLAPConfig(n_realisations=0)
    with pytest.raises(ValidationError, match="unknown training options"):
        CLAPConfig(refit={"epoch": 3})
    with pytest.raises(ValidationError, match="too few"):
        CLAPConfig(k_min=5).k_grid(5)
    assert CLAPConfig(k_max=2000, max_k_fraction=1.0).k_grid(101)[-1] == 100
    # At most 2% of the training set by default: 5...2000 among 400,000, 5...42 among 2,100.
    assert CLAPConfig().k_grid(400_000).size == 120
    assert CLAPConfig().k_grid(2100).tolist() == [5, 10, 15, 20, 25, 30, 35, 40]
    assert CLAPConfig(k_spacing="log").k_grid(2100).tolist() == list(range(5, 43))
    for option, value in (
        ("scl_loss", "simclr"),
        ("recalibration", "valid"),
        ("refit_on", "test"),
        ("refit_labels", "smoothed"),
        ("smoothing", "box"),
        ("k_spacing", "linear"),
        ("recalibration_cdf", "middle"),
    ):
        with pytest.raises(ValidationError, match=f"CLAP option {option} must be one of"):
            CLAPConfig(**{option: value})
    with pytest.raises(ValidationError, match="batches of at least 2"):
        CLAPConfig(train={"batch_size": 1})
    with pytest.raises(ValidationError, match="non-empty validation split"):
        CLAPConfig().check_sizes(100, 0)
    with pytest.raises(ValidationError, match="mc_combine"):
        BaselineConfig(mc_combine="median")
    with pytest.raises(ValidationError, match="max_k_fraction"):
        CLAPConfig(max_k_fraction=0)
    with pytest.raises(ValidationError, match="dropout"):
        BaselineConfig(dropout=1.5)
    with pytest.raises(ValidationError, match="unknown network baseline"):
        train_baseline("gp", "x", None, BaselineConfig(), [1], [1])


@pytest.mark.parametrize(
    ("setting", "match"),
    [
        ({"mc_samples": 0}, "mc_samples must be an integer >= 1, got 0"),
        ({"ensemble_size": 2.5}, r"ensemble_size must be an integer >= 1, got 2\.5"),
        ({"gmm_components": True}, "gmm_components must be an integer >= 1, got True"),
        ({"train": {"epochs": 1.0}}, r"epochs must be an integer >= 1, got 1\.0"),
    ],
)
def test_baseline_counts_must_be_whole_numbers(setting, match):
    with pytest.raises(ValidationError, match=match):
        BaselineConfig(**setting)
