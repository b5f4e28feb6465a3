"""PDF files, the run directory and evaluation: round trips, stamps and refusals."""

import json
import re

import h5py
import numpy as np
import pytest
from astropy.table import Table

import clapkit
from clapkit.cli import main
from clapkit.errors import FileFormatError, OverwriteError, ValidationError
from clapkit.evaluation import (
    EvaluationSettings,
    attach_truth,
    bin_variables,
    evaluate_file,
    evaluate_run,
    format_table,
    read_galaxy_table,
)
from clapkit.metrics import PDFs
from clapkit.runs import RunDir, load_pdfs, save_pdfs

EDGES = np.linspace(0, 0.4, 81)


def make_pdfs(n=50, seed=0, ids=None, with_truth=True):
    rng = np.random.default_rng(seed)
    mu = rng.uniform(0.05, 0.35, n)
    z = rng.normal(mu, 0.02).clip(0, 0.4)
    return PDFs.from_gaussian(
        mu, np.full(n, 0.02), EDGES, z_true=z if with_truth else None, ids=ids
    )


@pytest.mark.parametrize("ids", [None, np.array([f"gal-{i}" for i in range(50)])])
def test_pdf_file_round_trip_carries_version_and_config(tmp_path, ids):
    base = make_pdfs()
    pdfs = PDFs(base.p.astype(np.float32), EDGES, z_true=base.z_true, ids=ids)
    coverage = np.linspace(0, 100, pdfs.n)
    path = save_pdfs(
        tmp_path / "m.h5",
        pdfs,
        method="m",
        config={"k": 3, "bands": ("u", "g")},
        columns={"coverage": coverage},
    )
    loaded, attrs = load_pdfs(path)
    assert np.array_equal(loaded.p, pdfs.p) and loaded.p.dtype == np.float32
    assert np.array_equal(loaded.edges, EDGES) and np.array_equal(loaded.z_true, pdfs.z_true)
    assert loaded.ids.tolist() == pdfs.ids.tolist()
    np.testing.assert_array_equal(attrs.pop("columns")["coverage"], coverage)
    assert attrs == {
        "method": "m",
        "clapkit_version": clapkit.__version__,
        "config": {"k": 3, "bands": ["u", "g"]},
    }
    with pytest.raises(ValueError, match=r"column 'coverage' must have shape"):
        save_pdfs(tmp_path / "bad.h5", pdfs, method="m", columns={"coverage": coverage[:-1]})
    assert not (tmp_path / "bad.h5").exists()


def test_pdf_file_refuses_overwrite_and_bad_files(tmp_path):
    path = save_pdfs(tmp_path / "m.h5", make_pdfs(), method="m")
    before = path.read_bytes()
    with pytest.raises(OverwriteError, match="overwrite"):
        save_pdfs(path, make_pdfs(seed=1), method="m")
    assert path.read_bytes() == before
    save_pdfs(path, make_pdfs(seed=1), method="m", overwrite=True)
    assert not np.array_equal(load_pdfs(path)[0].p, make_pdfs().p)

    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(before[: len(before) // 2])
    with pytest.raises(FileFormatError, match="truncated"):
        load_pdfs(truncated)
    with pytest.raises(FileFormatError, match=r"absent\.h5: no such file"):
        load_pdfs(tmp_path / "absent.h5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["p"] = np.ones((2, 2))
    with pytest.raises(FileFormatError, match="was not written by clapkit"):
        load_pdfs(foreign)
    incomplete = tmp_path / "incomplete.h5"
    incomplete.write_bytes(before)
    with h5py.File(incomplete, "a") as f:
        del f.attrs["complete"]
    with pytest.raises(FileFormatError, match="incomplete"):
        load_pdfs(incomplete)
    with pytest.raises(ValueError, match="method name"):
        save_pdfs(tmp_path / "x.h5", make_pdfs(), method="../evil")


def test_evaluate_run_writes_metrics_for_every_method_and_refuses_to_overwrite(tmp_path):
    run = RunDir(tmp_path / "run")
    run.save_pdfs("good", make_pdfs(seed=2))
    narrow = make_pdfs(seed=2)
    overconfident = PDFs.from_gaussian(
        narrow.point_estimate(), np.full(50, 0.004), EDGES, z_true=narrow.z_true
    )
    run.save_pdfs("overconfident", overconfident)
    results = evaluate_run(run, EvaluationSettings(z_bins=2))
    stored = json.loads((run.root / "metrics.json").read_text())
    assert stored["clapkit_version"] == clapkit.__version__
    assert sorted(stored["methods"]) == ["good", "overconfident"]
    assert len(stored["methods"]["good"]["by_z_true"]) == 2
    assert (
        results["overconfident"]["summary"]["coverage_68"]
        < results["good"]["summary"]["coverage_68"]
    )
    with pytest.raises(OverwriteError):
        evaluate_run(run)
    text = format_table(results)
    assert "overconfident" in text.splitlines()[3] and "σ_MAD" in text.splitlines()[0]


def test_evaluate_with_a_truth_catalog_matches_on_id(tmp_path):
    truth_pdfs = make_pdfs(seed=3, ids=np.arange(100, 150))
    path = save_pdfs(
        tmp_path / "m.h5", make_pdfs(seed=3, ids=np.arange(100, 150), with_truth=False), method="m"
    )
    with pytest.raises(ValueError, match="no z_true"):
        evaluate_file(path)
    shuffled = np.random.default_rng(0).permutation(50)
    truth = Table({"objid": truth_pdfs.ids[shuffled], "zspec": truth_pdfs.z_true[shuffled]})
    method, result = evaluate_file(path, truth, id_column="objid", z_column="zspec")
    assert method == "m"
    assert result["summary"]["crps"] == pytest.approx(truth_pdfs.crps().mean())
    with pytest.raises(ValueError, match=r"not in the truth catalog, e.g. 100"):
        attach_truth(truth_pdfs, Table({"id": truth_pdfs.ids[1:], "z": truth_pdfs.z_true[1:]}))
    with pytest.raises(ValueError, match="lacks column 'z'"):
        attach_truth(truth_pdfs, Table({"id": truth_pdfs.ids}))


def test_evaluate_run_stores_coverage_curves_bins_and_a_galaxy_table(tmp_path):
    run = RunDir(tmp_path / "run")
    calibrated = make_pdfs(n=400, seed=4)
    ids = calibrated.ids
    run.save_pdfs("calibrated", calibrated)
    rng = np.random.default_rng(4)
    catalog = Table(
        {"id": ids[::-1], "mag_g": rng.uniform(17, 19, 400), "mag_r": rng.uniform(16, 18, 400)}
    )
    evaluate_run(run, EvaluationSettings(z_bins=3, extra_bins=4), catalog=catalog)
    result = run.read_json("metrics.json")["methods"]["calibrated"]
    curve = result["coverage_curve"]
    assert len(curve["levels"]) == len(curve["central"]) == len(curve["hpd"])
    # Calibrated Gaussians: coverage tracks the nominal level, both central and HPD.
    np.testing.assert_allclose(curve["central"], curve["levels"], atol=0.08)
    np.testing.assert_allclose(curve["hpd"], curve["levels"], atol=0.08)
    assert [len(result[k]) for k in ("by_z_true", "by_mag_r", "by_g_r")] == [3, 4, 4]
    table = read_galaxy_table(run.root / "galaxies.h5")
    assert table["id"].tolist() == ids.tolist()  # PDF order, not catalog order
    expected_colour = np.asarray(catalog["mag_g"] - catalog["mag_r"])[::-1]
    np.testing.assert_allclose(table["g_r"], expected_colour)
    np.testing.assert_allclose(table["calibrated.pit"], calibrated.pit())
    np.testing.assert_allclose(table["calibrated.z_phot"], calibrated.point_estimate())
    assert sum(row["n"] for row in result["by_g_r"]) == 400
    # The table is written only with --overwrite, like metrics.json.
    with pytest.raises(OverwriteError, match=r"galaxies\.h5"):
        evaluate_run(run, out=tmp_path / "elsewhere.json", catalog=catalog)


def test_evaluate_run_refuses_methods_on_different_galaxies(tmp_path):
    run = RunDir(tmp_path / "run")
    run.save_pdfs("a", make_pdfs(seed=5))
    run.save_pdfs("b", make_pdfs(seed=5, ids=np.arange(500, 550)))
    with pytest.raises(ValidationError, match="differ"):
        evaluate_run(run)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"outlier_threshold": 0}, "outlier_threshold must be a number > 0, got 0"),
        ({"z_bins": 0}, "z_bins must be an integer >= 1, got 0"),
        ({"z_bins": [0.2, 0.1]}, "z_bins edges must increase"),
        ({"z_bins": None}, "z_bins must be a number of bins or their edges"),
        ({"extra_bins": 2.5}, "extra_bins must be an integer"),
        ({"id_column": ""}, "id_column must name a catalog column"),
        ({"galaxy_table": "yes"}, "galaxy_table must be True or False"),
    ],
)
def test_a_bad_evaluation_setting_is_refused_by_name(changes, message):
    with pytest.raises(ValidationError, match=message):
        EvaluationSettings(**changes)


def test_evaluation_settings_round_trip_and_give_evaluate_pdfs_its_options():
    settings = EvaluationSettings(z_bins=np.array([0.0, 0.2, 0.4]), outlier_threshold=0.15)
    assert settings.z_bins == (0.0, 0.2, 0.4)
    assert EvaluationSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    options = settings.pdf_options()
    np.testing.assert_array_equal(options["z_bins"], [0.0, 0.2, 0.4])
    assert options["outlier_threshold"] == 0.15


def test_a_bad_setting_given_to_the_command_is_refused_before_anything_is_written(tmp_path, capsys):
    run = RunDir(tmp_path / "run")
    run.save_pdfs("a", make_pdfs(seed=5))
    assert main(["evaluate", "--run", str(run.root), "--z-bins", "0"]) == 2
    assert "z_bins must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not run.metrics_path.exists() and not run.galaxy_table_path.exists()


def test_bin_variables_name_the_missing_galaxy():
    catalog = Table({"id": [1, 2], "mag_r": [17.0, 16.0]})
    assert list(bin_variables(catalog, np.array([2]))) == ["mag_r"]  # no colour without g
    with pytest.raises(ValidationError, match="id 7"):
        bin_variables(catalog, np.array([1, 7]))


def test_the_data_path_moves_with_the_run(tmp_path):
    run = RunDir(tmp_path / "run")
    run.root.mkdir()
    inside, outside = run.root / "data.h5", tmp_path / "data.h5"
    assert run.data_path() is None
    run.write_json("predict.json", {"data": run.relative_data_path(inside)})
    moved = RunDir(tmp_path / "moved")
    run.root.rename(moved.root)
    assert moved.data_path() == moved.root / "data.h5"
    moved.write_json("predict.json", {"data": moved.relative_data_path(outside)}, overwrite=True)
    assert moved.data_path() == outside.resolve()


@pytest.mark.parametrize(
    "value, says",
    [
        (-99.0, "negative"),
        (np.nan, "not finite"),
        (0.55, "outside the PDFs' grid [0, 0.4]"),
        (np.ma.masked, "masked"),
    ],
)
def test_a_truth_redshift_that_is_a_sentinel_or_off_the_grid_is_refused(value, says):
    pdfs = make_pdfs(seed=4, ids=np.arange(200, 250))
    z = np.ma.MaskedArray(pdfs.z_true.copy(), mask=np.zeros(50, bool))
    z[7] = value
    truth = Table({"id": pdfs.ids, "z": z}, masked=True)
    with pytest.raises(
        ValidationError, match=rf"1 of the PDFs' galaxies .*{re.escape(says)}.*id 207"
    ):
        attach_truth(pdfs, truth)
    clean = Table({"id": pdfs.ids, "z": pdfs.z_true}, masked=True)
    assert np.array_equal(attach_truth(pdfs, clean).z_true, pdfs.z_true)


def _layout_paths(run):
    """Every path RunDir names: its Path properties, and its methods with sample names."""
    fixed = {
        name: getattr(run, name)
        for name, member in vars(RunDir).items()
        if isinstance(member, property) and isinstance(getattr(run, name), type(run.root))
    }
    named = {
        "pdf_path": run.pdf_path("knn"),
        "model_dir": run.model_dir("knn"),
        "data_file": run.data_file("survey"),
        "task_dir": run.task_dir("s2c"),
        "translation_dir": run.translation_dir("s2c", "swin"),
        "translated_path": run.translated_path("s2c", "swin"),
        "probe_dir": run.probe_dir("s2c"),
        "evaluation_path": run.evaluation_path("s2c"),
        "morphology_path": run.morphology_path("s2c", "swin"),
        "mass_dir": run.mass_dir("images"),
        "mass_prediction_path": run.mass_prediction_path("images"),
    }
    return fixed, named


def test_every_path_of_the_layout_is_in_the_run_distinct_and_documented(tmp_path):
    import clapkit.runs

    run = RunDir(tmp_path / "run")
    fixed, named = _layout_paths(run)
    paths = [*fixed.values(), *named.values()]
    assert all(path.is_relative_to(run.root) and path != run.root for path in paths)
    assert len(set(paths)) == len(paths)
    # The layout diagram of the module docstring is the documentation of the layout.
    undocumented = [name for name, path in fixed.items() if path.name not in clapkit.runs.__doc__]
    assert undocumented == []


def test_old_runs_keep_their_file_names(tmp_path):
    run = RunDir(tmp_path)
    relative = {path.relative_to(tmp_path).as_posix() for path in run.training_artefacts}
    assert relative == {
        "models",
        "pdfs",
        "clap",
        "train.json",
        "predict.json",
        "metrics.json",
        "galaxies.h5",
        "calibration.png",
    }
    old = {
        run.clap_details_path: "clap/knn.h5",
        run.manifest_path: "manifest.json",
        run.translated_path("s2c", "nrgan"): "translate/s2c/nrgan/translated.h5",
        run.evaluation_path("s2s"): "translate/s2s/evaluation.json",
        run.morphology_path("s2c", "real"): "translate/s2c/morphology_real.h5",
        run.mass_metrics_path: "interpret/mass/metrics.json",
        run.mass_prediction_path("images"): "interpret/mass/images/prediction.h5",
        run.pc_path: "interpret/causal/pc.json",
        run.pid_per_galaxy_path: "interpret/pid/per_galaxy.h5",
        run.attribution_summary_path: "interpret/attributions/summary.json",
    }
    assert [path.relative_to(tmp_path).as_posix() for path in old] == list(old.values())


@pytest.mark.parametrize(
    "path_of",
    [
        lambda run: run.task_dir("../elsewhere"),
        lambda run: run.model_dir("a/b"),
        lambda run: run.translation_dir("s2c", ".hidden"),
        lambda run: run.mass_dir(""),
        lambda run: run.data_file("galaxies"),  # the galaxy table's name
    ],
)
def test_names_that_leave_the_run_or_clash_are_refused(tmp_path, path_of):
    with pytest.raises(ValidationError):
        path_of(RunDir(tmp_path))


def test_json_files_are_named_by_their_path_or_name_and_stay_in_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = RunDir("runs/x")  # relative, as on the command line
    run.root.mkdir(parents=True)
    run.write_json(run.metrics_path, {"methods": {}})
    assert run.read_json("metrics.json")["methods"] == {}
    assert json.loads((tmp_path / "runs" / "x" / "metrics.json").read_text())["methods"] == {}
    with pytest.raises(ValidationError, match="not a file of run"):
        run.read_json(tmp_path / "metrics.json")


def test_translated_sets_and_morphology_tables_are_found_by_name(tmp_path):
    run = RunDir(tmp_path)
    for name in ("swin", "nrgan_smooth", ".partial"):
        (run.task_dir("s2c") / name).mkdir(parents=True)
        (run.task_dir("s2c") / name / "translated.h5").touch()
    for name in ("real", "swin"):
        run.morphology_path("s2c", name).touch()
    assert list(run.translated_sets("s2c")) == ["nrgan_smooth", "swin"]
    assert run.translated_sets("s2c")["swin"] == run.translated_path("s2c", "swin")
    assert run.morphology_paths("s2c") == {
        name: run.morphology_path("s2c", name) for name in ("real", "swin")
    }
    assert run.translated_sets("s2s") == {} and run.morphology_paths("s2s") == {}
