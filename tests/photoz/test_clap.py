"""CLAP's training pieces: resuming a killed realisation, the stored KNN index, configs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clapkit.errors import ValidationError
from clapkit.photoz.adaptive_knn import AdaptiveKNN
from clapkit.photoz.clap import CLAPConfig, load_knn, save_knn, train_realisation
from clapkit.photoz.network_baselines import BaselineConfig, predict_baseline, train_baseline
from clapkit.photoz.network_inputs import make_input_spec, network_inputs
from clapkit.photoz.pipeline import _method_configs, resolve_config
from clapkit.photoz.training import Interrupt

EDGES = np.linspace(0.0, 0.4, 21)


@pytest.fixture(scope="module")
def catalog_inputs(make_galaxies, tiny_config):
    galaxies = make_galaxies(n=240, images=False, bands="griz")
    labels = np.asarray(galaxies.catalog["split"]).astype(str)
    train = galaxies[np.flatnonzero(labels == "train")]
    valid = galaxies[np.flatnonzero(labels == "valid")]
    spec = make_input_spec(train, EDGES)
    clap, baselines = _method_configs(resolve_config(tiny_config), "features")
    inputs = [network_inputs(spec, part, require_z=True) for part in (train, valid)]
    return spec, clap, baselines, *inputs


def test_a_killed_realisation_resumes_to_the_same_model(catalog_inputs, tmp_path):
    spec, config, _, train, valid = catalog_inputs
    straight = tmp_path / "straight"
    train_realisation(straight, spec, config, train, valid, seed=4)

    killed = tmp_path / "killed"
    with pytest.raises(Interrupt):
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


def test_mc_dropout_averages_several_masks(catalog_inputs, tmp_path):
    spec, _, baselines, train, valid = catalog_inputs
    train_baseline("mcdropout", tmp_path, spec, baselines, train, valid, seed=0)
    one = BaselineConfig(**{**baselines.to_dict(), "mc_samples": 1})
    single = [predict_baseline("mcdropout", tmp_path, spec, one, valid, seed=s) for s in (0, 1)]
    many = predict_baseline("mcdropout", tmp_path, spec, baselines, valid, seed=0)
    assert not np.allclose(single[0], single[1])  # dropout is active at prediction
    np.testing.assert_allclose(many.sum(axis=1), 1.0)

    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=1).mean()

    assert entropy(many) > entropy(single[0])  # a mixture is broader than its members


def test_configs_refuse_nonsense():
    with pytest.raises(ValidationError, match="n_realisations"):
        CLAPConfig(n_realisations=0)
    with pytest.raises(ValidationError, match="unknown training options"):
        CLAPConfig(refit={"epoch": 3})
    with pytest.raises(ValidationError, match="too few"):
        CLAPConfig(k_min=5).k_grid(5)
    assert CLAPConfig(k_max=2000, max_k_fraction=1.0).k_grid(101)[-1] == 100
    # At most 2% of the training set by default: 5...2000 among 400,000, 5...42 among 2,100.
    assert CLAPConfig().k_grid(400_000)[-1] == 2000
    assert CLAPConfig().k_grid(2100).tolist() == list(range(5, 43))
    with pytest.raises(ValidationError, match="max_k_fraction"):
        CLAPConfig(max_k_fraction=0)
    with pytest.raises(ValidationError, match="dropout"):
        BaselineConfig(dropout=1.5)
    with pytest.raises(ValidationError, match="unknown network baseline"):
        train_baseline("gp", "x", None, BaselineConfig(), [1], [1])
