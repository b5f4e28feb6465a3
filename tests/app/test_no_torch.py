"""A dashboard process never loads torch: the app imports only the library's readers.

A fresh interpreter imports every module of ``clapkit_app``, reads a run holding every
kind of result through the three stores, and builds every page script as ``panel
serve`` would; ``torch`` must not be among the modules it loaded.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import clapkit_app
import networkx as nx
import pytest

import clapkit
from clapkit.interpret import results
from clapkit.runs import RunDir
from clapkit.testing import (
    SyntheticRunConfig,
    synthetic_interpret_run,
    synthetic_run,
    synthetic_translation_run,
)

SCRIPT = """
import importlib, json, pkgutil, runpy, sys

import clapkit_app

run = sys.argv[1]
for module in pkgutil.iter_modules(clapkit_app.__path__):
    importlib.import_module(f"clapkit_app.{module.name}")
after_imports = "torch" in sys.modules

from clapkit_app.serving import PAGES, pages_dir
from clapkit_app.stellar_mass_store import read_stellar_mass
from clapkit_app.store import read_run
from clapkit_app.translation_store import read_translation

stellar_mass = read_stellar_mass(run)
stores = {
    "photo-z": read_run(run).problems,
    "stellar mass": stellar_mass.problems,
    "translation": read_translation(run).problems,
}
for name in PAGES:
    sys.argv = [str(pages_dir() / f"{name}.py"), "--run", run]
    runpy.run_path(sys.argv[0], run_name=f"bokeh_app_{name}")
print(json.dumps({
    "after_imports": after_imports,
    "torch": sorted(m for m in sys.modules if m.split(".")[0] == "torch"),
    "problems": stores,
    "truth_drawn": stellar_mass.truth is not None,
}))
"""


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    """A run with photo-z, stellar-mass and translation results, and a true graph."""
    root = tmp_path_factory.mktemp("no_torch") / "run"
    synthetic_run(root, SyntheticRunConfig(n_test=40, n_train=80))
    synthetic_interpret_run(root)
    synthetic_translation_run(root, models=("srgan",))
    # A recorded true graph and a score, as on the mock survey, so that the page reads
    # and draws the truth too.
    run = RunDir(root)
    pc = results.clapkit_json(run.pc_path)
    columns = pc["graph"]["columns"]
    pc["score"] = {"shd": 1, "n_missing": 1, "n_extra": 0, "n_misoriented": 0}
    run.pc_path.write_text(json.dumps(pc))
    truth = nx.DiGraph()
    truth.add_nodes_from(columns)
    truth.add_edge(columns[0], columns[1])
    results.write_true_graph(root, truth, "a test survey")
    return root


def _reader_process(run: Path) -> dict:
    # The subprocess imports this checkout's packages, whatever is installed.
    paths = [str(Path(clapkit.__file__).parents[1]), str(Path(clapkit_app.__file__).parents[1])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(run)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_reading_and_showing_a_complete_run_never_loads_torch(full_run):
    report = _reader_process(full_run)
    # Every store found everything, so every reader ran.
    assert report["problems"] == {"photo-z": [], "stellar mass": [], "translation": []}
    assert report["truth_drawn"]
    assert not report["after_imports"], "importing clapkit_app loads torch"
    assert report["torch"] == []
