"""``clapkit predict --dask`` on a LocalCluster of two worker processes: the same PDFs as
the single-process run, in input order, from GalaxySet, FITS and Parquet inputs; a worker
killed mid-run; refusals before any work."""

from __future__ import annotations

import json
import os
import shutil
import signal
from dataclasses import dataclass

import numpy as np
import pytest
from astropy.table import Table

from clapkit.cli import main
from clapkit.errors import ValidationError
from clapkit.photoz.catalog_source import CatalogSource, open_source
from clapkit.photoz.dask_predict import predict_run_dask
from clapkit.photoz.pipeline import PhotoZTrainSettings, predict_run, train_run
from clapkit.runs import RunDir

distributed = pytest.importorskip("distributed")

NETWORK_STAGES = ("clap_scl", "clap_refit", "clap", "clap_recal")


def quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_galaxies, tiny_config):
    """A tiny run of CLAP (refit head trained at training) and the photometry KNN on a
    catalog-only set, and the single-process PDFs of its test split and of every row."""
    root = tmp_path_factory.mktemp("dask_predict")
    data = root / "catalog.h5"
    galaxies = make_galaxies(n=300, images=False, bands="griz")
    galaxies.save(data)
    config = {**tiny_config, "clap": {**tiny_config["clap"], "refit_on": "valid"}}
    settings = PhotoZTrainSettings("clap,knn_photometry", config=config, n_bins=20, z_max=0.4)
    run = RunDir(root / "run")
    train_run(data, run, settings, log=quiet)
    single = RunDir(root / "single")
    shutil.copytree(run.root, single.root)
    predict_run(single, data, log=quiet)
    everything = RunDir(root / "single_all")
    shutil.copytree(run.root, everything.root)
    predict_run(everything, data, split=None, log=quiet)
    return {
        "root": root,
        "data": data,
        "run": run,
        "single": single,
        "all": everything,
        "catalog": galaxies.catalog,
    }


def fresh_run(trained, name):
    run = RunDir(trained["root"] / name)
    shutil.copytree(trained["run"].root, run.root)
    return run


def assert_same_pdfs(expected: RunDir, got: RunDir, methods):
    for method in methods:
        want, want_attrs = expected.load_pdfs(method)
        have, have_attrs = got.load_pdfs(method)
        np.testing.assert_array_equal(have.ids, want.ids)
        if want.z_true is None:
            assert have.z_true is None
        else:
            np.testing.assert_array_equal(have.z_true, want.z_true)
        if method in NETWORK_STAGES:
            # A float32 forward pass of 1-3 rows takes another kernel than one of 4 or
            # more (measured: 1e-8 in the probabilities); see the module's notes.
            np.testing.assert_allclose(have.p, want.p, rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(have.p, want.p)
        assert want_attrs["method"] == have_attrs["method"]
        assert json.loads(json.dumps(want_attrs["config"])) == have_attrs["config"]
        for column, values in want_attrs.get("columns", {}).items():
            np.testing.assert_allclose(have_attrs["columns"][column], values, atol=1e-6)


def test_partitions_give_the_single_process_pdfs_in_input_order(trained, cluster):
    run = fresh_run(trained, "dask_test_split")
    record = predict_run_dask(
        run, trained["data"], cluster.scheduler_address, partition_size=60, log=quiet
    )
    outputs = ["clap_scl", "clap_raw", "clap_recal", "clap_refit", "clap", "knn_photometry"]
    assert sorted(run.methods()) == sorted(outputs)
    assert_same_pdfs(trained["single"], run, outputs)
    catalog = trained["catalog"]
    test_ids = np.asarray(catalog["id"])[np.asarray(catalog["split"]) == "test"]
    np.testing.assert_array_equal(run.load_pdfs("clap")[0].ids, test_ids)
    assert record["dask"]["galaxies"] == len(test_ids)
    is_test = np.asarray(catalog["split"]) == "test"
    ranges = [is_test[start : start + 60].any() for start in range(0, len(catalog), 60)]
    assert record["dask"]["partitions"] == sum(ranges)  # only ranges holding test galaxies
    assert not list(run.pdfs_dir.glob(".*tmp*"))


def test_every_row_with_one_partition_in_flight(trained, cluster):
    run = fresh_run(trained, "dask_all")
    predict_run_dask(
        run,
        trained["data"],
        cluster.scheduler_address,
        partition_size=70,
        split=None,
        in_flight=1,
        log=quiet,
    )
    assert_same_pdfs(trained["all"], run, run.methods())
    np.testing.assert_array_equal(
        run.load_pdfs("knn_photometry")[0].ids, np.asarray(trained["catalog"]["id"])
    )


def photometric_catalog(trained) -> Table:
    """The catalog as a survey would give it: no redshift, no split."""
    catalog = trained["catalog"].copy()
    catalog.remove_columns(["z", "split"])
    return catalog


@pytest.mark.parametrize("suffix", [".fits", ".parquet"])
def test_fits_and_parquet_catalogs_for_the_photometry_knn(trained, cluster, suffix):
    path = trained["root"] / f"photometry{suffix}"
    photometric_catalog(trained).write(path, overwrite=True)
    run = fresh_run(trained, f"dask{suffix}")
    predict_run_dask(
        run,
        path,
        cluster.scheduler_address,
        methods=["knn_photometry"],
        partition_size=70,
        split=None,
        log=quiet,
    )
    assert run.methods() == ["knn_photometry"]
    got, _ = run.load_pdfs("knn_photometry")
    want, _ = trained["all"].load_pdfs("knn_photometry")
    assert got.z_true is None  # a photometric catalog has no redshifts
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.p, want.p)


def test_parquet_row_groups_are_read_across_their_boundaries(trained):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = trained["root"] / "groups.parquet"
    catalog = photometric_catalog(trained)
    pq.write_table(
        pa.table({n: np.asarray(catalog[n]) for n in catalog.colnames}), path, row_group_size=40
    )
    source = open_source(path)
    assert source.n_rows == len(catalog)
    for start, stop in [(0, 1), (35, 125), (79, 81), (280, 300)]:
        rows = source.read(start, stop)
        np.testing.assert_array_equal(rows.ids, np.asarray(catalog["id"])[start:stop])


def test_cli_predict_dask(trained, cluster, capsys):
    run = fresh_run(trained, "dask_cli")
    argv = ["predict", "--run", str(run.root), "--data", str(trained["data"])]
    assert main([*argv, "--partition-size", "10"]) == 2
    assert "--partition-size only apply with --dask" in capsys.readouterr().err
    dask = ["--dask", cluster.scheduler_address, "--method", "knn_photometry"]
    assert main([*argv, *dask, "--partition-size", "50"]) == 0
    assert run.methods() == ["knn_photometry"]
    assert run.read_json(run.predict_record_path)["dask"]["partition_size"] == 50
    assert main([*argv, *dask]) == 2  # the file exists: --overwrite needed
    assert "overwrite" in capsys.readouterr().err


def test_a_worker_killed_mid_run_is_replaced(trained, cluster):
    run = fresh_run(trained, "dask_killed")
    with distributed.Client(cluster.scheduler_address) as client:
        pids = list(client.run(os.getpid).values())
    killed = []

    def kill_a_worker(line):
        if line.startswith("predicted") and not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    predict_run_dask(
        run,
        trained["data"],
        cluster.scheduler_address,
        partition_size=30,
        in_flight=4,
        split=None,
        log=kill_a_worker,
    )
    assert killed
    assert_same_pdfs(trained["all"], run, run.methods())


@dataclass(frozen=True)
class CrashingSource(CatalogSource):
    """A catalog whose rows past the first partition kill the worker reading them."""

    def read(self, start, stop, split=None):
        if start > 0:
            os._exit(1)
        return super().read(start, stop, split)


def test_a_worker_that_keeps_dying_fails_in_one_line_with_no_output(trained, cluster, monkeypatch):
    run = fresh_run(trained, "dask_dying")
    source = open_source(trained["data"])
    crashing = CrashingSource(**{k: getattr(source, k) for k in source.__dataclass_fields__})
    monkeypatch.setattr("clapkit.photoz.dask_predict.open_source", lambda path: crashing)
    # The default (3 retries) would restart a worker four times: the same outcome, slower.
    monkeypatch.setattr(cluster.scheduler, "allowed_failures", 0)
    with pytest.raises(ValidationError, match=r"workers died .* no PDF file was written") as err:
        predict_run_dask(
            run, trained["data"], cluster.scheduler_address, partition_size=100, log=quiet
        )
    assert "\n" not in str(err.value)
    assert not run.pdfs_dir.exists() or not any(run.pdfs_dir.iterdir())


def test_refusals_come_before_any_work(trained, tmp_path):
    run = fresh_run(trained, "dask_refused")
    fits = tmp_path / "short.fits"
    photometric_catalog(trained)["id", "mag_g", "mag_r", "mag_i"].write(fits)
    address = "tcp://127.0.0.1:1"  # never contacted: every refusal comes first
    with pytest.raises(
        ValidationError, match=r"short.fits: knn_photometry reads .*missing \['mag_z'\]"
    ):
        predict_run_dask(run, fits, address, methods=["knn_photometry"], split=None)
    with pytest.raises(ValidationError, match=r"short.fits: .*lacks \['mag_z', 'magerr_g'"):
        predict_run_dask(run, fits, address, methods=["clap"], split=None)
    with pytest.raises(ValidationError, match=r"reads a GalaxySet .* FITS .* Parquet"):
        predict_run_dask(run, tmp_path / "catalog.csv", address)
    with pytest.raises(ValidationError, match=r"--dask predicts .* not \['softmax'\]"):
        record = json.loads(run.train_record_path.read_text())
        record["methods"]["softmax"] = {"status": "done"}
        run.train_record_path.write_text(json.dumps(record))
        predict_run_dask(run, trained["data"], address)
    assert not run.pdfs_dir.exists() or not any(run.pdfs_dir.iterdir())


def test_image_clap_and_the_published_target_refit_are_refused(trained, tmp_path):
    run = fresh_run(trained, "dask_images")
    record = json.loads(run.train_record_path.read_text())
    photometry = tmp_path / "photometry.parquet"
    photometric_catalog(trained).write(photometry)
    # The spec of a run trained on 16-pixel gri images with no catalog columns.
    image_spec = {
        **record["input_spec"],
        "kind": "images",
        "instrument": "sdss",
        "bands": ["g", "r", "i"],
        "image_size": 16,
        "crop": 12,
        "columns": [],
        "mean": [],
        "std": [],
    }
    images = {**record, "input_spec": image_spec}
    run.train_record_path.write_text(json.dumps(images))
    with pytest.raises(
        ValidationError,
        match=r"PARQUET catalog has no images, but this run's CLAP reads 'sdss' images",
    ):
        predict_run_dask(run, photometry, "local", split=None)
    target = {
        **record,
        "config": {**record["config"], "clap": {**record["config"]["clap"], "refit_on": "target"}},
    }
    run.train_record_path.write_text(json.dumps(target))
    with pytest.raises(ValidationError, match=r"refit_on='target'.*cannot be split"):
        predict_run_dask(run, photometry, "local", split=None)
