"""A broken run never crashes a page: each page says what is missing and how to make it."""

import json
import shutil

import panel as pn
import pytest
from clapkit_app.calibration import CalibrationExplorer
from clapkit_app.landing import Landing
from clapkit_app.neighbours import NeighbourBrowser
from clapkit_app.store import read_run

from clapkit.testing import SyntheticRunConfig, synthetic_run

PAGES = (Landing, CalibrationExplorer, NeighbourBrowser)


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken") / "run"
    synthetic_run(root, SyntheticRunConfig(n_test=60, n_train=120))
    return root


@pytest.fixture
def copy(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    return root


def render_every_page(root) -> str:
    """Build every page on the run (as a server session would) and return its alerts."""
    run = read_run(root)
    texts = []
    for page in PAGES:
        viewer = page(run=run)
        pn.panel(viewer).get_root()
        texts += [alert.object for alert in viewer.__panel__().select(pn.pane.Alert)]
    return " ".join(texts)


def summary_removed(payload):
    del payload["methods"]["clap"]["summary"]
    return payload


def summary_incomplete(payload):
    del payload["methods"]["clap"]["summary"]["crps"]
    return payload


def of_another_run(payload):
    payload["methods"] = {f"other_{m}": v for m, v in payload["methods"].items()}
    return payload


@pytest.mark.parametrize(
    "corrupt, says",
    [
        (lambda payload: [], "no per-method results"),
        (lambda payload: {"methods": None}, "no per-method results"),
        (lambda payload: {"methods": {}}, "no per-method results"),
        (summary_removed, "no summary for 'clap'"),
        (summary_incomplete, "lacks ['crps']"),
        (of_another_run, "of another run"),
    ],
    ids=["list", "null", "empty", "no-summary", "summary-incomplete", "another-run"],
)
def test_a_broken_metrics_file_is_explained_on_every_page(copy, corrupt, says):
    path = copy / "metrics.json"
    path.write_text(json.dumps(corrupt(json.loads(path.read_text()))))
    text = render_every_page(copy)
    assert says in text and "clapkit evaluate" in text


def test_a_truncated_pdf_file_is_left_out_and_named(copy):
    path = copy / "pdfs" / "softmax.h5"
    path.write_bytes(path.read_bytes()[:1000])
    run = read_run(copy)
    assert "softmax" not in run.methods and "clap" in run.methods
    assert run.edges is not None
    text = render_every_page(copy)
    assert "softmax.h5" in text and "clapkit predict" in text


def test_a_run_whose_every_pdf_file_is_truncated_is_explained(copy):
    for path in (copy / "pdfs").glob("*.h5"):
        path.write_bytes(b"")
    run = read_run(copy)
    assert run.methods == [] and run.metrics is None
    assert "clapkit predict" in render_every_page(copy)
