"""Reading the stellar-mass results: the recorded true graph and the refusals."""

import json

import networkx as nx
import pytest

from clapkit.errors import FileFormatError, OverwriteError, ValidationError
from clapkit.interpret import results
from clapkit.runs import RunDir


def test_a_true_graph_round_trips_through_the_run_and_is_not_replaced_silently(tmp_path):
    truth = nx.DiGraph([("z", "mag_r"), ("log_mstar", "mag_r")])
    truth.add_node("position_angle")  # a node without edges is part of the record
    results.write_true_graph(tmp_path, truth, "a toy survey")
    again = results.read_true_graph(tmp_path)
    assert set(again.nodes) == set(truth.nodes) and set(again.edges) == set(truth.edges)
    with pytest.raises(OverwriteError):
        results.write_true_graph(tmp_path, nx.DiGraph(), "another survey")


def test_the_selection_node_round_trips_and_older_files_read_without_one(tmp_path):
    truth = nx.DiGraph([("mag_r", "petromag_r"), ("petromag_r", "selected")])
    truth.graph["selection"] = "selected"
    results.write_true_graph(tmp_path, truth, "a toy survey")
    assert results.read_true_graph(tmp_path).graph["selection"] == "selected"
    # A file written before the selection was recorded has no "selection" key.
    path = RunDir(tmp_path).true_graph_path
    record = json.loads(path.read_text())
    del record["selection"]
    path.write_text(json.dumps(record))
    old = results.read_true_graph(tmp_path)
    assert "selection" not in old.graph and set(old.edges) == set(truth.edges)


def test_a_selection_node_that_is_not_in_the_graph_is_not_recorded_nor_read(tmp_path):
    # A subgraph keeps the graph's attributes but may leave the selection node out.
    truth = nx.DiGraph([("a", "b"), ("b", "selected")])
    truth.graph["selection"] = "selected"
    results.write_true_graph(tmp_path, truth.subgraph(["a", "b"]), "a toy survey")
    assert "selection" not in results.read_true_graph(tmp_path).graph
    path = RunDir(tmp_path).true_graph_path
    record = {"format": results.TRUE_GRAPH_FORMAT, "nodes": ["a"], "edges": [], "selection": "s"}
    path.write_text(json.dumps(record))
    with pytest.raises(FileFormatError, match="selection node 's'"):
        results.read_true_graph(tmp_path)


def test_a_run_without_a_true_graph_has_none(tmp_path):
    assert results.read_true_graph(tmp_path) is None


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        json.dumps({"format": "something else"}),
        json.dumps({"format": results.TRUE_GRAPH_FORMAT}),
    ],
)
def test_a_broken_true_graph_file_is_refused_by_name(tmp_path, text):
    path = RunDir(tmp_path).true_graph_path
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(FileFormatError, match=r"true_graph\.json"):
        results.read_true_graph(tmp_path)


def test_predictions_of_an_untrained_or_unknown_input_set_say_what_to_do(tmp_path):
    with pytest.raises(ValidationError, match="interpret train --input-sets images"):
        results.read_mass_prediction(tmp_path, "images")
    with pytest.raises(ValidationError, match="unknown input set"):
        results.read_mass_prediction(tmp_path, "spectra")
