"""The stellar-mass analysis through a run directory, and ``clapkit interpret``."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch

from clapkit.cli import main
from clapkit.data import GalaxySet
from clapkit.errors import OverwriteError, ValidationError
from clapkit.interpret import pipeline, results
from clapkit.interpret.attribution_names import METHODS
from clapkit.interpret.causal_graph import CausalGraph
from clapkit.interpret.fci import selection_reference
from clapkit.interpret.settings import (
    EXTERNAL,
    PUBLISHED_GRID,
    AttributionSettings,
    CausalSettings,
    MassTrainSettings,
    PIDSettings,
)
from clapkit.runs import RunDir
from clapkit.sim.graph import true_graph
from clapkit.testing import single_method_attributions, synthetic_mass_survey

INPUT_SETS = ("photometry", "images", "images_normalised")


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A tiny run with every stage done once (about 20 s on one thread)."""
    root = tmp_path_factory.mktemp("interpret")
    data = root / "survey.h5"
    synthetic_mass_survey(400, seed=2).save(data)
    run = root / "run"
    pipeline.train_stage(data, run, MassTrainSettings(INPUT_SETS, preset="tiny"))
    pipeline.causal_stage(data, run, CausalSettings(k=8, n_permutations=99, n_bootstrap=2))
    pairs = ("photometry_images", "optical_wise")
    pipeline.pid_stage(data, run, PIDSettings(pairs, classifier={"epochs": 15}))
    pipeline.attribute_stage(data, run, AttributionSettings(n_galaxies=6, n_steps=8))
    return data, run


def test_train_writes_models_predictions_and_test_metrics(analysed):
    _, run = analysed
    metrics = json.loads((run / "interpret" / "mass" / "metrics.json").read_text())
    assert set(metrics["input_sets"]) == set(INPUT_SETS)
    for name in INPUT_SETS:
        row = metrics["input_sets"][name]
        assert {"sigma", "median_offset", "crps", "pit_w1"} <= set(row)
        prediction = results.read_mass_prediction(run, name)
        # Every galaxy is predicted: the local tests search the latent space of all.
        assert prediction.pdfs.shape[0] == 400
        assert (prediction.split == "test").sum() == 80
        # Every metric carries a bootstrap interval around it.
        for key in ("sigma", "median_offset", "crps", "pit_w1"):
            lo, hi = row[f"{key}_ci"]
            assert lo <= row[key] <= hi and lo < hi
    # The input sets share their draws: σ(images) − σ(photometry) is paired, galaxy for galaxy.
    assert metrics["bootstrap"]["n_resamples"] == MassTrainSettings().n_bootstrap
    paired = metrics["paired_differences"]
    assert paired["reference"] == "photometry"
    assert set(paired["input_sets"]) == set(INPUT_SETS) - {"photometry"}
    lo, hi = paired["input_sets"]["images"]["sigma"]
    difference = (
        metrics["input_sets"]["images"]["sigma"] - metrics["input_sets"]["photometry"]["sigma"]
    )
    assert lo < hi and lo - 0.05 < difference < hi + 0.05


def test_causal_stage_writes_a_loadable_graph_and_a_pc_result(analysed):
    _, run = analysed
    graph = CausalGraph.load(run / "interpret" / "causal" / "local_tests.json")
    tested = {(edge["source"], tuple(edge["conditioned_on"])) for edge in graph.edges}
    # Every external variable unconditionally and given z (z itself only unconditionally).
    assert tested == {(name, ()) for name in EXTERNAL} | {
        (name, ("z",)) for name in EXTERNAL if name != "z"
    }
    # z regressed out quadratically (as published) by default, and every p-value
    # adjusted with the others of the run.
    assert {edge["regression"] for edge in graph.edges} == {"quadratic"}
    assert all(edge["p_adjusted"] >= edge["p_value"] for edge in graph.edges)
    pc = json.loads((run / "interpret" / "causal" / "pc.json").read_text())
    adjacency = np.asarray(pc["graph"]["adjacency"])
    assert adjacency.shape == (len(pc["graph"]["columns"]),) * 2
    # The synthetic survey is not the mock survey: there is no true graph to score against.
    assert pc["score"] is None and results.read_true_graph(run) is None


def test_on_the_mock_survey_the_causal_stage_records_the_true_graph(analysed, tmp_path):
    data, run = analysed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    survey = synthetic_mass_survey(400, seed=2)  # the analysed galaxies, said to be the mock
    mock = tmp_path / "mock.h5"
    GalaxySet(survey.catalog, survey.stacks, {"source": pipeline.MOCK_SURVEY}).save(mock)
    columns = ["z", "log_mstar", "restframe_u_r", "bulge_fraction", "disk_q", "disk_av"]
    settings = CausalSettings(k=8, n_permutations=99, n_bootstrap=2, pc_columns=columns)
    pipeline.causal_stage(mock, copy, settings, overwrite=True)
    recorded = results.read_true_graph(copy)
    expected = true_graph(pipeline.TRUE_GRAPH_BANDS)
    assert set(recorded.nodes) == set(expected.nodes)
    assert set(recorded.edges) == set(expected.edges)
    assert recorded.graph["selection"] == "selected"
    assert not any(node.startswith("sky_") for node in recorded)
    pc = results.clapkit_json(RunDir(copy).pc_path)
    assert pc["score"] is not None and pc["score_selection"] is not None
    # Selection and the hidden source galaxy join pairs that the induced subgraph separates.
    reached = selection_reference(expected, columns, "selected")
    assert pc["score_selection"]["n_true_edges"] == len(reached.edges())
    assert len(reached.edges()) > pc["score"]["n_true_edges"]
    fci = results.clapkit_json(RunDir(copy).fci_path)
    assert fci["graph"]["columns"] == columns and fci["reference"]["test"] == "d_separation"
    assert fci["score"]["n_true_edges"] == pc["score_selection"]["n_true_edges"]
    scored = results.clapkit_json(RunDir(copy).local_tests_truth_path)
    tested = {(row["source"], tuple(row["conditioned_on"])) for row in scored["rows"]}
    assert ("position_angle", ("z",)) in tested
    assert (
        "position_angle"
        in scored["tables"]["with_selection"]["given z"]["TN"]
        + scored["tables"]["with_selection"]["given z"]["FP"]
    )
    # Redone on data whose truth is unknown, the run no longer claims one.
    pipeline.causal_stage(data, copy, settings, overwrite=True)
    assert results.read_true_graph(copy) is None
    assert not RunDir(copy).local_tests_truth_path.exists()
    # PC alone: the FCI result of the earlier run is not left to mislead.
    only_pc = CausalSettings(k=8, n_permutations=99, n_bootstrap=0, discovery="pc")
    assert pipeline.causal_stage(data, copy, only_pc, overwrite=True)["fci"] is None
    assert not RunDir(copy).fci_path.exists() and RunDir(copy).pc_path.exists()


def test_mi_classifiers_read_the_images_themselves_and_e_bv_beside_both_inputs(analysed, tmp_path):
    data, run = analysed
    summary = json.loads((run / "interpret" / "pid" / "pid.json").read_text())
    # As published: pixels through the classifiers' own CNN, E(B−V) given to both inputs.
    assert summary["image_features"] == "pixels" and summary["auxiliary"] == ["ebv"]
    assert summary["sources"]["images_normalised"]["images"] == "images_normalised"
    for source in summary["sources"].values():
        assert source["columns"][-1] == "ebv"
    # Pixels need no trained stellar-mass model: the stage runs on an empty run.
    settings = PIDSettings(("images_wise",), n_bins=5, classifier={"epochs": 2}, crop=8)
    fresh = pipeline.pid_stage(data, tmp_path / "fresh", settings)
    assert fresh["crop"] == 8 and set(fresh["pairs"]) == {"images_wise"}
    # The latent of the trained model stays an option, recorded as such.
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    latent = pipeline.pid_stage(
        data, copy, PIDSettings(("images_wise",), n_bins=5, classifier={"epochs": 2},
                               image_features="latent"), overwrite=True,
    )  # fmt: skip
    assert latent["image_features"] == "latent"
    # Without auxiliary columns an image input is its latent alone.
    bare = pipeline.pid_stage(
        data, copy, PIDSettings(("images_wise",), n_bins=5, classifier={"epochs": 2},
                                image_features="latent", auxiliary=()), overwrite=True,
    )  # fmt: skip
    assert bare["auxiliary"] == [] and bare["sources"]["images"]["columns"] == []


def test_the_published_mass_grid_needs_a_pseudocount_on_a_small_sample(analysed, tmp_path):
    data, _ = analysed
    grid = {**PUBLISHED_GRID, "classifier": {"epochs": 2}, "pairs": ("optical_wise",)}
    # 520 bins over 6-12.5 for 400 galaxies: test galaxies fall in bins no training galaxy is in.
    with pytest.raises(ValidationError, match=r"prior_pseudocount=0\.5"):
        pipeline.pid_stage(data, tmp_path / "run", PIDSettings(**grid))
    result = pipeline.pid_stage(
        data, tmp_path / "run", PIDSettings(**grid, prior_pseudocount=0.5), overwrite=True
    )
    assert result["n_bins"] == 520 and result["mass_range"] == [6.0, 12.5]
    assert result["prior_pseudocount"] == 0.5
    # With the pseudocount the prior of an empty bin is small, so MIs can be large, not infinite.
    assert np.isfinite(result["pairs"]["optical_wise"]["mi_12"])


def test_pid_terms_add_up_per_galaxy_and_on_average(analysed):
    _, run = analysed
    summary = json.loads((run / "interpret" / "pid" / "pid.json").read_text())
    terms = results.read_pid_per_galaxy(run)
    for pair in ("photometry_images", "optical_wise"):
        row = summary["pairs"][pair]
        per = terms[pair]
        np.testing.assert_allclose(per["redundancy"] + per["unique_1"], per["mi_1"])
        np.testing.assert_allclose(
            per["redundancy"] + per["unique_1"] + per["unique_2"] + per["synergy"], per["mi_12"]
        )
        assert row["redundancy"] == pytest.approx(float(per["redundancy"].mean()))
        assert set(row["by_type"]) <= {"early", "late"}
    assert len(terms["ids"]) == len(terms["galaxy_type"]) == 80


def test_pid_summary_carries_bootstrap_intervals_and_older_summaries_still_read(analysed):
    from clapkit.interpret.information import TERMS, Decomposition
    from clapkit.plots.stellar_mass import plot_mi_bars

    _, run = analysed
    summary = json.loads((run / "interpret" / "pid" / "pid.json").read_text())
    terms = results.read_pid_per_galaxy(run)
    assert summary["bootstrap"]["n_resamples"] == 1000
    assert summary["bootstrap"]["confidence"] == 0.95
    for pair, row in summary["pairs"].items():
        per = terms[pair]
        decomposition = Decomposition(per["mi_1"], per["mi_2"], per["mi_12"])
        expected = decomposition.intervals(seed=summary["bootstrap"]["seed"])
        for term in TERMS:
            lo, hi = row[f"{term}_ci"]
            assert lo <= row[term] <= hi
            assert (lo, hi) == pytest.approx(expected["mean"][term])
            assert row["mmi"][term] == pytest.approx(decomposition.mmi()[term])
            assert row["mmi"][f"{term}_ci"] == pytest.approx(expected["mmi"][term])
    # A summary written before the intervals (no *_ci, mmi or bootstrap) still draws.
    older = {
        pair: {key: value for key, value in row.items() if key in ("inputs", "by_type", *TERMS)}
        for pair, row in summary["pairs"].items()
    }
    for pairs in (summary["pairs"], older):
        _, table = plot_mi_bars(pairs)
        assert len(table) == 4 * len(pairs)


def test_attributions_cover_every_band_and_report_the_sanity_check(analysed):
    _, run = analysed
    arrays = results.read_attributions(run)
    assert arrays["methods"] == list(METHODS) and arrays["method"] == METHODS[0]
    assert arrays["images"].shape == (6, 5, 16, 16)
    assert list(arrays["bands"]) == ["u", "g", "r", "i", "z"]
    assert arrays["edges"].size == 41  # the tiny preset's mass grid
    for method in METHODS:
        own = arrays["per_method"][method]
        assert own["maps"].shape == own["randomised_maps"].shape == (6, 5, 16, 16)
        assert own["profiles"].shape[:2] == own["randomised_profiles"].shape[:2] == (6, 5)
        assert own["rho"].shape == (6,) and np.all(np.abs(own["rho"]) <= 1)
        assert not np.allclose(own["maps"], own["randomised_maps"])
    assert (arrays["per_method"]["smoothgrad"]["maps"] >= 0).all()
    assert not np.allclose(
        arrays["per_method"]["smoothgrad"]["maps"], arrays["per_method"]["saliency"]["maps"]
    )
    # the first method's arrays under the names results of one method used
    for key in results.METHOD_ARRAYS:
        assert arrays[key] is arrays["per_method"][METHODS[0]][key]


def test_the_summary_says_which_methods_pass_the_randomisation_check(analysed):
    _, run = analysed
    arrays = results.read_attributions(run)
    summary = json.loads((run / "interpret" / "attributions" / "summary.json").read_text())
    check = summary["randomisation"]
    assert summary["methods"] == list(METHODS)
    assert summary["smoothgrad"]["n_samples"] == 25
    assert summary["smoothgrad"]["noise_fraction"] == 0.15
    assert sorted(check["passed"] + check["failed"] + check["inconclusive"]) == sorted(METHODS)
    assert list(check["per_method"]) == list(METHODS)
    for method, row in check["per_method"].items():
        # the verdict is the stored ρ's median |ρ| against the threshold
        rho = arrays["per_method"][method]["rho"]
        assert row["median_abs_rho"] == pytest.approx(np.median(np.abs(rho[np.isfinite(rho)])))
        expected = "passed" if row["median_abs_rho"] < check["threshold"] else "failed"
        assert row["verdict"] == expected
        assert method in check[expected]
        assert set(summary["centre_fraction_by_method"][method]) == set(arrays["galaxy_type"])
    # single-method readers find the first method's verdict where it was
    assert summary["method"] == METHODS[0]
    assert check["verdict"] == check["per_method"][METHODS[0]]["verdict"]
    assert summary["centre_fraction_by_type"] == summary["centre_fraction_by_method"][METHODS[0]]
    assert results.randomisation_by_method(summary) == {
        method: {**row, "threshold": check["threshold"]}
        for method, row in check["per_method"].items()
    }


def test_attributions_of_one_method_written_before_several_still_read(analysed, tmp_path):
    _, run = analysed
    root = tmp_path / "run"
    shutil.copytree(run / "interpret" / "attributions", root / "interpret" / "attributions")
    new = results.read_attributions(root)
    single_method_attributions(root, "saliency")
    with h5py.File(RunDir(root).attributions_path) as f:
        assert f.attrs["format_version"] == 1 and "methods" not in f
    old = results.read_attributions(root)
    assert old["methods"] == ["saliency"] and old["method"] == "saliency"
    for key in results.METHOD_ARRAYS:
        np.testing.assert_array_equal(old[key], new["per_method"]["saliency"][key])
        np.testing.assert_array_equal(old["per_method"]["saliency"][key], old[key])
    np.testing.assert_array_equal(old["images"], new["images"])
    summary = results.clapkit_json(RunDir(root).attribution_summary_path)
    (row,) = results.randomisation_by_method(summary).values()
    assert row["verdict"] == summary["randomisation"]["verdict"]


def test_the_command_line_attributes_the_methods_asked_for(analysed, tmp_path, capsys):
    data, run = analysed
    root = tmp_path / "run"
    shutil.copytree(run, root)
    argv = ["interpret", "attribute", "--data", str(data), "--run", str(root), "--quiet"]
    argv += ["--galaxies", "3", "--attributions", "smoothgrad,saliency", "--overwrite"]
    assert main([*argv, "--smoothgrad-samples", "4", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "smoothgrad" in out and "saliency" in out and "integrated_gradients" not in out
    summary = results.clapkit_json(RunDir(root).attribution_summary_path)
    assert summary["methods"] == ["smoothgrad", "saliency"] and summary["method"] == "smoothgrad"
    assert summary["smoothgrad"]["n_samples"] == 4
    arrays = results.read_attributions(root)
    assert arrays["methods"] == ["smoothgrad", "saliency"]
    assert arrays["maps"].shape[0] == 3
    # the same settings again give the same maps: the galaxies and the noise are seeded
    first = arrays["per_method"]["smoothgrad"]["maps"]
    assert main([*argv, "--smoothgrad-samples", "4", "--seed", "1"]) == 0
    again = results.read_attributions(root)["per_method"]["smoothgrad"]["maps"]
    np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize(
    ("stage", "kwargs"),
    [
        (pipeline.causal_stage, {}),
        (pipeline.pid_stage, {}),
        (pipeline.attribute_stage, {}),
    ],
)
def test_results_are_not_replaced_without_overwrite(analysed, stage, kwargs):
    data, run = analysed
    with pytest.raises(OverwriteError, match="already exists"):
        stage(data, run, **kwargs)


def test_stages_that_need_an_untrained_model_say_which(analysed, tmp_path):
    data, _ = analysed
    with pytest.raises(ValidationError, match="'images' stellar-mass model is not trained"):
        pipeline.causal_stage(data, tmp_path / "empty")
    with pytest.raises(ValidationError, match="'images' stellar-mass model is not trained"):
        settings = PIDSettings(("images_wise",), image_features="latent")
        pipeline.pid_stage(data, tmp_path / "empty", settings)
    with pytest.raises(ValidationError, match="unknown input pairs"):
        pipeline.pid_stage(data, tmp_path / "empty", PIDSettings(("images_spectra",)))


def test_variables_not_in_the_catalog_are_refused(analysed, tmp_path):
    data, run = analysed
    with pytest.raises(ValidationError, match="sersic_index"):
        settings = CausalSettings(external=("sersic_index",), n_permutations=99)
        pipeline.causal_stage(data, run, settings, overwrite=True)


def test_too_few_galaxies_for_the_neighbourhood_size_is_refused(analysed):
    data, run = analysed
    with pytest.raises(ValidationError, match="galaxies"):
        settings = CausalSettings(k=200, n_permutations=99)
        pipeline.causal_stage(data, run, settings, overwrite=True)


def test_the_command_line_runs_a_stage_and_refuses_to_overwrite(analysed, capsys):
    data, run = analysed
    argv = ["interpret", "pid", "--data", str(data), "--run", str(run), "--quiet"]
    argv += ["--pairs", "optical_wise", "--bins", "10"]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert "optical_wise" in capsys.readouterr().out
    summary = json.loads((run / "interpret" / "pid" / "pid.json").read_text())
    assert summary["n_bins"] == 10


def test_the_command_line_runs_the_published_overlapping_weighted_local_tests(
    analysed, tmp_path, capsys
):
    data, run = analysed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    argv = ["interpret", "causal", "--data", str(data), "--run", str(copy), "--quiet"]
    argv += ["--external", "hlr,position_angle", "--neighbourhoods", "overlapping"]
    argv += ["--weights", "distance", "--k", "40", "--permutations", "39", "--bootstrap", "0"]
    assert main([*argv, "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "permuted" in out and "efficiency" in out
    graph = CausalGraph.load(copy / "interpret" / "causal" / "local_tests.json")
    for edge in graph.edges:
        assert (edge["neighbourhoods"], edge["weights"], edge["k"]) == (
            "overlapping",
            "distance",
            40,
        )
        assert edge["n_centres"] == 400 and 0 <= edge["pred_efficiency"] <= 1
        assert edge["effect_permuted"] is not None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_training_on_a_gpu_this_torch_lacks_is_refused_before_anything_is_written(
    analysed, tmp_path, capsys
):
    data, _ = analysed
    run = tmp_path / "run"
    argv = ["interpret", "train", "--data", str(data), "--run", str(run), "--quiet"]
    assert main([*argv, "--input-sets", "photometry", "--device", "cuda"]) == 2
    assert "sees no CUDA GPU" in capsys.readouterr().err
    assert not run.exists()


@pytest.mark.parametrize(
    ("flag", "message"),
    [(["--bootstrap", "-1"], "n_bootstrap"), (["--confidence", "1.5"], "confidence")],
)
def test_bad_interval_settings_are_refused_before_anything_is_written(
    analysed, tmp_path, capsys, flag, message
):
    data, _ = analysed
    run = tmp_path / "run"
    argv = ["interpret", "train", "--data", str(data), "--run", str(run), "--quiet"]
    assert main([*argv, "--input-sets", "photometry", *flag]) == 2
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_the_command_line_runs_fci_alone(analysed, tmp_path, capsys):
    data, run = analysed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    argv = ["interpret", "causal", "--data", str(data), "--run", str(copy), "--quiet"]
    argv += ["--k", "8", "--permutations", "99", "--bootstrap", "0", "--discovery", "fci"]
    assert main([*argv, "--overwrite"]) == 0
    assert RunDir(copy).fci_path.is_file() and not RunDir(copy).pc_path.exists()
    stored = results.clapkit_json(RunDir(copy).fci_path)
    assert stored["score"] is None and stored["graph"]["test"] == "fisherz"
    assert main([*argv[:-2], "--discovery", "lingam", "--overwrite"]) == 2
    assert "discovery" in capsys.readouterr().err


def test_a_mock_survey_with_varying_conditions_records_them_in_the_true_graph(analysed, tmp_path):
    _, run = analysed
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    survey = synthetic_mass_survey(400, seed=2)
    mock = tmp_path / "mock.h5"
    meta = {"source": pipeline.MOCK_SURVEY, "observing": "varying"}
    GalaxySet(survey.catalog, survey.stacks, meta).save(mock)
    settings = CausalSettings(k=8, n_permutations=20, n_bootstrap=2, pc_columns=["z", "disk_q"])
    pipeline.causal_stage(mock, copy, settings, overwrite=True)
    recorded = results.read_true_graph(copy)
    expected = true_graph(pipeline.TRUE_GRAPH_BANDS, observing="varying")
    assert set(recorded.edges) == set(expected.edges)
    assert recorded.has_edge("sky_sdss_r", "mag_r")


@pytest.mark.parametrize(
    ("value", "message"), [("6,x", "mass_range must be two numbers"), ("12,6", "must rise")]
)
def test_a_bad_mass_range_is_refused_before_anything_is_written(
    analysed, tmp_path, capsys, value, message
):
    data, _ = analysed
    run = tmp_path / "run"
    argv = ["interpret", "pid", "--data", str(data), "--run", str(run), "--quiet"]
    assert main([*argv, "--mass-range", value]) == 2
    assert message in capsys.readouterr().err
    assert not run.exists()
