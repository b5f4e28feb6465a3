"""FCI beside PC: PAGs, the true PAG with a selection node, and a collider opened by selection."""

import json

import networkx as nx
import numpy as np
import pytest
from astropy.table import Table

from clapkit.errors import ValidationError
from clapkit.interpret.discovery import DiscoveryResult, pc_discovery
from clapkit.interpret.fci import (
    ARROW,
    CIRCLE,
    TAIL,
    PAGResult,
    compare_pags,
    edge_string,
    fci_discovery,
    score_pag,
    score_selection_aware,
    selection_reference,
    true_pag,
)

#: c -> a -> s <- b, with s the selection variable, and d apart from everything: a and b
#: are independent, but not among the rows kept for a large s.
TRUTH = nx.DiGraph([("c", "a"), ("a", "s"), ("b", "s")])
TRUTH.add_node("d")
COLUMNS = ("c", "a", "b", "d")


def selected_sample(n: int = 8000, seed: int = 0, threshold: float | None = 1.0) -> Table:
    """The DAG above, linear-Gaussian; the rows with s > threshold (all when None)."""
    rng = np.random.default_rng(seed)
    c, b, d = rng.normal(size=(3, n))
    a = c + rng.normal(size=n)
    s = a + b + 0.5 * rng.normal(size=n)
    keep = np.ones(n, dtype=bool) if threshold is None else s > threshold
    return Table({"c": c[keep], "a": a[keep], "b": b[keep], "d": d[keep]})


def test_the_true_pag_with_selection_joins_the_causes_of_the_selection():
    expected = ["c o-o a", "a o-o b"]
    assert true_pag(TRUTH, COLUMNS, "s").edge_strings() == expected
    assert true_pag(TRUTH, COLUMNS, "s", method="dag2pag").edge_strings() == expected
    # Without the selection a and b are not adjacent.
    assert true_pag(TRUTH, COLUMNS, None).edge_strings() == ["c o-o a"]


def test_fci_finds_the_collider_that_selection_opens_and_scores_zero():
    found = fci_discovery(selected_sample(), COLUMNS)
    reference = true_pag(TRUTH, COLUMNS, "s", method="dag2pag")
    score = compare_pags(found.marks, reference.marks)
    assert found.edge_strings() == ["c o-o a", "a o-o b"]
    assert score["shd"] == 0 and score["precision"] == score["recall"] == 1.0
    assert score_pag(found, TRUTH, "s")["shd"] == 0
    # The same galaxies before the cut: no a-b adjacency, and against the selection-aware
    # truth that is one missing edge.
    unselected = fci_discovery(selected_sample(threshold=None), COLUMNS)
    assert unselected.edge_strings() == ["c o-o a"]
    assert score_pag(unselected, TRUTH, "s")["n_missing"] == 1


def test_pc_on_the_selected_sample_matches_the_selection_aware_reference():
    reference = selection_reference(TRUTH, COLUMNS, "s")
    assert reference.edges() == [("c", "a", False, None), ("a", "b", False, None)]
    found = pc_discovery(selected_sample(), COLUMNS)
    assert score_selection_aware(found, TRUTH, "s")["shd"] == 0
    # Without the selection the reference is the induced pattern: no a-b edge.
    assert selection_reference(TRUTH, COLUMNS, None).edges() == [("c", "a", False, None)]


def test_a_hidden_common_cause_gives_a_bidirected_edge():
    truth = nx.DiGraph([("x", "y"), ("h", "y"), ("h", "w"), ("v", "w")])
    pag = true_pag(truth, ["x", "y", "w", "v"], None)
    assert pag.edge_strings() == ["x o-> y", "y <-> w", "w <-o v"]


def test_a_pag_round_trips_through_json_and_writes_its_edges():
    pag = PAGResult(
        ("a", "b", "c"), [[0, ARROW, 0], [TAIL, 0, CIRCLE], [0, CIRCLE, 0]], 0.01, 3, n_rows=9
    )
    back = PAGResult.from_dict(json.loads(json.dumps(pag.to_dict())))
    assert np.array_equal(back.marks, pag.marks) and back.depth == 3 and back.n_rows == 9
    assert pag.to_dict()["edges"] == ["a --> b", "b o-o c"]
    assert edge_string(pag, "b", "a") == "b <-- a" and edge_string(pag, "a", "c") == ""


@pytest.mark.parametrize(
    ("marks", "message"),
    [
        ([[0, 2], [0, 0]], "both ends"),
        ([[0, 5], [1, 0]], "0-3"),
        ([[1, 2], [1, 0]], "diagonal"),
        ([[0, 2, 0], [1, 0, 0]], "shape"),
    ],
)
def test_malformed_pags_are_refused(marks, message):
    with pytest.raises(ValidationError, match=message):
        PAGResult(("a", "b"), marks)


def test_pag_comparison_counts_pairs_and_marks():
    reference = np.array([[0, ARROW, 0], [CIRCLE, 0, CIRCLE], [0, ARROW, 0]])  # a o-> b <-o c
    found = np.array([[0, TAIL, ARROW], [TAIL, 0, 0], [TAIL, 0, 0]])  # a --- b, a --> c
    score = compare_pags(found, reference)
    assert (score["n_missing"], score["n_extra"], score["n_misoriented"]) == (1, 1, 1)
    assert score["shd"] == 3 and score["n_mark_errors"] == 2
    assert score["precision"] == 0.5 and score["recall"] == 0.5
    assert compare_pags(reference, reference)["shd"] == 0
    with pytest.raises(ValidationError, match="square and alike"):
        compare_pags(found, reference[:2, :2])


def test_bad_selection_nodes_and_methods_are_refused():
    with pytest.raises(ValidationError, match="no selection node 'selected'"):
        true_pag(TRUTH, COLUMNS)
    with pytest.raises(ValidationError, match="cannot be a tested column"):
        selection_reference(TRUTH, ("a", "b", "s"), "s")
    with pytest.raises(ValidationError, match="method"):
        true_pag(TRUTH, COLUMNS, "s", method="guess")
    with pytest.raises(ValidationError, match="no node for the columns"):
        true_pag(TRUTH, ("a", "nope"), "s")


def test_fci_refuses_what_pc_refuses():
    sample = selected_sample(n=400)
    with pytest.raises(ValidationError, match="no column 'nope'"):
        fci_discovery(sample, ["a", "nope"])
    with pytest.raises(ValidationError, match="alpha"):
        fci_discovery(sample, COLUMNS, alpha=1.5)
    sample["a2"] = 2 * sample["a"]
    with pytest.raises(ValidationError, match="linearly dependent"):
        fci_discovery(sample, ["a", "a2", "b"])


def test_the_subsample_is_seeded_and_recorded():
    sample = selected_sample(n=3000)
    first = fci_discovery(sample, COLUMNS, max_rows=300, seed=4)
    again = fci_discovery(sample, COLUMNS, max_rows=300, seed=4)
    assert first.n_rows == 300 and np.array_equal(first.marks, again.marks)


def test_pc_scores_against_the_selection_aware_reference_count_the_opened_collider():
    missing_ab = DiscoveryResult(COLUMNS, np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0] * 4, [0] * 4]))
    score = score_selection_aware(missing_ab, TRUTH, "s")
    assert score["n_missing"] == 1 and score["shd"] == 1
