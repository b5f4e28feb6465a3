"""The landing page shows a run's stored metrics, or says what is missing."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import panel as pn
import pytest

from clapkit.evaluation import evaluate_run
from clapkit.metrics import PDFs
from clapkit.runs import RunDir

APP = Path(__file__).resolve().parents[2] / "app"


@pytest.fixture(scope="module")
def landing():
    spec = importlib.util.spec_from_file_location("clapkit_app_landing", APP / "landing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pn.cache keys its store on the module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def find(template, kind):
    return [obj for obj in template.main.objects if isinstance(obj, kind)]


def test_landing_shows_the_metrics_table_of_a_run(landing, tmp_path):
    run = RunDir(tmp_path / "run")
    edges = np.linspace(0, 0.4, 41)
    run.save_pdfs(
        "knn", PDFs.from_gaussian([0.1, 0.2, 0.3], [0.02] * 3, edges, z_true=[0.1, 0.2, 0.31])
    )
    evaluate_run(run, z_bins=1)
    template = landing.Landing(run_root=str(run.root)).__panel__()
    (table,) = find(template, pn.pane.DataFrame)
    assert table.object["method"].tolist() == ["knn"]
    assert table.object["N"].tolist() == [3]
    assert not find(template, pn.pane.Alert)


def test_landing_explains_a_missing_run(landing, tmp_path):
    template = landing.Landing(run_root=str(tmp_path / "absent")).__panel__()
    (alert,) = find(template, pn.pane.Alert)
    assert "make demo" in alert.object


def test_run_directory_from_arguments_and_environment(landing, monkeypatch):
    assert landing.run_from_args(["app", "--run", "x/y"]) == Path("x/y")
    monkeypatch.setenv("CLAPKIT_RUN", "elsewhere")
    assert landing.run_from_args(["app"]) == Path("elsewhere")
