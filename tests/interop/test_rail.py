"""CLAP and the photometry KNN as RAIL stages, on RAIL tables of the real SDSS catalog and
of a mock survey, with non-detections: the stages add nothing to clapkit's own prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rail.estimation.estimator", reason="needs the 'rail' extra")

import qp
from rail.core.data import DataStore

from clapkit.data import GalaxySet, sdss_catalog
from clapkit.errors import ValidationError
from clapkit.interop import from_qp
from clapkit.interop.rail import (
    CLAPEstimator,
    CLAPInformer,
    KNNPhotometryEstimator,
    KNNPhotometryInformer,
    check_rail_settings,
    grid_edges,
    rail_catalog,
    unpack_run,
)
from clapkit.photoz.pipeline import predict_run
from clapkit.runs import RunDir

NONDETECT = 99.0
#: CLAP at its smallest: one realisation, two epochs (the whole module in seconds).
SMALL_CLAP = {
    "preset": "tiny",
    "realisations": 1,
    "clapkit_config": {"train": {"epochs": 2}, "clap": {"refit": {"epochs": 2}}},
}


def rail_table(catalog, bands: str, survey: str, rows) -> dict[str, np.ndarray]:
    """clapkit catalog rows in RAIL's conventions (``mag_g_lsst``, ``mag_err_g_lsst``)."""
    table = {
        "object_id": np.asarray(catalog["id"])[rows],
        "redshift": np.asarray(catalog["z"], dtype=np.float64)[rows],
    }
    for b in bands:
        table[f"mag_{b}_{survey}"] = np.array(catalog[f"mag_{b}"], dtype=np.float64)[rows]
        table[f"mag_err_{b}_{survey}"] = np.array(catalog[f"magerr_{b}"], dtype=np.float64)[rows]
    return table


def rail_settings(bands: str, survey: str, ref: str, limits: dict, zmax: float) -> dict:
    return {
        "bands": [f"mag_{b}_{survey}" for b in bands],
        "err_bands": [f"mag_err_{b}_{survey}" for b in bands],
        "ref_band": f"mag_{ref}_{survey}",
        "nondetect_val": NONDETECT,
        "mag_limits": {f"mag_{b}_{survey}": v for b, v in limits.items()},
        "zmax": zmax,
        "nzbins": 40,
        "hdf5_groupname": "",
    }


def split_rows(n: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.random.default_rng(seed).permutation(n)
    return np.sort(rows[n_test:]), np.sort(rows[:n_test])


@pytest.fixture(scope="module", autouse=True)
def allow_overwrite():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DataStore, "allow_overwrite", True)
        yield


@pytest.fixture(scope="module")
def mock(make_galaxies):
    """A mock survey in LSST column names: g is undetected (99) for 10% of the galaxies."""
    catalog = make_galaxies(n=300, seed=3, images=False, bands="griz").catalog
    train, test = split_rows(len(catalog), 60, seed=1)
    tables = {
        name: rail_table(catalog, "griz", "lsst", rows)
        for name, rows in [("train", train), ("test", test)]
    }
    rng = np.random.default_rng(2)
    for table in tables.values():
        gone = rng.random(len(table["redshift"])) < 0.1
        table["mag_g_lsst"][gone] = NONDETECT
        table["mag_err_g_lsst"][gone] = NONDETECT
    settings = rail_settings("griz", "lsst", "r", {"g": 19.5}, zmax=0.4)
    return tables["train"], tables["test"], settings


@pytest.fixture(scope="module")
def mock_clap(mock, tmp_path_factory):
    train, _, settings = mock
    folder = tmp_path_factory.mktemp("rail_clap")
    informer = CLAPInformer.make_stage(
        name="inform_clap_mock", model=str(folder / "clap.pkl"), **SMALL_CLAP, **settings
    )
    informer.inform(train)
    return informer, folder


def estimate(estimator_class, name: str, model, data, folder, **settings):
    stage = estimator_class.make_stage(
        name=name, model=model, output=str(folder / f"{name}.hdf5"), **settings
    )
    return stage.estimate(data).data


def clapkit_predict(model, method: str, data, settings, folder) -> np.ndarray:
    """clapkit's own ``predict_run`` of the model's run on the same galaxies."""
    root = unpack_run(model, folder, method)
    checked = check_rail_settings({"zmin": 0.0, **settings})
    catalog = rail_catalog(data, checked, id_col="object_id")
    GalaxySet(catalog).save(folder / "galaxies.h5")
    predict_run(root, folder / "galaxies.h5", split=None, log=lambda _: None)
    return RunDir(root).load_pdfs(method)[0].p


def check_ensemble(ensemble, n: int, settings) -> np.ndarray:
    """The ensemble's bin probabilities, after checking what RAIL users rely on."""
    edges = grid_edges({"zmin": 0.0, **settings})
    assert isinstance(ensemble.gen_obj, qp.hist_gen) and ensemble.npdf == n
    np.testing.assert_allclose(ensemble.gen_obj.bins, edges)
    p = from_qp(ensemble, edges).p
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(ensemble.cdf(np.array([edges[-1]])).ravel(), 1.0, atol=1e-9)
    # zmode: the centre of a most probable bin (the KNN's PDFs have ties).
    centres = 0.5 * (edges[:-1] + edges[1:])
    mode_bin = np.searchsorted(centres, np.ravel(ensemble.ancil["zmode"]))
    np.testing.assert_allclose(centres[mode_bin], np.ravel(ensemble.ancil["zmode"]), atol=1e-12)
    np.testing.assert_allclose(p[np.arange(n), mode_bin], p.max(axis=1), atol=1e-12)
    return p


def test_clap_stage_gives_clapkit_pdfs_on_a_mock_survey(mock, mock_clap, tmp_path):
    _, test, settings = mock
    informer, _ = mock_clap
    handle = informer.get_handle("model")
    ensemble = estimate(CLAPEstimator, "estimate_clap_mock", handle, test, tmp_path, **settings)
    p = check_ensemble(ensemble, len(test["redshift"]), settings)
    np.testing.assert_array_equal(ensemble.ancil["id"], test["object_id"])
    expected = clapkit_predict(informer.model, "clap", test, settings, tmp_path / "own")
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-12)


def test_nondetections_reach_the_network_as_the_limit(mock, mock_clap, tmp_path):
    _, test, settings = mock
    _, folder = mock_clap
    gone = test["mag_g_lsst"] == NONDETECT
    assert 0 < gone.sum() < len(gone)
    replaced = {k: v.copy() for k, v in test.items()}
    replaced["mag_g_lsst"][gone] = settings["mag_limits"]["mag_g_lsst"]
    replaced["mag_err_g_lsst"][gone] = 1.0
    # The model as RAIL pickled it, read back from its file; small chunks change nothing.
    model = str(folder / "clap.pkl")
    chunked = {**settings, "chunk_size": 25}
    with_sentinel = estimate(CLAPEstimator, "clap_sentinel", model, test, tmp_path, **chunked)
    with_limit = estimate(CLAPEstimator, "clap_limit", model, replaced, tmp_path, **settings)
    edges = grid_edges({"zmin": 0.0, **settings})
    np.testing.assert_allclose(
        from_qp(with_sentinel, edges).p, from_qp(with_limit, edges).p, rtol=0, atol=1e-12
    )
    # Another value beyond any magnitude is no non-detection: refused, not read as one.
    replaced["mag_g_lsst"][gone] = 98.0
    with pytest.raises(ValidationError, match=r"mag_g_lsst holds .* magnitude >= 90"):
        estimate(CLAPEstimator, "clap_98", model, replaced, tmp_path, **settings)


@pytest.fixture(scope="module")
def sdss():
    """300 real SDSS galaxies (z < 0.4); u fainter than 21.5 marked undetected (99)."""
    catalog = sdss_catalog().catalog
    usable = np.flatnonzero(np.asarray(catalog["flux_ok"]) & (np.asarray(catalog["z"]) < 0.4))
    chosen = np.sort(np.random.default_rng(0).choice(usable, 300, replace=False))
    train, test = split_rows(len(chosen), 60, seed=4)
    tables = [rail_table(catalog, "ugriz", "sdss", chosen[rows]) for rows in (train, test)]
    for table in tables:
        faint = table["mag_u_sdss"] > 21.5
        table["mag_u_sdss"][faint] = NONDETECT
    assert tables[0]["mag_u_sdss"].tolist().count(NONDETECT) > 0
    return *tables, rail_settings("ugriz", "sdss", "r", {"u": 21.5}, zmax=0.4)


def test_knn_stage_on_sdss_is_clapkits_knn(sdss, tmp_path):
    train, test, settings = sdss
    informer = KNNPhotometryInformer.make_stage(
        name="inform_knn_sdss", model=str(tmp_path / "knn.pkl"), preset="tiny", **settings
    )
    informer.inform(pd.DataFrame(train))  # RAIL's tables come as pandas too
    handle = informer.get_handle("model")
    ensemble = estimate(KNNPhotometryEstimator, "knn_sdss", handle, test, tmp_path, **settings)
    p = check_ensemble(ensemble, len(test["redshift"]), settings)
    expected = clapkit_predict(informer.model, "knn_photometry", test, settings, tmp_path / "own")
    np.testing.assert_allclose(p, expected, rtol=0, atol=1e-12)
    # Real photo-zs: SDSS main-sample colours give redshifts to a few hundredths.
    error = np.abs(np.ravel(ensemble.ancil["zmode"]) - test["redshift"])
    assert np.median(error) < 0.04


def test_clap_stage_on_sdss(sdss, tmp_path):
    train, test, settings = sdss
    informer = CLAPInformer.make_stage(
        name="inform_clap_sdss", model=str(tmp_path / "clap.pkl"), **SMALL_CLAP, **settings
    )
    informer.inform(train)
    ensemble = estimate(
        CLAPEstimator, "clap_sdss", informer.get_handle("model"), test, tmp_path, **settings
    )
    check_ensemble(ensemble, len(test["redshift"]), settings)
    np.testing.assert_allclose(ensemble.ancil["redshift"], test["redshift"])


def test_bad_settings_are_refused_clearly(mock, mock_clap, tmp_path):
    train, test, settings = mock
    informer, _ = mock_clap
    with pytest.raises(ValidationError, match=r"zmax \(0.4\) must be above zmin \(0.5\)"):
        CLAPInformer.make_stage(name="bad_z", **{**settings, "zmin": 0.5})
    with pytest.raises(ValidationError, match="ref_band 'mag_y_lsst' is not among bands"):
        CLAPInformer.make_stage(name="bad_ref", **{**settings, "ref_band": "mag_y_lsst"})
    with pytest.raises(ValidationError, match="unknown configuration keys"):
        CLAPInformer.make_stage(name="bad_key", clapkit_config={"epochs": 3}, **settings)
    unknown = {
        **settings,
        "bands": [*settings["bands"], "mag_y_lsst"],
        "err_bands": [*settings["err_bands"], "mag_err_y_lsst"],
    }
    stage = KNNPhotometryInformer.make_stage(name="bad_band", preset="tiny", **unknown)
    with pytest.raises(ValidationError, match="no column 'mag_y_lsst'"):
        stage.inform(train)
    no_limit = {**settings, "mag_limits": {}}
    stage = KNNPhotometryInformer.make_stage(name="no_limit", preset="tiny", **no_limit)
    with pytest.raises(ValidationError, match=r"mag_g_lsst has .* non-detections .* no limit"):
        stage.inform(train)
    handle = informer.get_handle("model")
    with pytest.raises(ValidationError, match=r"settings \['zmax'\] differ from the informer"):
        estimate(CLAPEstimator, "bad_grid", handle, test, tmp_path, **{**settings, "zmax": 0.5})
    with pytest.raises(ValidationError, match="holds clapkit's 'clap', not 'knn_photometry'"):
        estimate(KNNPhotometryEstimator, "wrong_model", handle, test, tmp_path, **settings)


def test_the_stages_run_in_a_rail_pipeline(mock, tmp_path, monkeypatch):
    """A RAIL pipeline file, its stages run by the command ceci gives each
    (``python3 -m clapkit <Stage> ...``), here in this process."""
    import tables_io
    from rail.core.stage import RailPipeline

    from clapkit.__main__ import main

    train, test, settings = mock
    monkeypatch.chdir(tmp_path)
    tables_io.write({"photometry": train}, "train.hdf5")
    tables_io.write({"photometry": test}, "test.hdf5")
    stage_settings = {**settings, "hdf5_groupname": "photometry"}
    pipe = RailPipeline()
    pipe.inform_knn = KNNPhotometryInformer.build(
        aliases={"input": "input_train"}, preset="tiny", **stage_settings
    )
    pipe.estimate_knn = KNNPhotometryEstimator.build(
        aliases={"input": "input_test"},
        connections={"model": pipe.inform_knn.io.model},
        **stage_settings,
    )
    inputs = {"input_train": "train.hdf5", "input_test": "test.hdf5"}
    pipe.initialize(inputs, {"output_dir": ".", "log_dir": ".", "resume": False}, None)
    pipe.save("knn.yml")
    assert "module_name: clapkit.interop.rail" in Path("knn.yml").read_text()
    for command in (
        "KNNPhotometryInformer --input=train.hdf5 --name=inform_knn --config=knn_config.yml "
        "--model=model.pkl",
        "KNNPhotometryEstimator --model=model.pkl --input=test.hdf5 --name=estimate_knn "
        "--config=knn_config.yml --output=pdfs.hdf5",
    ):
        monkeypatch.setattr("sys.argv", ["clapkit", *command.split()])
        assert main() == 0
    ensemble = qp.read("pdfs.hdf5")
    check_ensemble(ensemble, len(test["redshift"]), settings)
