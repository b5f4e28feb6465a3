"""The stellar-mass figures show the run's estimates, causal graph and MI decomposition."""

import json

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.interpret.causal_graph import CausalGraph
from clapkit.interpret.discovery import DiscoveryResult
from clapkit.interpret.results import read_mass_prediction
from clapkit.plots import plan_figures, plot_mass_vs_truth, plot_mi_bars, plot_pc_graph
from clapkit.plots.stellar_mass import MI_TERMS
from clapkit.testing import synthetic_interpret_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return synthetic_interpret_run(tmp_path_factory.mktemp("stellar_mass") / "run")


@pytest.fixture(scope="module")
def figures(run_root):
    return {figure.name: figure.make("double") for figure in plan_figures(run_root).figures}


def test_an_interpret_run_makes_the_four_stellar_mass_figures(figures):
    assert sorted(figures) == ["causal_graph", "mass_vs_truth", "mi_bars", "pc_graph"]


def test_mass_against_truth_plots_the_test_galaxies_of_each_input_set(run_root, figures):
    fig, table = figures["mass_vs_truth"]
    stored = json.loads((run_root / "interpret" / "mass" / "metrics.json").read_text())
    names = list(stored["input_sets"])
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == names
    for ax, name in zip(axes, names, strict=True):
        prediction = read_mass_prediction(run_root, name)
        test = prediction.split == "test"
        points = ax.collections[0].get_offsets()
        assert np.allclose(points[:, 0], prediction.true[test])
        assert np.allclose(points[:, 1], prediction.point[test])
        rows = table[table["input_set"] == name]
        assert np.allclose(rows["estimated"], prediction.point[test])
        assert ax.get_xlim() == ax.get_ylim()
        row = stored["input_sets"][name]
        text = ax.texts[0].get_text()
        assert f"{row['sigma']:.3f} dex" in text
        assert f"median offset = {row['median_offset']:+.3f} dex" in text


def test_metrics_stored_before_the_rename_still_label_the_median_offset():
    # mass/metrics.json files written before median_offset call it "bias".
    truth = np.array([10.0, 10.5, 11.0])
    fig, _ = plot_mass_vs_truth(
        {"images": (truth, truth + 0.1)}, metrics={"images": {"sigma": 0.05, "bias": 0.1}}
    )
    assert "median offset = +0.100 dex" in fig.axes[0].texts[0].get_text()


def test_the_causal_graph_draws_every_edge_of_the_local_tests(run_root, figures):
    fig, table = figures["causal_graph"]
    graph = CausalGraph.load(run_root / "interpret" / "causal" / "local_tests.json")
    network = graph.to_networkx()
    assert sorted(zip(table["source"], table["target"], strict=True)) == sorted(network.edges)
    for row in table:
        data = network.edges[row["source"], row["target"]]
        assert row["kind"] == data["kind"]
        if data["kind"] == "tested":
            assert row["significant"] == data["significant"]
            assert row["effect"] == pytest.approx(data["effect"])
    labels = {text.get_text() for text in fig.axes[0].texts}
    assert {name.replace("_", " ") for name in network.nodes} <= labels
    assert not fig.axes[0].axison


def test_the_pc_graph_draws_the_stored_edges_with_their_confidence(run_root, figures):
    fig, table = figures["pc_graph"]
    stored = json.loads((run_root / "interpret" / "causal" / "pc.json").read_text())
    found = DiscoveryResult.from_dict(stored["graph"])
    expected = found.edges()
    assert len(table) == len(expected) > 0
    for row, (a, b, oriented, confidence) in zip(table, expected, strict=True):
        assert (row["a"], row["b"], bool(row["oriented"])) == (a, b, oriented)
        assert row["confidence"] == pytest.approx(confidence)
    arrows = [text for text in fig.axes[0].texts if getattr(text, "arrow_patch", None)]
    assert len(arrows) == len(expected)  # one arrow or line per edge


def test_the_pc_graph_marks_edges_against_a_reference():
    found = DiscoveryResult(("a", "b", "c"), [[0, 1, 1], [0, 0, 0], [0, 0, 0]])
    reference = DiscoveryResult(("a", "b", "c"), [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    _, table = plot_pc_graph(found, reference)
    status = {(r["a"], r["b"]): r["status"] for r in table}
    assert status == {("a", "b"): "shared", ("a", "c"): "extra", ("b", "c"): "missed"}
    with pytest.raises(ValidationError, match="reference graph is over"):
        plot_pc_graph(found, DiscoveryResult(("a", "b"), [[0, 1], [0, 0]]))


def test_mi_bars_are_the_stored_decomposition(run_root, figures):
    fig, table = figures["mi_bars"]
    pairs = json.loads((run_root / "interpret" / "pid" / "pid.json").read_text())["pairs"]
    (ax,) = fig.axes
    assert len(ax.containers) == len(MI_TERMS)
    for container, term in zip(ax.containers, MI_TERMS, strict=True):
        heights = [bar.get_height() for bar in container]
        assert np.allclose(heights, [pairs[pair][term] for pair in pairs])
    assert len(table) == len(pairs) * len(MI_TERMS)
    assert ax.get_ylabel() == "information [nats]"
    with pytest.raises(ValidationError, match="lacks \\['synergy'\\]"):
        plot_mi_bars({"a_b": {"inputs": ["a", "b"], "redundancy": 0, "unique_1": 0, "unique_2": 0}})
