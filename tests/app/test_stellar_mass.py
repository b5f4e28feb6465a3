"""The stellar-mass dashboard shows what ``clapkit interpret`` stored, per input set,
test conditioning, input pair and galaxy, and says what to run when a run lacks it."""

import json
import os
import shutil

import numpy as np
import panel as pn
import pytest
from astropy.table import Table
from clapkit_app.images import stretch_band
from clapkit_app.stellar_mass import (
    MASS_COLUMNS,
    StellarMass,
    attribution_label,
    chosen_tests,
    given,
)
from clapkit_app.stellar_mass_plots import (
    AGREES,
    DEPENDENT,
    DISAGREES,
    INDEPENDENT,
    TERMS,
    UNSCORED,
    source_label,
    stacked,
)
from clapkit_app.stellar_mass_store import load_stellar_mass, read_stellar_mass

from clapkit.data import GalaxySet
from clapkit.interpret import results
from clapkit.interpret.attribution_names import METHODS
from clapkit.interpret.causal_graph import CausalGraph
from clapkit.interpret.discovery import DiscoveryResult
from clapkit.interpret.local_tests import run_local_tests
from clapkit.sim.graph import true_graph
from clapkit.testing import single_method_attributions, synthetic_interpret_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return synthetic_interpret_run(tmp_path_factory.mktemp("stellar_mass") / "run")


@pytest.fixture(scope="module")
def data(run_root):
    return read_stellar_mass(run_root)


@pytest.fixture
def copy(run_root, tmp_path):
    """A copy of the run to break or change."""
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    return root


def hook(viewer, css_class):
    """The one object of the viewer with ``css_class`` (the browser tests' hooks)."""
    found = [
        obj
        for obj in viewer.__panel__().select()
        if css_class in (getattr(obj, "css_classes", None) or [])
    ]
    assert len(found) == 1, f"{len(found)} objects with class {css_class}"
    return found[0]


def has_hook(viewer, css_class):
    return any(
        css_class in (getattr(obj, "css_classes", None) or [])
        for obj in viewer.__panel__().select()
    )


def glyph_data(viewer, css_class, name):
    """The data of the glyph renderer ``name`` in the Bokeh figure of ``css_class``."""
    return hook(viewer, css_class).object.select_one({"name": name}).data_source.data


def test_a_complete_run_has_every_part_and_no_problem(data):
    assert data.ok and data.problems == []
    assert list(data.mass) == ["photometry", "images", "images_normalised"]
    assert data.causal is not None and data.pc is not None and data.pid is not None
    assert data.attributions is not None
    # The synthetic survey is not the mock survey: no score, so no true graph.
    assert data.pc_score is None and data.truth is None


def test_the_scatter_shows_the_test_split_of_the_stored_estimates(run_root, data):
    viewer = StellarMass(data=data)
    pn.panel(viewer).get_root()  # what a notebook does to show it
    assert hook(viewer, "ck-input-set").value == "images"
    with GalaxySet.load(run_root / "interpret_survey.h5") as survey:
        split = np.asarray(survey.catalog["split"]).astype(str)
        test_ids = np.asarray(survey.ids)[split == "test"]
    for name in ("images", "photometry"):
        hook(viewer, "ck-input-set").value = name
        prediction = results.read_mass_prediction(run_root, name)
        rows = np.searchsorted(prediction.ids, test_ids)
        points = glyph_data(viewer, "ck-mass-scatter", "points")
        np.testing.assert_array_equal(points["id"], test_ids)
        np.testing.assert_allclose(points["true"], prediction.true[rows])
        np.testing.assert_allclose(points["point"], prediction.point[rows])
        sigma = data.mass[name].metrics["sigma"]
        assert f"σ = {sigma:.3f} dex" in hook(viewer, "ck-mass-scatter").object.title.text
    caption = hook(viewer, "ck-mass-caption").object
    assert f"the {len(test_ids)} test-split galaxies" in caption


def test_the_mass_table_holds_the_stored_metrics_and_its_rows_select_the_input_set(run_root, data):
    stored = json.loads((run_root / "interpret" / "mass" / "metrics.json").read_text())
    viewer = StellarMass(data=data)
    table = hook(viewer, "ck-mass-table")
    assert table.value["input set"].tolist() == ["photometry", "images", "images_normalised"]
    for key, _, _ in MASS_COLUMNS:
        expected = [stored["input_sets"][n][key] for n in table.value["input set"]]
        np.testing.assert_allclose(table.value[key], expected)
    assert table.selection == [1]
    table.selection = [0]
    assert hook(viewer, "ck-input-set").value == "photometry"
    assert "photometry" in hook(viewer, "ck-mass-scatter").object.title.text
    hook(viewer, "ck-input-set").value = "images"
    assert table.selection == [1]


def test_the_mass_table_shows_sigma_intervals_and_the_paired_difference(run_root, data):
    stored = json.loads((run_root / "interpret" / "mass" / "metrics.json").read_text())
    table = hook(StellarMass(data=data), "ck-mass-table")
    rows = dict(zip(table.value["input set"], table.value["sigma_ci"], strict=True))
    lo, hi = stored["input_sets"]["images"]["sigma_ci"]
    assert rows["images"] == f"{lo:.3f}–{hi:.3f}"
    paired = dict(zip(table.value["input set"], table.value["sigma_paired"], strict=True))
    assert paired["photometry"] == "reference"
    lo, hi = stored["paired_differences"]["input_sets"]["images"]["sigma"]
    assert paired["images"] == f"{lo:.3f}–{hi:.3f}" + ("" if lo <= 0 <= hi else " *")


def test_metrics_stored_before_the_intervals_show_no_interval_columns(copy):
    path = copy / "interpret" / "mass" / "metrics.json"
    stored = json.loads(path.read_text())
    stored.pop("paired_differences")
    stored.pop("bootstrap")
    for row in stored["input_sets"].values():
        for key in [k for k in row if k.endswith("_ci")]:
            row.pop(key)
    path.write_text(json.dumps(stored))
    data = read_stellar_mass(copy)
    assert data.ok and data.paired_reference is None
    table = hook(StellarMass(data=data), "ck-mass-table")
    assert "sigma_ci" not in table.value and "sigma_paired" not in table.value
    assert "bootstrap intervals" not in hook(StellarMass(data=data), "ck-mass-caption").object


def test_without_the_mi_decomposition_the_predictions_still_give_the_test_split(copy):
    shutil.rmtree(copy / "interpret" / "pid")
    data = read_stellar_mass(copy)
    assert any("clapkit interpret pid" in p for p in data.problems)
    viewer = StellarMass(data=data)
    prediction = results.read_mass_prediction(copy, "images")
    test_ids = prediction.ids[prediction.split == "test"]
    np.testing.assert_array_equal(glyph_data(viewer, "ck-mass-scatter", "points")["id"], test_ids)
    assert f"the {len(test_ids)} test-split galaxies" in hook(viewer, "ck-mass-caption").object
    assert has_hook(viewer, "ck-missing-pid") and not has_hook(viewer, "ck-pid-bars")


def test_the_causal_graph_draws_each_test_with_its_effect_and_verdict(run_root, data):
    graph = CausalGraph.load(run_root / "interpret" / "causal" / "local_tests.json")
    viewer = StellarMass(data=data)
    conditioning = hook(viewer, "ck-conditioning")
    assert conditioning.options == ["—", "z"] and conditioning.value == "z"
    nodes = glyph_data(viewer, "ck-causal-graph", "nodes")
    assert set(nodes["name"]) == {"images", "latent", "log_mstar", *graph.nodes["X_ex"]}
    for choice in ("z", "—"):
        conditioning.value = choice
        edges = glyph_data(viewer, "ck-causal-graph", "edges")
        assert len(edges["x0"]) == 2 + len(graph.nodes["X_ex"])  # X_in → S → Y, X_ex → Y
        tested = chosen_tests(graph.edges, choice)
        for i, row in enumerate(tested, start=2):
            assert given(row["conditioned_on"]) in (choice, "—")
            assert edges["width"][i] == pytest.approx(1.5 + 10 * abs(row["effect"]))
            assert edges["colour"][i] == (DEPENDENT if row["significant"] else INDEPENDENT)
            assert f"{row['effect']:+.3f}" in edges["info"][i]
        assert len(glyph_data(viewer, "ck-causal-graph", "heads")["x"]) == len(edges["x0"])
    # The graph's own view of the head test of each variable is what "z" draws.
    conditioning.value = "z"
    widths = glyph_data(viewer, "ck-causal-graph", "edges")["width"][2:]
    strengths = [
        d["strength"] for _, _, d in graph.to_networkx().edges(data=True) if "strength" in d
    ]
    np.testing.assert_allclose(widths, 1.5 + 10 * np.array(strengths))


def test_the_tests_table_lists_every_test_and_its_rows_choose_the_conditioning(data):
    viewer = StellarMass(data=data)
    table = hook(viewer, "ck-local-tests")
    rows = data.causal.edges
    assert table.value["source"].tolist() == [r["source"] for r in rows]
    assert table.value["given"].tolist() == [given(r["conditioned_on"]) for r in rows]
    np.testing.assert_allclose(table.value["p_value"], [r["p_value"] for r in rows])
    np.testing.assert_allclose(table.value["p_adjusted"], [r["p_adjusted"] for r in rows])
    assert table.value["fit"].tolist() == [
        r["regression"] if r["conditioned_on"] else "" for r in rows
    ]
    assert table.value["verdict"].tolist() == [r["verdict"] for r in rows]
    efficiency = table.value["pred_efficiency"].to_numpy()
    np.testing.assert_allclose(efficiency, [r["pred_efficiency"] for r in rows])
    assert np.all((efficiency >= 0) & (efficiency <= 1))
    np.testing.assert_allclose(
        table.value["pred_efficiency_spread"], [r["pred_efficiency_spread"] for r in rows]
    )
    assert set(table.value["neighbourhoods"]) == {"disjoint"}
    assert table.value["effect_permuted"].isna().all()  # published baseline: overlapping only
    unconditional = table.value["given"].tolist().index("—")
    table.selection = [unconditional]
    assert hook(viewer, "ck-conditioning").value == "—"
    assert "conditioned on —" in hook(viewer, "ck-causal-graph").object.title.text


#: Keys of a stored local test added by issue 18.
LATER_KEYS = (
    "regression",
    "p_adjusted",
    "neighbourhoods",
    "weights",
    "cell_size",
    "pred_efficiency",
    "pred_efficiency_spread",
    "centre_pred_efficiency",
    "effect_permuted",
    "centre_r_permuted",
)


def test_local_tests_stored_before_the_adjustment_still_show(copy):
    # Results written before issue 18: no regression, adjusted p-value, scheme, weights
    # or predictive efficiency.
    path = copy / "interpret" / "causal" / "local_tests.json"
    stored = json.loads(path.read_text())
    for test in stored["tests"]:
        for key in LATER_KEYS:
            del test["result"][key]
    path.write_text(json.dumps(stored))
    viewer = StellarMass(data=read_stellar_mass(copy))
    table = hook(viewer, "ck-local-tests")
    assert table.value["p_adjusted"].isna().all()
    assert table.value["pred_efficiency"].isna().all()
    assert table.value["pred_efficiency_spread"].isna().all()
    assert set(table.value["neighbourhoods"]) == {"disjoint"}
    conditioned = table.value["given"] != "—"
    assert set(table.value["fit"][conditioned]) == {"linear"}
    assert set(table.value["fit"][~conditioned]) == {""}
    np.testing.assert_allclose(
        table.value["p_value"], [t["result"]["p_value"] for t in stored["tests"]]
    )


def test_overlapping_weighted_local_tests_show_with_their_scheme(copy, data):
    # Local tests run with the published overlapping neighbourhoods and distance weights.
    rng = np.random.default_rng(0)
    n = 400
    a, b = rng.normal(size=(2, n))
    catalog = Table({"log_mstar": a + b, "hlr": b + rng.normal(size=n), "z": rng.normal(size=n)})
    graph = run_local_tests(
        a[:, None],
        catalog,
        external=["hlr"],
        k=40,
        n_permutations=39,
        neighbourhoods="overlapping",
        weights="distance",
        input_name=data.causal.nodes["X_in"],
    )
    graph.save(copy / "interpret" / "causal" / "local_tests.json", overwrite=True)
    viewer = StellarMass(data=read_stellar_mass(copy))
    table = hook(viewer, "ck-local-tests")
    assert set(table.value["neighbourhoods"]) == {"overlapping"}
    np.testing.assert_allclose(
        table.value["pred_efficiency"], [r["pred_efficiency"] for r in graph.edges]
    )
    assert table.value["n_centres"].tolist() == [n, n]
    np.testing.assert_allclose(
        table.value["effect_permuted"], [r["effect_permuted"] for r in graph.edges]
    )
    captions = [str(md.object) for md in viewer.__panel__().select(pn.pane.Markdown)]
    assert any("overlapping (around every galaxy" in text for text in captions)


def test_the_pc_graph_is_the_stored_one_and_no_truth_is_drawn_off_the_mock(run_root, data):
    stored = json.loads((run_root / "interpret" / "causal" / "pc.json").read_text())
    pc = DiscoveryResult.from_dict(stored["graph"])
    viewer = StellarMass(data=data)
    edges = glyph_data(viewer, "ck-pc-graph", "edges")
    found = pc.edges()
    assert len(edges["x0"]) == len(found)
    assert set(edges["colour"]) <= {UNSCORED}
    heads = glyph_data(viewer, "ck-pc-graph", "heads")
    assert len(heads["x"]) == sum(oriented for _, _, oriented, _ in found)
    assert sorted(glyph_data(viewer, "ck-pc-graph", "nodes")["name"]) == sorted(pc.columns)
    assert not has_hook(viewer, "ck-true-graph")
    assert "no true graph" in hook(viewer, "ck-pc-caption").object


def as_if_scored(root):
    """Give the run's PC graph a score, as the causal stage does on the mock survey."""
    path = root / "interpret" / "causal" / "pc.json"
    stored = json.loads(path.read_text())
    score = {"shd": 7, "n_missing": 3, "n_extra": 3, "n_misoriented": 1}
    score |= {"precision": 0.5, "recall": 0.5, "orientation_precision": 1.0}
    stored["score"] = score | {"orientation_recall": 0.2}
    path.write_text(json.dumps(stored))
    return stored


def test_on_the_mock_survey_the_true_graph_is_drawn_beside_pc(copy):
    stored = as_if_scored(copy)
    results.write_true_graph(copy, true_graph(("sdss", "wise")), "clapkit mock survey")
    data = read_stellar_mass(copy)
    assert data.problems == [] and data.truth is not None
    viewer = StellarMass(data=data)
    columns = stored["graph"]["columns"]
    truth = list(true_graph(("sdss", "wise")).subgraph(columns).edges)
    pc_pairs = {frozenset((a, b)) for a, b, _, _ in data.pc.edges()}
    edges = glyph_data(viewer, "ck-true-graph", "edges")
    assert len(edges["x0"]) == len(truth)
    expected = [AGREES if frozenset(e) in pc_pairs else DISAGREES for e in truth]
    assert sorted(edges["colour"]) == sorted(expected)
    pc_colours = glyph_data(viewer, "ck-pc-graph", "edges")["colour"]
    assert set(pc_colours) <= {AGREES, DISAGREES}
    caption = hook(viewer, "ck-pc-caption").object
    assert "SHD 7 (3 missing, 3 extra, 1 misoriented)" in caption


def test_a_scored_run_without_a_recorded_true_graph_draws_none(copy):
    """Runs made before the causal stage recorded the truth: the app computes none."""
    as_if_scored(copy)
    data = read_stellar_mass(copy)
    assert data.problems == [] and data.pc_score is not None and data.truth is None
    viewer = StellarMass(data=data)
    assert not has_hook(viewer, "ck-true-graph")
    assert "no true graph recorded" in hook(viewer, "ck-pc-caption").object


def test_a_recorded_true_graph_that_lacks_the_pc_columns_is_not_drawn(copy):
    stored = as_if_scored(copy)
    partial = true_graph(("sdss",)).subgraph(stored["graph"]["columns"][:2]).copy()
    results.write_true_graph(copy, partial, "clapkit mock survey")
    data = read_stellar_mass(copy)
    assert data.truth is None
    assert any("true graph lacks" in problem for problem in data.problems)


def test_an_unreadable_true_graph_is_a_problem_naming_the_file(copy):
    as_if_scored(copy)
    (copy / "interpret" / "causal" / "true_graph.json").write_text("{not json")
    data = read_stellar_mass(copy)
    assert data.truth is None and data.pc is not None
    assert any("true_graph.json" in problem for problem in data.problems)


def test_the_mi_bars_hold_the_stored_means_per_pair_and_galaxy_type(run_root, data):
    stored = json.loads((run_root / "interpret" / "pid" / "pid.json").read_text())
    viewer = StellarMass(data=data)
    figure = hook(viewer, "ck-pid-bars").object
    expected_x, expected = [], {term: [] for term in (*TERMS, "mi_12")}
    for row in stored["pairs"].values():
        for group, values in [("all", row), *sorted(row["by_type"].items())]:
            expected_x.append((" vs ".join(map(source_label, row["inputs"])), group))
            for term in expected:
                expected[term].append(values[term])
    assert list(figure.x_range.factors) == expected_x
    for term in TERMS:
        bars = figure.select_one({"name": term}).data_source.data
        assert [tuple(x) for x in bars["x"]] == expected_x
        np.testing.assert_allclose(bars["value"], expected[term])
    total = figure.select_one({"name": "mi_12"}).data_source.data
    np.testing.assert_allclose(total["value"], expected["mi_12"])
    # Each bar: positive terms stacked up from zero, negative ones down.
    first = [expected[term][0] for term in TERMS]
    bottom, top = stacked(first)
    for i, term in enumerate(TERMS):
        bars = figure.select_one({"name": term}).data_source.data
        assert (bars["bottom"][0], bars["top"][0]) == pytest.approx((bottom[i], top[i]))
        assert top[i] - bottom[i] == pytest.approx(first[i])


def test_the_mi_table_holds_each_term_with_its_stored_interval(run_root, data):
    stored = json.loads((run_root / "interpret" / "pid" / "pid.json").read_text())
    table = hook(StellarMass(data=data), "ck-pid-table").value
    assert len(table) == len(stored["pairs"])
    for i, row in enumerate(stored["pairs"].values()):
        for term in ("redundancy", "synergy", "mi_12"):
            assert table[term].iat[i] == pytest.approx(row[term])
            lo, hi = row[f"{term}_ci"]
            assert table[f"{term}_ci"].iat[i] == f"{lo:.3f}–{hi:.3f}"


def test_mi_results_stored_before_intervals_show_the_means_alone(copy):
    path = copy / "interpret" / "pid" / "pid.json"
    stored = json.loads(path.read_text())
    for row in stored["pairs"].values():
        for key in [k for k in row if k.endswith("_ci")]:
            row.pop(key)
    path.write_text(json.dumps(stored))
    table = hook(StellarMass(data=read_stellar_mass(copy)), "ck-pid-table").value
    assert "synergy" in table and not any(key.endswith("_ci") for key in table)


def test_per_galaxy_histograms_count_the_stored_terms_of_the_chosen_pair(run_root, data):
    terms = results.read_pid_per_galaxy(run_root)
    types = terms["galaxy_type"]
    viewer = StellarMass(data=data)
    select = hook(viewer, "ck-pair")
    assert list(select.options.values()) == ["photometry_images", "optical_wise"]
    for pair in ("optical_wise", "photometry_images"):
        select.value = pair
        for term in TERMS:
            for group in ("early", "late"):
                bars = glyph_data(viewer, f"ck-pid-{term}", group)
                edges = np.append(bars["left"], bars["right"][-1])
                counts, _ = np.histogram(terms[pair][term][types == group], bins=edges)
                np.testing.assert_array_equal(bars["count"], counts)
                assert bars["count"].sum() == np.sum(types == group)
    assert hook(viewer, "ck-pid-unique_2").object.title.text == "unique to flux-normalised images"
    assert f"{len(types)} test galaxies" in hook(viewer, "ck-pid-caption").object


def test_attribution_maps_follow_the_chosen_galaxy(run_root, data):
    arrays = results.read_attributions(run_root)
    summary = json.loads((run_root / "interpret" / "attributions" / "summary.json").read_text())
    viewer = StellarMass(data=data)
    select = hook(viewer, "ck-attribution-galaxy")
    assert list(select.options.values()) == arrays["ids"].tolist()
    card = hook(viewer, "ck-randomisation").object
    assert summary["randomisation"]["verdict"] in card
    assert f"{summary['randomisation']['median_abs_rho']:.2f}" in card
    # the first method's maps are shown first
    assert hook(viewer, "ck-attribution-method").value == arrays["methods"][0]
    for row in (0, 4):
        galaxy_id = int(arrays["ids"][row])
        select.value = galaxy_id
        assert viewer.galaxy_id == galaxy_id
        assert f"Galaxy {galaxy_id}" in hook(viewer, "ck-attribution-title").object
        images = glyph_data(viewer, "ck-attribution-grid", "images")["image"]
        maps = glyph_data(viewer, "ck-attribution-grid", "maps")["image"]
        randomised = glyph_data(viewer, "ck-attribution-grid", "randomised")["image"]
        assert len(images) == len(maps) == len(randomised) == len(arrays["bands"])
        for b in range(len(arrays["bands"])):
            np.testing.assert_array_equal(images[b], stretch_band(arrays["images"][row, b])[::-1])
            np.testing.assert_allclose(maps[b], arrays["maps"][row, b][::-1])
            np.testing.assert_allclose(randomised[b], arrays["randomised_maps"][row, b][::-1])
        profiles = glyph_data(viewer, "ck-attribution-profiles", "r")
        np.testing.assert_allclose(profiles["r"], arrays["profiles"][row, 2])
        radii = arrays["radii"]
        np.testing.assert_allclose(profiles["radius"], (radii[:-1] + radii[1:]) / 2)
        # The galaxy is starred among the test galaxies of the mass scatter.
        assert glyph_data(viewer, "ck-mass-scatter", "chosen")["id"].tolist() == [galaxy_id]


def test_the_randomisation_table_says_which_methods_pass(data):
    summary = data.attribution_summary
    check = summary["randomisation"]
    viewer = StellarMass(data=data)
    card = hook(viewer, "ck-randomisation").object
    rows = [line for line in card.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| method | median \\|ρ\\| | passes |"
    assert len(rows) == 1 + len(METHODS)
    for line, method in zip(rows[1:], METHODS, strict=True):
        row = check["per_method"][method]
        assert line.startswith(f"| {attribution_label(method)} | {row['median_abs_rho']:.2f} | ")
        assert f">{row['verdict']}<" in line
        assert row["verdict"] == ("passed" if method in check["passed"] else "failed")
    assert f"passes below {check['threshold']:.2f}" in card


def test_the_method_select_shows_that_methods_maps_and_profiles(run_root, data):
    arrays = results.read_attributions(run_root)
    viewer = StellarMass(data=data)
    select = hook(viewer, "ck-attribution-method")
    assert select.visible and list(select.options.values()) == list(METHODS)
    row = 2
    hook(viewer, "ck-attribution-galaxy").value = int(arrays["ids"][row])
    for method in reversed(METHODS):
        select.value = method
        own = arrays["per_method"][method]
        maps = glyph_data(viewer, "ck-attribution-grid", "maps")["image"]
        randomised = glyph_data(viewer, "ck-attribution-grid", "randomised")["image"]
        for b in range(len(arrays["bands"])):
            np.testing.assert_allclose(maps[b], own["maps"][row, b][::-1])
            np.testing.assert_allclose(randomised[b], own["randomised_maps"][row, b][::-1])
        profiles = glyph_data(viewer, "ck-attribution-profiles", "r")
        np.testing.assert_allclose(profiles["r"], own["profiles"][row, 2])
        titles = glyph_data(viewer, "ck-attribution-grid", "labels")["text"]
        assert any(title.startswith(f"{attribution_label(method)}\n±") for title in titles)
        assert attribution_label(method) in hook(viewer, "ck-attribution-title").object
        fractions = hook(viewer, "ck-centre-fractions").object
        assert f"Share of {attribution_label(method)}'s |attribution|" in fractions
        late = data.attribution_summary["centre_fraction_by_method"][method]["late"]
        assert "| late | " + " | ".join(f"{v:.2f}" for v in late) + " |" in fractions
    # smoothgrad's maps are not saliency's: the select changed what is drawn
    assert not np.allclose(
        arrays["per_method"]["smoothgrad"]["maps"][row],
        arrays["per_method"]["saliency"]["maps"][row],
    )


def test_a_run_of_one_method_shows_it_without_a_method_select(copy):
    single_method_attributions(copy, "saliency")
    data = read_stellar_mass(copy)
    assert data.problems == []
    arrays = data.attributions
    assert arrays["methods"] == ["saliency"]
    viewer = StellarMass(data=data)
    assert not hook(viewer, "ck-attribution-method").visible
    maps = glyph_data(viewer, "ck-attribution-grid", "maps")["image"]
    np.testing.assert_allclose(maps[0], arrays["maps"][0, 0][::-1])
    card = hook(viewer, "ck-randomisation").object
    check = data.attribution_summary["randomisation"]
    assert f"| saliency | {check['median_abs_rho']:.2f} | " in card
    rows = [line for line in card.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 2  # the header and saliency
    assert "Share of saliency's |attribution|" in hook(viewer, "ck-centre-fractions").object
    pn.panel(viewer).get_root()


def test_a_run_without_stellar_mass_results_says_which_commands_make_them(tmp_path):
    for root in (tmp_path, tmp_path / "absent"):
        data = read_stellar_mass(root)
        assert not data.ok
        assert any("clapkit interpret train --data DATA" in p for p in data.problems)
        viewer = StellarMass(data=data)
        (alert,) = viewer.__panel__().objects
        assert isinstance(alert, pn.pane.Alert) and "clapkit interpret train" in alert.object
        pn.panel(viewer).get_root()


def test_a_partial_run_shows_what_it_has_and_says_what_is_missing(copy):
    shutil.rmtree(copy / "interpret" / "attributions")
    (copy / "interpret" / "causal" / "pc.json").unlink()
    data = read_stellar_mass(copy)
    assert any("clapkit interpret attribute" in p for p in data.problems)
    assert any("clapkit interpret causal" in p for p in data.problems)
    viewer = StellarMass(data=data)
    # The problems alert heads the page (after the link-state note, hidden here).
    shown = [obj for obj in viewer.__panel__().objects if getattr(obj, "visible", True)]
    assert isinstance(shown[0], pn.pane.Alert)
    assert has_hook(viewer, "ck-missing-attributions")
    assert has_hook(viewer, "ck-causal-graph") and not has_hook(viewer, "ck-pc-graph")
    assert has_hook(viewer, "ck-mass-scatter") and has_hook(viewer, "ck-pid-bars")
    assert len(glyph_data(viewer, "ck-mass-scatter", "chosen")["id"]) == 0
    pn.panel(viewer).get_root()


def test_an_unreadable_result_names_the_command_that_remakes_it(copy):
    (copy / "interpret" / "pid" / "pid.json").write_text("{not json")
    data = read_stellar_mass(copy)
    (problem,) = data.problems
    assert "cannot be read" in problem and "clapkit interpret pid" in problem
    assert "--overwrite" in problem
    assert data.pid is None and data.mass


def test_the_store_is_cached_until_a_result_changes(copy):
    first = load_stellar_mass(copy)
    assert load_stellar_mass(copy) is first
    path = copy / "interpret" / "mass" / "metrics.json"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert load_stellar_mass(copy) is not first
