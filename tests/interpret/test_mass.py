"""Stellar-mass models: CLAP's machinery with log M* as the target, per input set."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
from astropy.table import Table

from clapkit.data import GalaxySet
from clapkit.errors import FileFormatError, OverwriteError, ValidationError
from clapkit.interpret.input_sets import ALL_INPUT_SETS, BAND_SETS, BANDS, INPUT_SETS
from clapkit.interpret.mass import (
    mass_edges,
    mass_metric_draws,
    mass_metrics,
    predict_mass,
    read_model,
    train_mass_model,
)
from clapkit.interpret.results import read_prediction
from clapkit.metrics import gaussian_pdfs
from clapkit.metrics.bootstrap import bootstrap_draws, percentile_interval
from clapkit.metrics.point import MAD_TO_SIGMA
from clapkit.testing import synthetic_mass_survey

#: The tiny preset, trained long enough to learn (a few seconds on one thread).
TRAINED = {
    "train": {"epochs": 40, "batch_size": 32, "learning_rate": 3e-3},
    "clap": {"k_min": 8, "refit": {"epochs": 60, "batch_size": 16, "learning_rate": 1e-2}},
}


@pytest.fixture(scope="module")
def survey() -> GalaxySet:
    return synthetic_mass_survey(300, seed=3)


@pytest.fixture(scope="module")
def photometry_model(survey, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mass") / "photometry"
    return train_mass_model(survey, "photometry", folder, preset="tiny", overrides=TRAINED)


def test_every_input_set_trains_and_predicts_on_the_tiny_preset(survey, tmp_path):
    test = survey.split("test")
    for name, chosen in INPUT_SETS.items():
        folder = train_mass_model(survey, name, tmp_path / name, preset="tiny")
        prediction = predict_mass(folder, test)
        assert prediction.input_set == name
        assert prediction.pdfs.shape == (len(test), 40)
        np.testing.assert_allclose(prediction.pdfs.sum(axis=1), 1.0, atol=1e-6)
        assert prediction.latent.shape == (len(test), 4)
        np.testing.assert_array_equal(prediction.ids, test.ids)
        np.testing.assert_array_equal(prediction.true, np.asarray(test.catalog["log_mstar"]))
        record = read_model(folder)
        assert record["spec"]["kind"] == chosen.kind
        assert set(chosen.columns) <= set(record["spec"]["columns"])
        assert record["spec"]["flux_columns"] == list(chosen.flux_columns)


def test_every_band_has_an_image_and_a_photometry_ablation():
    assert sorted(BAND_SETS) == sorted(
        f"{kind}_band_{b}" for b in BANDS for kind in ("images", "photometry")
    )
    assert not set(BAND_SETS) & set(INPUT_SETS)  # not trained by default


@pytest.mark.parametrize("name", ["images_band_g", "photometry_band_g"])
def test_a_single_band_model_reads_that_band_alone(survey, tmp_path, name):
    test = survey.split("test")
    folder = train_mass_model(survey, name, tmp_path / name, preset="tiny")
    prediction = predict_mass(folder, test)
    assert prediction.input_set == name
    assert prediction.pdfs.shape == (len(test), 40)
    spec = read_model(folder)["spec"]
    if BAND_SETS[name].kind == "images":
        assert spec["bands"] == ["g"]
    else:
        assert spec["columns"] == ["mag_g", "magerr_g", "ebv"]


def test_a_trained_photometry_model_beats_the_prior(survey, photometry_model):
    test = survey.split("test")
    prediction = predict_mass(photometry_model, test)
    metrics = mass_metrics(prediction.pdfs, prediction.edges, prediction.true)
    # Guessing the training mean: the masses are uniform over 2.5 dex, σ_MAD ≈ 0.93 dex.
    train_mass = np.asarray(survey.split("train").catalog["log_mstar"])
    prior = mass_metrics(
        np.tile(np.histogram(train_mass, prediction.edges)[0] / train_mass.size, (len(test), 1)),
        prediction.edges,
        prediction.true,
    )
    # The photometry leaves mass and redshift partly degenerate, and the tiny refit
    # learns from 60 galaxies: a clear gain, not a precise estimate.
    assert metrics["sigma"] < 0.75 * prior["sigma"]
    assert metrics["crps"] < 0.9 * prior["crps"]


def test_predictions_round_trip_through_a_file_and_refuse_overwrite(
    survey, photometry_model, tmp_path
):
    prediction = predict_mass(photometry_model, survey.split("test"))
    path = prediction.save(tmp_path / "prediction.h5")
    again = read_prediction(path)
    assert again.input_set == "photometry"
    for key in ("ids", "edges", "pdfs", "latent", "true", "split"):
        np.testing.assert_array_equal(getattr(again, key), getattr(prediction, key))
    assert set(again.split) == {"test"}
    np.testing.assert_allclose(again.point, prediction.point)
    with pytest.raises(OverwriteError):
        prediction.save(path)
    prediction.save(path, overwrite=True)
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(FileFormatError):
        read_prediction(tmp_path / "junk.h5")


def test_training_again_resumes_and_other_settings_are_refused(survey, photometry_model):
    weights = (photometry_model / "r0" / "refit.pt").read_bytes()
    train_mass_model(survey, "photometry", photometry_model, preset="tiny", overrides=TRAINED)
    assert (photometry_model / "r0" / "refit.pt").read_bytes() == weights
    with pytest.raises(ValidationError, match="other settings"):
        train_mass_model(survey, "photometry", photometry_model, preset="tiny")
    with pytest.raises(ValidationError, match="other settings"):
        train_mass_model(survey, "images", photometry_model, preset="tiny", overrides=TRAINED)


def _without(survey: GalaxySet, *columns: str) -> GalaxySet:
    catalog = survey.catalog.copy()
    catalog.remove_columns(list(columns))
    return GalaxySet(catalog, survey.stacks, survey.meta)


@pytest.mark.parametrize(
    ("change", "name", "message"),
    [
        (lambda s: s, "spectra", "unknown input set 'spectra'"),
        (lambda s: _without(s, "mag_w1"), "photometry_wise", r"\['mag_w1'\]"),
        (lambda s: _without(s, "mag_u"), "images_normalised", r"\['mag_u'\]"),
        (
            lambda s: GalaxySet(
                s.catalog, {"sdss": replace(s.stacks["sdss"], bands=tuple("grizu"))}, s.meta
            ),
            "images_normalised",
            r"divides the 'sdss' bands \['g', 'r', 'i', 'z', 'u'\] by the fluxes",
        ),
        (lambda s: _without(s, "log_mstar"), "photometry", "no 'log_mstar' column"),
        (
            lambda s: GalaxySet(s.catalog, {}, s.meta),
            "images",
            "reads 'sdss' images; the data has stacks",
        ),
    ],
)
def test_bad_training_input_is_refused_with_a_clear_error(survey, tmp_path, change, name, message):
    with pytest.raises(ValidationError, match=message):
        train_mass_model(change(survey), name, tmp_path / "model", preset="tiny")


def test_masses_off_the_grid_name_the_galaxy(survey, tmp_path):
    catalog = survey.catalog.copy()
    catalog["log_mstar"][0] = 13.2
    bad = GalaxySet(catalog, survey.stacks, survey.meta)
    with pytest.raises(ValidationError, match=r"galaxy id 1 \(row 0\) is 13.2, outside the grid"):
        train_mass_model(bad, "photometry", tmp_path / "model", preset="tiny")


def test_a_model_needs_train_and_valid_galaxies(survey, tmp_path):
    catalog = survey.catalog.copy()
    catalog["split"] = "train"
    only_train = GalaxySet(catalog, survey.stacks, survey.meta)
    with pytest.raises(ValidationError, match="no split named 'valid'"):
        train_mass_model(only_train, "photometry", tmp_path / "model", preset="tiny")


def test_predicting_from_an_empty_folder_names_it(tmp_path, survey):
    with pytest.raises(FileFormatError, match=r"model\.json missing"):
        predict_mass(tmp_path, survey)


def test_mass_metrics_of_calibrated_gaussians():
    rng = np.random.default_rng(0)
    edges = mass_edges(260)
    centre = rng.uniform(9.0, 11.5, 4000)
    sigma = np.full(centre.size, 0.15)
    true = centre + rng.normal(0, 0.15, centre.size)
    metrics = mass_metrics(gaussian_pdfs(centre, sigma, edges), edges, true)
    # Δ ~ N(0, 0.15): σ_MAD estimates the standard deviation, the median is 0, the PIT flat.
    assert metrics["sigma"] == pytest.approx(0.15, rel=0.06)
    assert abs(metrics["median_offset"]) < 0.01
    assert metrics["pit_w1"] < 0.02
    assert metrics["outlier_fraction"] == pytest.approx(0.0455, abs=0.01)  # |Δ| > 2σ
    shifted = mass_metrics(gaussian_pdfs(centre + 0.2, sigma, edges), edges, true)
    assert shifted["median_offset"] == pytest.approx(0.2, abs=0.01)
    assert shifted["pit_w1"] > 0.2


def test_mass_metrics_refuse_mismatched_shapes():
    with pytest.raises(ValidationError, match="do not match"):
        mass_metrics(np.full((3, 4), 0.25), np.linspace(9, 11, 5), [10.0, 10.5])
    with pytest.raises(ValidationError, match="finite"):
        mass_metrics(np.full((1, 4), 0.25), np.linspace(9, 11, 5), [np.nan])


def test_mass_metric_intervals_match_the_sampling_spread_of_sigma():
    # The bootstrap interval of σ_MAD over n galaxies is as wide as the spread of σ_MAD
    # over fresh samples of n galaxies (simulated here, so the truth is known).
    rng = np.random.default_rng(1)
    edges = mass_edges(520)
    n = 1600
    centre = rng.uniform(9.0, 11.5, n)
    true = centre + rng.normal(0, 0.15, n)
    pdfs = gaussian_pdfs(centre, np.full(n, 0.15), edges)
    values = mass_metric_draws(pdfs, edges, true, bootstrap_draws(n, 400, seed=3))
    assert set(values) == set(mass_metrics(pdfs, edges, true))
    lo, hi = percentile_interval(values["sigma"])
    assert lo < 0.15 < hi
    fresh = rng.normal(0, 0.15, (1000, n))
    sampled = MAD_TO_SIGMA * np.median(np.abs(fresh - np.median(fresh, 1, keepdims=True)), 1)
    assert hi - lo == pytest.approx(np.subtract(*np.percentile(sampled, [97.5, 2.5])), rel=0.25)
    # The draw that takes every galaxy once gives the metrics themselves.
    whole = mass_metric_draws(pdfs, edges, true, np.arange(n)[None, :])
    assert whole["crps"][0] == pytest.approx(mass_metrics(pdfs, edges, true)["crps"])


def test_mass_metric_draws_refuse_draws_of_other_galaxies():
    pdfs, edges = np.full((3, 4), 0.25), np.linspace(9, 11, 5)
    with pytest.raises(ValidationError, match=r"expected \(R, 3\)"):
        mass_metric_draws(pdfs, edges, [9.5, 10.0, 10.5], np.zeros((2, 4), dtype=int))
    with pytest.raises(ValidationError, match=r"indices in 0\.\.2"):
        mass_metric_draws(pdfs, edges, [9.5, 10.0, 10.5], np.full((2, 3), 3))


def test_mass_edges_refuse_bad_grids():
    with pytest.raises(ValidationError, match="n_bins must be an integer >= 2, got 1"):
        mass_edges(1)
    with pytest.raises(ValidationError, match=r"n_bins must be an integer >= 2, got 52\.0"):
        mass_edges(52.0)
    with pytest.raises(ValidationError, match="increasing"):
        mass_edges(10, (12.0, 9.0))


def test_the_catalog_of_the_synthetic_survey_is_what_the_input_sets_read():
    table = synthetic_mass_survey(10).catalog
    assert isinstance(table, Table)
    for chosen in ALL_INPUT_SETS.values():
        assert set(chosen.columns) | set(chosen.flux_columns) <= set(table.colnames)


def test_skipping_clap_knn_stages_leaves_the_final_pdfs_and_latents_unchanged(
    survey, photometry_model
):
    from clapkit.interpret.mass import _inputs
    from clapkit.photoz.clap import CLAPConfig, predict_clap
    from clapkit.photoz.network_inputs import InputSpec

    record = read_model(photometry_model)
    spec, config = InputSpec.from_dict(record["spec"]), CLAPConfig(**record["clap"])
    inputs = _inputs(spec, survey.split("test"), None)
    full = predict_clap(photometry_model, spec, config, inputs)
    light = predict_clap(photometry_model, spec, config, inputs, knn_stages=False)
    assert light.knn is None and set(light.pdfs) == {"clap_scl", "clap_refit", "clap"}
    assert {"clap_raw", "clap_recal"} <= set(full.pdfs)
    for stage in ("clap_scl", "clap_refit", "clap"):
        np.testing.assert_array_equal(light.pdfs[stage], full.pdfs[stage])
    np.testing.assert_array_equal(light.latent, full.latent)


def test_a_model_that_records_the_old_preset_name_resumes(survey, photometry_model, tmp_path):
    # Models trained before clapkit.presets record "gpu", the settings of today's "paper".
    folder = tmp_path / "photometry"
    shutil.copytree(photometry_model, folder)
    record = json.loads((folder / "model.json").read_text())
    # The tiny settings given as overrides of "paper" are the same numbers under "paper".
    overrides = {key: value for key, value in record["settings"].items() if key != "preset"}
    record["settings"]["preset"] = "gpu"
    (folder / "model.json").write_text(json.dumps(record))
    weights = (folder / "r0" / "refit.pt").read_bytes()
    train_mass_model(survey, "photometry", folder, preset="paper", overrides=overrides)
    assert (folder / "r0" / "refit.pt").read_bytes() == weights
    with pytest.raises(ValidationError, match="other settings"):
        train_mass_model(survey, "photometry", folder, preset="cpu", overrides=overrides)
    with pytest.raises(ValidationError, match="stellar-mass preset 'gpu' is now called 'paper'"):
        train_mass_model(survey, "photometry", folder, preset="gpu", overrides=overrides)
