"""The landing page shows a run's stored metrics and the dashboards, or what is missing."""

from pathlib import Path

import numpy as np
import panel as pn
from clapkit_app.landing import Landing, landing_methods
from clapkit_app.methods import LANDING_METHODS, method_colour
from clapkit_app.store import method_label, read_run, run_from_args

from clapkit.evaluation import EvaluationSettings, evaluate_run
from clapkit.metrics import PDFs
from clapkit.runs import RunDir


def parts(viewer, kind):
    return [obj for obj in viewer.__panel__().objects if isinstance(obj, kind)]


def test_landing_shows_the_metrics_table_and_links(tmp_path):
    run = RunDir(tmp_path / "run")
    edges = np.linspace(0, 0.4, 41)
    for method, width in (("softmax", 0.02), ("clap", 0.03)):
        pdfs = PDFs.from_gaussian([0.1, 0.2, 0.3], [width] * 3, edges, z_true=[0.1, 0.2, 0.31])
        run.save_pdfs(method, pdfs)
    evaluate_run(run, EvaluationSettings(z_bins=1))
    landing = Landing(run=read_run(run.root))
    (table,) = parts(landing, pn.widgets.Tabulator)
    # CLAP first, whatever the file order; labelled for people.
    assert table.value["method"].tolist() == [method_label("clap"), method_label("softmax")]
    assert table.value["N"].tolist() == [3, 3]
    text = " ".join(md.object for md in parts(landing, pn.pane.Markdown))
    assert all(f"(./{path})" in text for path in ("calibration", "neighbours", "translation"))
    # No clap/knn.h5 and no galaxy file: the page says so rather than failing.
    (alert,) = parts(landing, pn.pane.Alert)
    assert "clapkit train" in alert.object


def test_landing_explains_a_missing_run(tmp_path):
    landing = Landing(run=read_run(tmp_path / "absent"))
    (alert,) = parts(landing, pn.pane.Alert)
    assert "make demo" in alert.object
    assert not parts(landing, pn.widgets.Tabulator)


def test_run_directory_from_arguments_and_environment(monkeypatch):
    assert run_from_args(["app", "--run", "x/y"]) == Path("x/y")
    monkeypatch.setenv("CLAPKIT_RUN", "elsewhere")
    assert run_from_args(["app"]) == Path("elsewhere")
    monkeypatch.delenv("CLAPKIT_RUN")
    assert run_from_args(["app"]) == Path("data/runs/demo")


def test_landing_plots_say_which_methods_they_show_in_their_colours(tmp_path):
    run = RunDir(tmp_path / "run")
    edges = np.linspace(0, 0.4, 41)
    z = [0.1, 0.2, 0.3, 0.15]
    for method, width in (("softmax", 0.02), ("clap", 0.03), ("mcdropout", 0.025)):
        run.save_pdfs(method, PDFs.from_gaussian(z, [width] * 4, edges, z_true=z))
    evaluate_run(run, EvaluationSettings(z_bins=1))
    landing = Landing(run=read_run(run.root))
    # MC dropout is not among the landing plots' methods: the page says which are.
    shown = [m for m in LANDING_METHODS if m in ("softmax", "clap")]
    assert landing_methods(read_run(run.root)) == shown
    (why,) = [
        md
        for md in landing.__panel__().select(pn.pane.Markdown)
        if "ck-landing-why" in md.css_classes
    ]
    assert "2 of the run's 3 methods" in why.object
    assert all(method_label(m) in why.object for m in shown)
    plots = [pane.object for pane in landing.__panel__().select(pn.pane.Bokeh)]
    assert len(plots) == 2
    for plot in plots:
        items = {item.label.value: item for item in plot.legend[0].items}
        for method in shown:
            (renderer,) = items[method_label(method)].renderers
            assert renderer.glyph.line_color == method_colour(method)
        assert method_label("mcdropout") not in items
        # The legend beside the plot, never over the curves.
        assert plot.legend[0] in plot.right and plot.legend[0] not in plot.center
