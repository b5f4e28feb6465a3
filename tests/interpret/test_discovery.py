"""PC discovery over catalog columns, on linear-Gaussian data whose DAG is known."""

import json

import networkx as nx
import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from clapkit.errors import ValidationError
from clapkit.interpret.discovery import (
    DEFAULT_COLUMNS,
    DiscoveryResult,
    EdgeFrequencies,
    bootstrap_edge_frequencies,
    compare_adjacency,
    default_columns,
    pc_discovery,
    reference_graph,
    score_graph,
)
from clapkit.sim.graph import true_graph

#: A chain (x1 -> x2 -> x3), a fork at x2 (x3 <- x2 -> x4) and a collider (x4 -> x5 <- x6).
#: Its pattern keeps only the collider's arrows; x1 - x2 - x3 and x2 - x4 stay undirected.
TRUTH = nx.DiGraph([("x1", "x2"), ("x2", "x3"), ("x2", "x4"), ("x4", "x5"), ("x6", "x5")])
COLUMNS = ("x1", "x2", "x3", "x4", "x5", "x6")


def linear_gaussian(graph: nx.DiGraph, n: int, seed: int, weight: float = 0.8) -> Table:
    """Each node is ``weight`` times the sum of its parents plus unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for node in nx.topological_sort(graph):
        parents = sum((values[p] for p in graph.predecessors(node)), np.zeros(n))
        values[node] = weight * parents + rng.normal(size=n)
    return Table(values)


@pytest.fixture(scope="module")
def catalog() -> Table:
    return linear_gaussian(TRUTH, 3000, seed=1)


def skeleton(result: DiscoveryResult) -> set[frozenset[str]]:
    return {frozenset((a, b)) for a, b, _, _ in result.edges()}


def test_pc_recovers_the_pattern_of_a_known_dag(catalog):
    result = pc_discovery(catalog, COLUMNS)
    assert skeleton(result) == {frozenset(edge) for edge in TRUTH.edges}
    oriented = {(a, b) for a, b, is_oriented, _ in result.edges() if is_oriented}
    assert oriented == {("x4", "x5"), ("x6", "x5")}
    score = score_graph(result, TRUTH)
    assert score["shd"] == 0
    assert score["precision"] == score["recall"] == score["orientation_precision"] == 1.0
    assert score["n_true_edges"] == score["n_found_edges"] == 5
    assert (result.alpha, result.depth, result.stable, result.test) == (0.01, None, True, "fisherz")
    assert result.n_rows == 3000


def test_wrong_graph_scores_the_shd_counted_by_hand():
    # Against the pattern x1 - x2 - x3, x2 - x4, x4 -> x5 <- x6:
    # x2 -> x1 directs an undirected edge (1), x2 - x3 is missing (1),
    # x5 -> x4 reverses the collider (1), x1 - x6 is extra (1); x2 - x4, x6 -> x5 are right.
    wrong = nx.DiGraph([("x2", "x1"), ("x2", "x4"), ("x4", "x2"), ("x5", "x4"), ("x6", "x5")])
    wrong.add_edges_from([("x1", "x6"), ("x6", "x1")])
    index = {name: i for i, name in enumerate(COLUMNS)}
    adjacency = np.zeros((6, 6), dtype=int)
    for a, b in wrong.edges:
        adjacency[index[a], index[b]] = 1
    score = score_graph(DiscoveryResult(COLUMNS, adjacency), TRUTH)
    parts = {key: score[key] for key in ("shd", "n_missing", "n_extra", "n_misoriented")}
    assert parts == {"shd": 4, "n_missing": 1, "n_extra": 1, "n_misoriented": 2}
    assert score["precision"] == score["recall"] == 0.8
    # Arrows on true adjacencies: x2 -> x1 (wrong), x5 -> x4 (wrong), x6 -> x5 (right).
    assert score["orientation_precision"] == pytest.approx(1 / 3)
    assert score["orientation_recall"] == 0.5


def test_shd_and_reference_agree_with_causal_learn():
    from causallearn.graph.Dag import Dag
    from causallearn.graph.Edge import Edge
    from causallearn.graph.Endpoint import Endpoint
    from causallearn.graph.GeneralGraph import GeneralGraph
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.graph.SHD import SHD
    from causallearn.utils.DAG2CPDAG import dag2cpdag

    def general_graph(adjacency: np.ndarray, graph_class=GeneralGraph):
        nodes = [GraphNode(f"X{i}") for i in range(len(adjacency))]
        graph = graph_class(nodes)
        for i, j in zip(*np.nonzero(np.triu(adjacency | adjacency.T)), strict=True):
            if adjacency[i, j] and adjacency[j, i]:
                graph.add_edge(Edge(nodes[i], nodes[j], Endpoint.TAIL, Endpoint.TAIL))
            elif adjacency[i, j]:
                graph.add_directed_edge(nodes[i], nodes[j])
            else:
                graph.add_directed_edge(nodes[j], nodes[i])
        return graph

    rng = np.random.default_rng(3)
    for _ in range(5):
        # A random DAG: arcs only from lower to higher index.
        dag = np.triu(rng.random((7, 7)) < 0.35, k=1).astype(int)
        truth = nx.relabel_nodes(nx.DiGraph(dag), {i: f"v{i}" for i in range(7)})
        truth.add_nodes_from(f"v{i}" for i in range(7))
        columns = [f"v{i}" for i in range(7)]
        pattern = reference_graph(truth, columns).adjacency
        cpdag = dag2cpdag(general_graph(dag, Dag)).graph
        expected = np.zeros_like(pattern)
        expected[(cpdag == -1) & (cpdag.T != 0)] = 1  # a tail at i: i -> j or i - j
        np.testing.assert_array_equal(pattern, expected)
        other = pattern.copy()
        other[rng.integers(0, 7, 4), rng.integers(0, 7, 4)] ^= 1
        np.fill_diagonal(other, 0)
        assert (
            compare_adjacency(other, pattern)["shd"]
            == SHD(general_graph(pattern), general_graph(other)).get_shd()
        )


def test_stable_skeleton_does_not_depend_on_column_order():
    rng = np.random.default_rng(7)
    dag = np.triu(rng.random((8, 8)) < 0.3, k=1)
    truth = nx.relabel_nodes(nx.DiGraph(dag), {i: f"v{i}" for i in range(8)})
    truth.add_nodes_from(f"v{i}" for i in range(8))
    data = linear_gaussian(truth, 400, seed=2, weight=0.3)
    columns = [f"v{i}" for i in range(8)]
    first = pc_discovery(data, columns, alpha=0.05)
    for seed in range(3):
        order = [columns[k] for k in np.random.default_rng(seed).permutation(8)]
        assert skeleton(pc_discovery(data, order, alpha=0.05)) == skeleton(first)


def test_depth_zero_keeps_edges_that_conditioning_removes():
    chain = linear_gaussian(nx.DiGraph([("a", "b"), ("b", "c")]), 2000, seed=0)
    shallow = pc_discovery(chain, ["a", "b", "c"], depth=0)
    deep = pc_discovery(chain, ["a", "b", "c"], depth=1)
    # a and c are marginally dependent; only the test given b separates them.
    assert frozenset(("a", "c")) in skeleton(shallow)
    assert skeleton(deep) == {frozenset(("a", "b")), frozenset(("b", "c"))}
    assert shallow.depth == 0


def test_kernel_test_sees_the_non_linear_dependence_fisher_z_misses():
    rng = np.random.default_rng(2)
    a, c = rng.normal(size=(2, 150))
    # Even functions of a and c: no linear correlation with b, yet strong dependence.
    table = Table({"a": a, "b": a**2 + c**2 + 0.3 * rng.normal(size=150), "c": c})
    assert pc_discovery(table, ["a", "b", "c"]).edges() == []
    assert pc_discovery(table, ["a", "b", "c"], test="kci").edges() == [
        ("a", "b", True, None),
        ("c", "b", True, None),
    ]


def test_bootstrap_frequencies_are_high_for_strong_edges(catalog):
    freq = bootstrap_edge_frequencies(catalog, COLUMNS, n_bootstrap=10, seed=0, max_rows=1500)
    assert freq.n_bootstrap == 10 and freq.columns == COLUMNS
    for matrix in (freq.adjacency, freq.orientation, freq.unoriented):
        assert np.all((matrix >= 0) & (matrix <= 1 + 1e-12))
    np.testing.assert_array_equal(freq.adjacency, freq.adjacency.T)
    index = {name: i for i, name in enumerate(COLUMNS)}
    for a, b in TRUTH.edges:
        assert freq.adjacency[index[a], index[b]] >= 0.9
    assert freq.orientation[index["x6"], index["x5"]] >= 0.9
    assert freq.adjacency[index["x1"], index["x6"]] <= 0.3


def test_pc_discovery_attaches_the_bootstrap(catalog):
    result = pc_discovery(catalog, COLUMNS, max_rows=1000, n_bootstrap=4, seed=5)
    alone = bootstrap_edge_frequencies(catalog, COLUMNS, n_bootstrap=4, seed=5, max_rows=1000)
    assert result.n_rows == 1000
    np.testing.assert_array_equal(result.edge_confidence.adjacency, alone.adjacency)
    np.testing.assert_array_equal(result.edge_confidence.orientation, alone.orientation)
    assert all(0 <= confidence <= 1 for *_, confidence in result.edges())
    graph = result.to_networkx()
    assert all("confidence" in data for _, _, data in graph.edges(data=True))
    assert graph.edges["x6", "x5"]["orientation_confidence"] > 0.5


def test_networkx_and_dict_round_trips(catalog):
    result = pc_discovery(catalog, COLUMNS, max_rows=800, n_bootstrap=2)
    graph = result.to_networkx()
    assert list(graph.nodes) == list(COLUMNS)
    back = nx.to_numpy_array(graph, nodelist=COLUMNS, weight=None).astype(int)
    np.testing.assert_array_equal(back, result.adjacency)
    assert graph.edges["x2", "x3"]["oriented"] is False
    assert graph.has_edge("x3", "x2")
    assert graph.edges["x4", "x5"]["oriented"] is True and not graph.has_edge("x5", "x4")
    assert graph.graph["alpha"] == 0.01

    loaded = DiscoveryResult.from_dict(json.loads(json.dumps(result.to_dict())))
    np.testing.assert_array_equal(loaded.adjacency, result.adjacency)
    assert loaded.edges() == result.edges()
    assert loaded.columns == COLUMNS and loaded.depth is None
    assert (loaded.alpha, loaded.n_rows) == (0.01, 800)
    np.testing.assert_array_equal(
        loaded.edge_confidence.orientation, result.edge_confidence.orientation
    )


def test_mock_like_catalog_scored_against_the_survey_truth():
    truth = true_graph(("sdss",))
    columns = [
        "z",
        "restframe_u_r",
        "bulge_fraction",
        "log_mstar",
        "disk_hlr_kpc",
        "disk_hlr",
        "disk_q",
        "disk_av",
        "position_angle",
    ]
    # Linear stand-ins for the mock's relations among these columns.
    catalog = linear_gaussian(truth.subgraph(columns), 2000, seed=4)
    result = pc_discovery(catalog, columns)
    score = score_graph(result, truth)
    assert score["shd"] == 0 and score["n_true_edges"] == 6
    assert not nx.is_isolate(result.to_networkx(), "disk_q")
    assert nx.is_isolate(result.to_networkx(), "position_angle")


def test_default_columns_of_the_mock_survey():
    truth = true_graph(("sdss",))
    catalog = Table({name: [0.0] for name in (*DEFAULT_COLUMNS, "mag_g", "source_index")})
    columns = default_columns(catalog)
    assert columns == DEFAULT_COLUMNS
    assert "position_angle" in columns and nx.is_isolate(truth, "position_angle")
    # The left-out variables sit on no causal path between two tested columns, except the
    # mass-dependent dust law (log_mstar -> disk_gamma_v -> disk_av).
    induced = truth.subgraph(columns)
    hidden_mediation = {
        (a, b)
        for a in columns
        for b in nx.descendants(truth, a) & set(columns)
        if not nx.has_path(induced, a, b)
    }
    assert hidden_mediation == {("log_mstar", "disk_av")}


def test_marginalized_reference_sees_through_left_out_mediators():
    truth = true_graph(("sdss",))
    columns = ["log_mstar", "hlr", "position_angle"]
    assert reference_graph(truth, columns).edges() == []
    # Mass sets the physical sizes, which set hlr: a perfect test finds the dependence.
    marginal = reference_graph(truth, columns, marginalize=True)
    assert marginal.edges() == [("log_mstar", "hlr", False, None)]
    assert marginal.test == "d_separation"


@pytest.mark.parametrize(
    ("columns", "table", "message"),
    [
        (["a", "nope"], None, "no column 'nope'; available: a, b, c"),
        (["a"], None, "at least two columns"),
        (["a", "a"], None, "repeated"),
        (
            ["a", "b"],
            Table({"a": np.arange(15.0), "b": np.arange(15.0) % 4}),
            "needs at least 22 rows",
        ),
        (["a", "s"], Table({"a": np.arange(40.0), "s": ["x"] * 40}), "column 's' must be"),
        (["a", "b"], Table({"a": np.arange(40.0), "b": np.ones(40)}), "'b' is constant"),
    ],
)
def test_bad_columns_are_named(columns, table, message):
    rng = np.random.default_rng(0)
    table = table if table is not None else Table(rng.normal(size=(40, 3)), names=["a", "b", "c"])
    with pytest.raises(ValidationError, match=message):
        pc_discovery(table, columns)


def test_non_finite_rows_are_reported():
    rng = np.random.default_rng(0)
    table = Table(rng.normal(size=(40, 2)), names=["a", "b"])
    table["b"][[3, 7]] = np.nan
    with pytest.raises(ValidationError, match=r"column 'b' is not finite .* rows \[3, 7\]"):
        pc_discovery(table, ["a", "b"])
    table["b"] = MaskedColumn(rng.normal(size=40), mask=np.arange(40) == 5)
    with pytest.raises(ValidationError, match=r"'b' is not finite .* rows \[5\]"):
        pc_discovery(table, ["a", "b"])


def test_collinear_columns_and_bad_parameters_are_refused():
    rng = np.random.default_rng(0)
    table = Table(rng.normal(size=(100, 3)), names=["a", "b", "c"])
    table["d"] = table["a"] + table["b"]
    with pytest.raises(ValidationError, match=r"\['a', 'b', 'd'\] are linearly dependent"):
        pc_discovery(table, ["a", "b", "c", "d"])
    for options, message in [
        ({"alpha": 1.5}, "alpha"),
        ({"depth": -1}, "depth"),
        ({"test": "chisq"}, "test must be one of"),
        ({"max_rows": 5}, "max_rows must be at least 23 for 3 columns, got 5"),
        ({"max_rows": 500.0}, r"max_rows must be an integer >= 1, got 500\.0"),
        ({"n_bootstrap": -2}, "n_bootstrap"),
    ]:
        with pytest.raises(ValidationError, match=message):
            pc_discovery(table, ["a", "b", "c"], **options)
    with pytest.raises(ValidationError, match="n_bootstrap must be an integer >= 1, got 0"):
        bootstrap_edge_frequencies(table, ["a", "b"], n_bootstrap=0)


def test_bad_truth_and_results_are_refused():
    with pytest.raises(ValidationError, match=r"no node for the columns \['mag_w1'\]"):
        reference_graph(true_graph(("sdss",)), ["z", "mag_w1"])
    with pytest.raises(ValidationError, match="DAG"):
        reference_graph(nx.DiGraph([("a", "b"), ("b", "a")]), ["a", "b"])
    with pytest.raises(ValidationError, match=r"shape \(2, 2\), expected \(3, 3\)"):
        DiscoveryResult(("a", "b", "c"), np.zeros((2, 2)))
    with pytest.raises(ValidationError, match="zero diagonal"):
        DiscoveryResult(("a", "b"), np.eye(2))
    with pytest.raises(ValidationError, match=r"lacks the keys \['adjacency'"):
        DiscoveryResult.from_dict({"columns": ["a", "b"]})
    with pytest.raises(ValidationError, match="edge frequencies are over"):
        DiscoveryResult(("a", "b"), np.zeros((2, 2))).with_confidence(
            EdgeFrequencies(("b", "a"), np.zeros((2, 2)), np.zeros((2, 2)), 1)
        )
    with pytest.raises(ValidationError, match="default discovery columns"):
        default_columns(Table({"z": [0.1]}))
