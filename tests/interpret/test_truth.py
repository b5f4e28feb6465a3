"""What the true graph implies for the local tests given the selection, and their scores."""

import networkx as nx
import pytest

from clapkit.errors import ValidationError
from clapkit.interpret.causal_graph import CausalGraph, LocalTestResult
from clapkit.interpret.truth import (
    add_latent_proxy,
    confusion,
    implied_dependence,
    score_local_tests,
)
from clapkit.sim.graph import IMAGE_PARENTS, true_graph


def result(verdict: str, conditioned_on=()) -> LocalTestResult:
    return LocalTestResult(
        0.1, 0.02, 0.01, verdict, 0.05, conditioned_on, False, 20, 1, 99, 0, [3], [0.1], [0.2]
    )


@pytest.fixture(scope="module")
def mock_truth() -> nx.DiGraph:
    return true_graph(("sdss", "wise"))


def test_a_collider_is_opened_by_selection_and_closed_without():
    collider = nx.DiGraph([("a", "s"), ("b", "s")])
    assert implied_dependence(collider, "a", "b", selection="s")
    assert not implied_dependence(collider, "a", "b", selection=None)
    # A descendant of the selection conditioned on changes nothing once s is.
    collider.add_edge("s", "t")
    assert implied_dependence(collider, "a", "b", given=["t"], selection=None)


def test_on_the_mock_the_inclination_and_mass_meet_in_the_dust_which_selection_opens(mock_truth):
    # inclination -> disk_q -> disk_av <- disk_gamma_v <- log_mstar: the disk's dust is a
    # collider, and an ancestor of the Petrosian magnitude the survey selects on.
    assert not implied_dependence(mock_truth, "log_mstar", "inclination", selection=None)
    assert implied_dependence(mock_truth, "log_mstar", "inclination")
    # The position angle shapes only the images: nothing opens a path to the mass.
    assert not implied_dependence(mock_truth, "log_mstar", "position_angle")


def test_the_latent_proxy_opens_every_rendered_quantity_but_the_ignored_ones(mock_truth):
    proxy = add_latent_proxy(mock_truth)
    assert set(proxy.predecessors("latent")) == set(IMAGE_PARENTS) - {"position_angle"}
    for name in ("disk_q", "bulge_q", "offset_x", "hlr", "z"):
        assert implied_dependence(proxy, "log_mstar", name, ["latent"]), name
    assert not implied_dependence(proxy, "log_mstar", "position_angle", ["latent", "z"])
    strict = add_latent_proxy(mock_truth, invariant=())
    assert implied_dependence(strict, "log_mstar", "position_angle", ["latent"])


def test_local_tests_are_scored_in_a_confusion_table_per_conditioning():
    # m -> img <- pa would make pa dependent given img; the proxy ignores it. x is tied to
    # m only through the selection s.
    truth = nx.DiGraph([("m", "s"), ("x", "s"), ("m", "flux"), ("pa", "flux"), ("z", "m")])
    graph = CausalGraph({"X_in": "images", "S": "latent", "Y": "m"})
    graph.add_test("x", result("dependent"))
    graph.add_test("pa", result("dependent"))
    graph.add_test("x", result("independent", ("z",)))
    graph.add_test("pa", result("independent", ("z",)))
    graph.add_test("elsewhere", result("dependent"))
    score = score_local_tests(graph, truth, selection="s", parents=["m", "pa"], invariant=["pa"])
    with_sel = score["tables"]["with_selection"]
    assert with_sel["unconditional"] == {"TP": ["x"], "FP": ["pa"], "TN": [], "FN": []}
    assert with_sel["given z"] == {"TP": [], "FP": [], "TN": ["pa"], "FN": ["x"]}
    without = score["tables"]["without_selection"]["unconditional"]
    assert without == {"TP": [], "FP": ["x", "pa"], "TN": [], "FN": []}
    assert score["unscored"] == ["elsewhere"]
    assert score["latent_proxy"] == {"name": "latent", "parents": ["m"], "invariant": ["pa"]}
    assert [row["source"] for row in score["rows"]] == ["x", "pa", "x", "pa"]


def test_local_tests_on_the_mock_truth_call_only_the_position_angle_independent(mock_truth):
    graph = CausalGraph({"X_in": "images", "S": "latent", "Y": "log_mstar"})
    for name in ("disk_q", "hlr", "position_angle"):
        graph.add_test(name, result("dependent" if name != "position_angle" else "independent"))
        graph.add_test(name, result("dependent", ("z",)))
    tables = score_local_tests(graph, mock_truth)["tables"]["with_selection"]
    assert tables["unconditional"] == {
        "TP": ["disk_q", "hlr"],
        "FP": [],
        "TN": ["position_angle"],
        "FN": [],
    }
    assert tables["given z"]["FP"] == ["position_angle"]


def test_a_list_of_results_needs_a_target_and_pairs():
    truth = nx.DiGraph([("m", "s"), ("x", "s")])
    score = score_local_tests(
        [("x", result("dependent"))], truth, target="m", selection="s", parents=["m"]
    )
    assert score["target"] == "m"
    with pytest.raises(ValidationError, match="target must be given"):
        score_local_tests([("x", result("dependent"))], truth, selection="s")
    with pytest.raises(ValidationError, match="LocalTestResult"):
        score_local_tests([("x", 0.01)], truth, target="m", selection="s", parents=["m"])


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("a", "b"), {"selection": "sel"}, "no selection node 'sel'"),
        (("a", "nope"), {"selection": None}, "no nodes"),
        (("a", "a"), {"selection": None}, "same node"),
        (("a", "b"), {"given": ["a"], "selection": None}, "cannot be conditioned on"),
    ],
)
def test_bad_queries_are_refused(args, kwargs, message):
    with pytest.raises(ValidationError, match=message):
        implied_dependence(nx.DiGraph([("a", "s"), ("b", "s")]), *args, **kwargs)


def test_a_cyclic_graph_and_a_clashing_proxy_are_refused():
    with pytest.raises(ValidationError, match="DAG"):
        implied_dependence(nx.DiGraph([("a", "b"), ("b", "a")]), "a", "b", selection=None)
    with pytest.raises(ValidationError, match="already has a node 'latent'"):
        add_latent_proxy(nx.DiGraph([("m", "latent")]), ["m"])
    with pytest.raises(ValidationError, match="not nodes of the graph"):
        add_latent_proxy(nx.DiGraph([("m", "x")]), ["m", "q"])
    with pytest.raises(ValidationError, match="no selection node"):
        score_local_tests(CausalGraph({"X_in": "i", "S": "l", "Y": "m"}), nx.DiGraph([("m", "x")]))


def test_confusion_needs_the_same_variables():
    assert confusion({}, {}) == {"TP": [], "FP": [], "TN": [], "FN": []}
    with pytest.raises(ValidationError, match="different variables"):
        confusion({"a": True}, {"b": True})
    # Every variable lands in exactly one cell.
    table = confusion({"a": True, "b": False}, {"a": False, "b": False})
    assert sorted(name for cell in table.values() for name in cell) == ["a", "b"]
    assert table["FP"] == ["a"]
