"""The stellar-mass page sets FCI's PAG beside the true PAG, and the local tests beside
what the true graph implies, where the run stored them; older runs show neither."""

import json
import shutil

import pytest
from clapkit_app.stellar_mass import StellarMass
from clapkit_app.stellar_mass_store import read_stellar_mass
from clapkit_app.stellar_mass_truth import confusion_frame, pag_frame

from clapkit.interpret.fci import CIRCLE, PAGResult
from clapkit.runs import RunDir
from clapkit.testing import synthetic_interpret_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return synthetic_interpret_run(tmp_path_factory.mktemp("stellar_mass_truth") / "run")


@pytest.fixture
def copy(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    return root


def objects_with(viewer, css_class):
    return [
        obj
        for obj in viewer.__panel__().select()
        if css_class in (getattr(obj, "css_classes", None) or [])
    ]


def as_if_on_the_mock(root):
    """Give the stored FCI graph a true PAG (every pair joined by o-o) and a score, and
    store local tests scored against a truth."""
    path = RunDir(root).fci_path
    stored = json.loads(path.read_text())
    found = PAGResult.from_dict(stored["graph"])
    n = len(found.columns)
    marks = [[0 if i == j else CIRCLE for j in range(n)] for i in range(n)]
    truth = PAGResult(found.columns, marks, test="d_separation")
    stored["reference"] = truth.to_dict()
    stored["score"] = {"shd": 4, "n_missing": 3, "n_extra": 0, "n_misoriented": 1}
    stored["score"] |= {"precision": 1.0, "recall": 0.25}
    path.write_text(json.dumps(stored))
    table = {"TP": ["hlr", "disk_q"], "FP": [], "TN": ["position_angle"], "FN": ["z"]}
    scored = {
        "tables": {"with_selection": {"unconditional": table}, "without_selection": {}},
        "latent_proxy": {"name": "latent", "parents": [], "invariant": ["position_angle"]},
    }
    RunDir(root).local_tests_truth_path.write_text(json.dumps(scored))
    return found, truth


def test_off_the_mock_the_fci_graph_is_listed_without_a_truth(run_root):
    data = read_stellar_mass(run_root)
    assert data.problems == [] and data.fci is not None and data.fci_truth is None
    viewer = StellarMass(data=data)
    (table,) = objects_with(viewer, "ck-fci-table")
    assert list(table.value.columns) == ["pair", "found"]
    assert len(table.value) == len(data.fci.edges())
    assert "No true PAG" in objects_with(viewer, "ck-fci-caption")[0].object
    assert not objects_with(viewer, "ck-truth-confusion")


def test_on_the_mock_the_pag_is_beside_the_truth_and_the_tests_in_a_confusion_table(copy):
    found, truth = as_if_on_the_mock(copy)
    data = read_stellar_mass(copy)
    assert data.problems == [] and data.fci_truth is not None
    viewer = StellarMass(data=data)
    (table,) = objects_with(viewer, "ck-fci-table")
    frame = table.value
    n = len(found.columns)
    assert len(frame) == n * (n - 1) // 2  # every pair is adjacent in the truth
    assert set(frame["true"]) == set(truth.edge_strings())
    assert sum(frame["agrees"]) == sum(1 for e in found.edge_strings() if " o-o " in e)
    assert "SHD 4 (3 missing" in objects_with(viewer, "ck-fci-caption")[0].object
    (confusion,) = objects_with(viewer, "ck-truth-confusion")
    row = confusion.value.iloc[0]
    assert (row["truth"], row["tests"]) == ("given the selection", "unconditional")
    assert (row["TP"], row["TN"], row["FN"]) == ("hlr, disk_q", "position_angle", "z")


def test_runs_made_before_fci_show_neither_table(copy):
    RunDir(copy).fci_path.unlink()
    data = read_stellar_mass(copy)
    assert data.problems == [] and data.fci is None and data.local_truth is None
    viewer = StellarMass(data=data)
    assert not objects_with(viewer, "ck-fci-table")
    assert not objects_with(viewer, "ck-truth-confusion")


@pytest.mark.parametrize(
    ("path", "text", "what"),
    [
        ("fci_path", "{not json", "FCI graph"),
        ("fci_path", json.dumps({"graph": {"columns": ["a"]}}), "FCI graph"),
        ("local_tests_truth_path", json.dumps({"tables": []}), "against the truth"),
    ],
)
def test_unreadable_truth_files_are_problems_not_errors(copy, path, text, what):
    getattr(RunDir(copy), path).write_text(text)
    data = read_stellar_mass(copy)
    assert any(what in problem for problem in data.problems)
    StellarMass(data=data).__panel__()  # the page still builds


def test_frames_line_up_found_and_true_edges():
    found = PAGResult(("a", "b", "c"), [[0, 2, 0], [3, 0, 0], [0, 0, 0]])
    truth = PAGResult(("a", "b", "c"), [[0, 0, 3], [0, 0, 0], [3, 0, 0]])
    rows = pag_frame(found, truth).to_dict("records")
    assert rows == [
        {"pair": "a – b", "found": "a o-> b", "true": "(none)", "agrees": False},
        {"pair": "a – c", "found": "(none)", "true": "a o-o c", "agrees": False},
    ]
    assert list(pag_frame(found, None).columns) == ["pair", "found"]
    assert confusion_frame({}).empty
