"""The real setting of notebooks 04 and 05 is what the quick benchmarks run.

Both notebooks say that ``QUICK = False`` runs ``python benchmarks/<name>.py --quick``.
Their cell tagged ``parameters`` defines ``REAL`` and ``QUICK_SETTINGS``; these tests read
that cell (without running the notebook) and compare ``REAL`` with the benchmark's own
constants and the settings' defaults, so the claim cannot go stale unnoticed.
"""

import importlib.util
from pathlib import Path

import nbformat
import pytest

from clapkit.interpret.information import GaussianCheckSettings
from clapkit.interpret.input_sets import INPUT_SETS
from clapkit.interpret.settings import (
    AttributionSettings,
    CausalSettings,
    MassTrainSettings,
    PIDSettings,
)
from clapkit.translate.evaluate import BootstrapConfig
from clapkit.translate.probe import ProbeConfig

ROOT = Path(__file__).resolve().parents[1]


def parameters(notebook: str) -> dict:
    """The names the notebook's ``parameters`` cell defines."""
    cells = [
        cell
        for cell in nbformat.read(ROOT / "notebooks" / notebook, as_version=4).cells
        if "parameters" in cell.metadata.get("tags", [])
    ]
    assert len(cells) == 1, f"{notebook}: expected one cell tagged 'parameters'"
    namespace: dict = {}
    exec(cells[0].source, namespace)  # plain assignments, no imports
    return namespace


def benchmark(name: str, monkeypatch: pytest.MonkeyPatch):
    """Import ``benchmarks/<name>.py`` (it imports ``_report`` from its own folder)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        f"_benchmark_{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("notebook", ["04_image_translation.ipynb", "05_stellar_mass.ipynb"])
def test_the_notebook_runs_quick_and_its_switch_covers_every_setting(notebook):
    names = parameters(notebook)
    assert names["QUICK"] is True  # the tests run the committed notebook
    assert names["SETTINGS"] is names["QUICK_SETTINGS"]
    assert names["QUICK_SETTINGS"].keys() == names["REAL"].keys()
    assert names["QUICK_SETTINGS"] != names["REAL"]


def test_notebook_04_real_setting_is_the_quick_translation_benchmark(monkeypatch):
    real = parameters("04_image_translation.ipynb")["REAL"]
    bench = benchmark("translation", monkeypatch)
    quick = bench.MODES["quick"]
    assert real["n_galaxies"] == quick["n"]
    assert real["seed"] == bench.SURVEY_SEED
    assert real["preset"] == quick["preset"]
    assert tuple(real["tasks"]) == bench.TASKS
    assert real["models"] == {name: tuple(bench.DEFAULT_MODELS) for name in bench.TASKS}
    assert real["epochs"] == bench.QUICK_EPOCHS
    # The benchmark passes neither: each model's default batch, the default 8 samples.
    assert real["batch_size"] is None
    assert real["samples"] is None
    assert ProbeConfig(**real["probe"]) == quick["probe"]
    assert real["bootstrap"] == BootstrapConfig().n_resamples


def test_notebook_05_real_setting_is_the_quick_interpret_benchmark(monkeypatch):
    names = parameters("05_stellar_mass.ipynb")
    real = names["REAL"]
    bench = benchmark("interpret", monkeypatch)
    quick = bench.MODES["quick"]
    assert real["survey"] == "mock"
    assert real["survey_seed"] == bench.SURVEY_SEED
    assert real["n_galaxies"] == quick["n"]
    assert real["preset"] == quick["preset"]
    assert real["overrides"] == {"train": {"epochs": quick["epochs"]}}
    assert tuple(real["trained"]) == tuple(INPUT_SETS)
    # The benchmark leaves everything but k at the settings' defaults.
    assert CausalSettings(**real["causal"]) == CausalSettings(k=quick["k"])
    assert PIDSettings(**real["pid"]) == PIDSettings()
    assert AttributionSettings(**real["attribution"]) == AttributionSettings()
    assert GaussianCheckSettings(**real["gaussian"]) == GaussianCheckSettings()
    defaults = {MassTrainSettings().seed, CausalSettings().seed, PIDSettings().seed}
    defaults |= {AttributionSettings().seed, GaussianCheckSettings().seed}
    assert defaults == {names["SEED"]}
