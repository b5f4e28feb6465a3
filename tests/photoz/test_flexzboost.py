"""RAIL's FlexZBoost through RAIL's stages: stored without pickle, PDFs on clapkit's bins."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rail.estimation.algos.flexzboost", reason="needs the 'rail' extra")

import qp

from clapkit.metrics import crps, histogram_pdfs
from clapkit.photoz.flexzboost import (
    check_options,
    ensemble_to_bins,
    load_flexzboost,
    predict_flexzboost,
    train_flexzboost,
)
from clapkit.photoz.pipeline import PhotoZTrainSettings, predict_run, train_run
from clapkit.runs import RunDir


def test_qp_pdfs_become_bin_probabilities_exactly():
    # A triangle on [0, 2] given at nodes that include the bin edges 0, 1, 2.
    ensemble = qp.Ensemble(
        qp.interp, data={"xvals": [0.0, 0.5, 1.0, 1.5, 2.0], "yvals": [[0, 0.5, 1, 0.5, 0]]}
    )
    np.testing.assert_allclose(ensemble_to_bins(ensemble, np.array([0.0, 1.0, 2.0])), [[0.5, 0.5]])
    # Probability beyond the grid is dropped and the rest renormalised.
    np.testing.assert_allclose(
        ensemble_to_bins(ensemble, np.array([0.0, 0.5, 1.0])), [[0.25, 0.75]]
    )


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match="unknown FlexZBoost settings"):
        check_options({"n_trees": 10})


def test_the_stored_model_predicts_like_the_trained_one(make_galaxies, tmp_path, tiny_config):
    galaxies = make_galaxies(n=300, images=False, bands="griz")
    catalog = galaxies.catalog
    edges = np.linspace(0.0, 0.4, 21)
    model = train_flexzboost(
        tmp_path,
        catalog,
        np.asarray(galaxies.ids),
        "griz",
        edges,
        options=tiny_config["flexzboost"],
    )
    assert not list(tmp_path.glob("*.pkl"))  # no pickle is left behind
    loaded, bands, loaded_edges = load_flexzboost(tmp_path / "model.h5")
    assert bands == list("griz") and np.array_equal(loaded_edges, edges)
    colours = np.column_stack(
        [catalog["mag_r"]]
        + [catalog[f"mag_{a}"] - catalog[f"mag_{b}"] for a, b in ("gr", "ri", "iz")]
    )
    original, _ = model.predict(colours, n_grid=81)
    again, _ = loaded.predict(colours, n_grid=81)
    np.testing.assert_array_equal(again, original)
    p = predict_flexzboost(tmp_path, catalog, np.asarray(galaxies.ids))
    assert p.shape == (300, 20)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_flexzboost_trains_and_predicts_through_a_run(catalog_file, tmp_path, tiny_config):
    run = RunDir(tmp_path / "run")
    record = train_run(
        catalog_file,
        run,
        PhotoZTrainSettings("flexzboost", config=tiny_config, n_bins=20),
        log=print,
    )
    assert record["methods"]["flexzboost"]["status"] == "done"
    predict_run(run, catalog_file, log=print)
    pdfs, _ = run.load_pdfs("flexzboost")
    np.testing.assert_allclose(pdfs.p.sum(axis=1), 1.0)
    train_z = np.asarray(pdfs.z_true)
    prior = np.tile(histogram_pdfs(train_z[None], pdfs.edges), (pdfs.n, 1))
    assert (
        crps(pdfs.p, pdfs.edges, pdfs.z_true).mean()
        < 0.5 * crps(prior, pdfs.edges, pdfs.z_true).mean()
    )
