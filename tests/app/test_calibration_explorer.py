"""The calibration explorer compares two methods, overall and within a selected bin."""

import shutil

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Legend
from clapkit_app.calibration import (
    LOW_HPD_COVERAGE,
    PIT_BINS,
    SUMMARY_CARDS,
    CalibrationExplorer,
    bin_mask,
    edge_texts,
    pit_histogram,
)
from clapkit_app.methods import method_colour
from clapkit_app.store import BASELINES, BIN_VARIABLES, method_label, read_run

from clapkit.metrics import coverage_from_pit
from clapkit.testing import SyntheticRunConfig, synthetic_run


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration") / "run"
    synthetic_run(root, SyntheticRunConfig(n_test=120, n_train=240))
    return root


@pytest.fixture(scope="module")
def run(run_root):
    return read_run(run_root)


def hook(explorer, css_class):
    """The one object of the explorer with ``css_class`` (the browser tests' hooks)."""
    found = [
        obj
        for obj in explorer.__panel__().select()
        if css_class in (getattr(obj, "css_classes", None) or [])
    ]
    assert len(found) == 1, f"{len(found)} objects with class {css_class}"
    return found[0]


def figures(explorer, title):
    """The explorer's Bokeh figures whose title starts with ``title``, in page order."""
    found = [
        pane.object
        for pane in explorer.__panel__().select(pn.pane.Bokeh)
        if pane.object.title.text.startswith(title)
    ]
    return found


def glyph_data(plot, glyph):
    """The data of the one renderer of ``plot`` drawing a ``glyph`` (a Bokeh glyph name)."""
    (renderer,) = [r for r in plot.renderers if type(r.glyph).__name__ == glyph]
    return renderer.data_source.data


def expected_bin(run, variable, index):
    """Ids of the galaxies in bin ``index`` of ``variable``, from the stored table."""
    rows = run.metrics[run.methods[0]][f"by_{variable}"]
    lo, hi = rows[index]["lo"], rows[index]["hi"]
    x = run.galaxies[variable].to_numpy()
    last = index == len(rows) - 1
    inside = (x >= lo) & ((x <= hi) if last else (x < hi))
    return run.galaxies["id"].to_numpy()[inside], rows[index]


def test_full_run_renders_inline_without_an_alert(run):
    explorer = CalibrationExplorer(run=run)
    assert not explorer.__panel__().select(pn.pane.Alert)
    pn.panel(explorer).get_root()  # what a notebook does to show it


def test_defaults_compare_clap_with_the_first_baseline(run):
    explorer = CalibrationExplorer(run=run)
    assert explorer.method_a.value == "clap"
    assert explorer.method_b.value == next(m for m in run.methods if m in BASELINES)
    assert set(explorer.method_a.options.values()) == set(run.methods)
    assert explorer.bin_variable.options == {
        label: var for var, label in BIN_VARIABLES.items() if f"by_{var}" in run.metrics["clap"]
    }


def test_summary_cards_follow_the_method(run):
    explorer = CalibrationExplorer(run=run)
    cards = hook(explorer, "ck-summary-a").objects
    for method in ("clap", "softmax", "clap_raw"):
        explorer.method_a.value = method
        summary = run.metrics[method]["summary"]
        assert [card.value for card in cards] == pytest.approx(
            [summary[key] for key, _, _ in SUMMARY_CARDS]
        )
    # The page text shows σ_MAD with four decimals (what the browser tests read).
    model = cards[0].get_root()
    assert f"{run.metrics['clap_raw']['summary']['sigma_mad']:.4f}" in model.text
    other = hook(explorer, "ck-summary-b").objects[0]
    assert other.value == pytest.approx(
        run.metrics[explorer.method_b.value]["summary"]["sigma_mad"]
    )


@pytest.mark.parametrize("variable", ["z_true", "mag_r", "g_r"])
def test_selecting_a_bin_filters_the_galaxies_to_it(run, variable):
    explorer = CalibrationExplorer(run=run)
    explorer.bin_variable.value = variable
    table = hook(explorer, "ck-galaxy-table")
    status = hook(explorer, "ck-selection-status")
    n_bins = len(run.metrics["clap"][f"by_{variable}"])
    for index in range(n_bins):
        explorer.bin_table.selection = [index]
        ids, row = expected_bin(run, variable, index)
        assert len(ids) > 0
        np.testing.assert_array_equal(np.sort(table.value["id"].to_numpy()), np.sort(ids))
        assert len(ids) == row["n"]  # the app's bin is the one the evaluation used
        assert f"Showing {len(ids)} galaxies with" in status.object
        assert BIN_VARIABLES[variable] in status.object
    explorer.bin_table.selection = []
    assert len(table.value) == len(run.galaxies)
    assert f"all {len(run.galaxies)} galaxies" in status.object


def test_pit_histograms_are_of_the_selected_galaxies(run):
    explorer = CalibrationExplorer(run=run)
    explorer.method_b.value = "softmax"
    explorer.bin_table.selection = [1]
    ids, _ = expected_bin(run, "z_true", 1)
    selected = run.galaxies["id"].isin(ids).to_numpy()
    plots = figures(explorer, "PIT of")
    assert len(plots) == 2
    for plot, method in zip(plots, ("clap", "softmax"), strict=True):
        bars = glyph_data(plot, "Quad")
        edges = np.append(bars["left"], bars["right"][-1:])
        density = np.asarray(bars["top"])
        assert len(density) == PIT_BINS
        assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)
        counts, _ = np.histogram(run.galaxies[f"{method}.pit"][selected], PIT_BINS, (0, 1))
        np.testing.assert_allclose(density * np.diff(edges) * len(ids), counts)
        # The band of a calibrated method, for this many galaxies, around density 1.
        band = glyph_data(plot, "VArea")
        p = 1 / PIT_BINS
        half = 2 * np.sqrt((1 - p) / (len(ids) * p))
        assert np.subtract(band["upper"], 1) == pytest.approx([half, half])
        assert np.subtract(1, band["lower"]) == pytest.approx([half, half])
        assert f"n = {len(ids)}" in plot.title.text
        assert plot.title.text.startswith(f"PIT of {method_label(method)} · selected bin")
        assert plot.y_range.end >= max(density.max(), 1 + half)


def test_plots_follow_the_methods_and_the_bin_variable(run):
    explorer = CalibrationExplorer(run=run)
    doc = Document()
    doc.add_root(pn.panel(explorer).get_root(doc))  # updates with a document attached
    (pit_a, _) = figures(explorer, "PIT of")
    (coverage_a, _) = figures(explorer, "Coverage of")
    (per_bin,) = figures(explorer, "σ_MAD per bin")
    explorer.method_a.value = "softmax"
    assert pit_a.title.text.startswith(f"PIT of {method_label('softmax')} · all galaxies")
    assert coverage_a.title.text.startswith(f"Coverage of {method_label('softmax')}")
    curve = run.metrics["softmax"]["coverage_curve"]
    # Both curves in the method's colour; the central one solid, the HPD one dashed.
    (central,) = [
        r.data_source.data
        for r in coverage_a.renderers
        if r.glyph.line_color == method_colour("softmax") and not r.glyph.line_dash
    ]
    np.testing.assert_allclose(central["x"], curve["levels"])
    np.testing.assert_allclose(central["y"], curve["central"])
    assert f"A: {method_label('softmax')}" in per_bin.title.text
    explorer.bin_metric.value = "crps"
    explorer.bin_variable.value = "mag_r"
    assert per_bin.title.text.startswith(f"CRPS per bin of {BIN_VARIABLES['mag_r']}")
    rows = run.metrics["softmax"]["by_mag_r"]
    (line_a, _) = [
        r.data_source.data for r in per_bin.renderers if type(r.glyph).__name__ == "Line"
    ]
    np.testing.assert_allclose(line_a["y"], [r["crps"] for r in rows])
    np.testing.assert_allclose(line_a["x"], [(r["lo"] + r["hi"]) / 2 for r in rows])
    # The same figures all along: updates send data, they build nothing.
    assert figures(explorer, "PIT of")[0] is pit_a


def test_pit_histogram_integrates_to_one_and_handles_no_values():
    rng = np.random.default_rng(1)
    edges, density, band = pit_histogram(rng.uniform(size=500))
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)
    assert band == pytest.approx(2 * np.sqrt((1 - 1 / PIT_BINS) / (500 / PIT_BINS)))
    edges, density, band = pit_histogram(np.array([np.nan]))
    assert not density.any() and np.isnan(band)


def test_last_bin_includes_its_upper_edge():
    x = np.array([0.0, 0.5, 1.0])
    assert bin_mask(x, 0.5, 1.0).tolist() == [False, True, False]
    assert bin_mask(x, 0.5, 1.0, last=True).tolist() == [False, True, True]


def test_another_bin_variable_clears_the_selection(run):
    explorer = CalibrationExplorer(run=run)
    explorer.bin_table.selection = [0]
    explorer.bin_variable.value = "mag_r"
    assert explorer.selected_bin is None
    assert len(hook(explorer, "ck-galaxy-table").value) == len(run.galaxies)
    assert hook(explorer, "ck-bin-table").value["bin"].iloc[0].startswith("[")
    assert f"per bin of {BIN_VARIABLES['mag_r']}" in hook(explorer, "ck-bin-heading").object


def test_bin_table_shows_both_methods_metrics(run):
    explorer = CalibrationExplorer(run=run)
    explorer.method_b.value = "ensemble"
    table = hook(explorer, "ck-bin-table").value
    rows_a, rows_b = run.metrics["clap"]["by_z_true"], run.metrics["ensemble"]["by_z_true"]
    assert table["sigma_mad_a"].tolist() == pytest.approx([r["sigma_mad"] for r in rows_a])
    assert table["crps_b"].tolist() == pytest.approx([r["crps"] for r in rows_b])
    assert table["n"].tolist() == [r["n"] for r in rows_a]


def test_galaxy_table_pages_and_follows_the_methods(run):
    explorer = CalibrationExplorer(run=run)
    table = hook(explorer, "ck-galaxy-table")
    assert table.pagination == "remote" and table.page_size == 15
    explorer.method_a.value = "clap_recal"
    np.testing.assert_array_equal(
        table.value["z_phot_a"].to_numpy(), run.galaxies["clap_recal.z_phot"].to_numpy()
    )
    np.testing.assert_array_equal(
        table.value["pit_b"].to_numpy(), run.galaxies[f"{explorer.method_b.value}.pit"]
    )
    # Every galaxy's novelty percentile (how far the training set is in CLAP's latent).
    np.testing.assert_array_equal(
        table.value["novelty"].to_numpy(), run.galaxies["novelty"].to_numpy()
    )


def test_picking_a_row_shows_that_galaxy(run):
    explorer = CalibrationExplorer(run=run)
    table = hook(explorer, "ck-galaxy-table")
    first = run.galaxies["id"].iat[0]
    assert table.selection == [0] and explorer.galaxy_view.galaxy_id == first
    assert f"Galaxy {first}" in hook(explorer, "ck-galaxy-title").object
    explorer.bin_table.selection = [2]  # a bin without the first galaxy
    table.selection = [3]
    galaxy_id = table.value["id"].iat[3]
    assert explorer.galaxy_view.galaxy_id == galaxy_id
    assert f"Galaxy {galaxy_id}" in hook(explorer, "ck-galaxy-title").object
    # Back to all galaxies: the galaxy shown stays, selected where it now is.
    explorer.bin_table.selection = []
    assert explorer.galaxy_view.galaxy_id == galaxy_id
    assert table.value["id"].iat[table.selection[0]] == galaxy_id


def test_sessions_are_independent_and_leave_the_run_untouched(run):
    before = run.galaxies.copy()
    one, two = CalibrationExplorer(run=run), CalibrationExplorer(run=run)
    one.bin_table.selection = [1]
    one.method_a.value = "softmax"
    assert two.selected_bin is None and two.method_a.value == "clap"
    assert len(hook(two, "ck-galaxy-table").value) == len(run.galaxies)
    assert run.galaxies.equals(before)
    assert not run.galaxies["z_true"].to_numpy().flags.writeable


def test_a_run_without_evaluation_says_how_to_make_it(run_root, tmp_path):
    root = tmp_path / "run"
    shutil.copytree(run_root, root)
    (root / "metrics.json").unlink()
    explorer = CalibrationExplorer(run=read_run(root))
    (alert,) = explorer.__panel__().select(pn.pane.Alert)
    assert "clapkit evaluate" in alert.object
    assert not explorer.__panel__().select(pn.widgets.Tabulator)
    pn.panel(explorer).get_root()


def test_a_missing_run_directory_says_how_to_make_one(tmp_path):
    explorer = CalibrationExplorer(run=read_run(tmp_path / "absent"))
    (alert,) = explorer.__panel__().select(pn.pane.Alert)
    assert "make demo" in alert.object
    pn.panel(explorer).get_root()


def test_edges_are_written_with_the_digits_that_keep_every_galaxy_on_its_side():
    # The case: rounded to 4 digits, r = 17.0984 and 17.8414 changed sides.
    values = np.array([17.0984, 17.3, 17.8414])
    lo, hi = edge_texts(17.09838, 17.8416, values)
    assert bin_mask(values, float(lo), float(hi)).tolist() == [True, True, True]
    assert (lo, hi) == ("17.098", "17.842")
    rng = np.random.default_rng(3)
    values = rng.normal(17.5, 0.5, 2000)
    for last in (False, True):
        lo_edge, hi_edge = np.quantile(values, [0.3, 0.7])
        lo, hi = edge_texts(lo_edge, hi_edge, values, last)
        np.testing.assert_array_equal(
            bin_mask(values, float(lo), float(hi), last), bin_mask(values, lo_edge, hi_edge, last)
        )


@pytest.mark.parametrize("variable", ["z_true", "mag_r", "g_r"])
def test_shown_bin_edges_hold_exactly_the_bins_galaxies(run, variable):
    explorer = CalibrationExplorer(run=run)
    explorer.bin_variable.value = variable
    status = hook(explorer, "ck-selection-status")
    labels = hook(explorer, "ck-bin-table").value["bin"].tolist()
    values = run.galaxies[variable].to_numpy()
    for index, label in enumerate(labels):
        explorer.bin_table.selection = [index]
        ids, _ = expected_bin(run, variable, index)
        last = index == len(labels) - 1
        assert label.endswith("]" if last else ")")
        lo, hi = (float(x) for x in label[1:-1].split(", "))
        shown = run.galaxies["id"].to_numpy()[bin_mask(values, lo, hi, last)]
        np.testing.assert_array_equal(np.sort(shown), np.sort(ids))
        # The status says the same interval, with the code's half-open convention.
        sign = "≤" if last else "<"
        assert f"{label[1:-1].split(', ')[0]} ≤ {BIN_VARIABLES[variable]} {sign}" in status.object


def test_choosing_a_bin_shows_a_galaxy_of_that_bin(run):
    explorer = CalibrationExplorer(run=run)
    n_bins = len(run.metrics["clap"]["by_z_true"])
    for index in range(n_bins):
        explorer.bin_table.selection = [index]
        ids, _ = expected_bin(run, "z_true", index)
        assert explorer.galaxy_view.galaxy_id in set(ids.tolist())
        assert (
            f"Galaxy {explorer.galaxy_view.galaxy_id}" in hook(explorer, "ck-galaxy-title").object
        )


def test_coverage_curves_follow_the_bin_from_the_stored_pit(run):
    explorer = CalibrationExplorer(run=run)
    (coverage_a, _) = figures(explorer, "Coverage of")
    explorer.bin_table.selection = [1]
    ids, _ = expected_bin(run, "z_true", 1)
    pit = run.galaxies["clap.pit"].to_numpy()[run.galaxies["id"].isin(ids).to_numpy()]
    curve = run.metrics["clap"]["coverage_curve"]
    (central,) = [
        r.data_source.data
        for r in coverage_a.renderers
        if r.glyph.line_color == method_colour("clap") and not r.glyph.line_dash
    ]
    np.testing.assert_allclose(central["y"], coverage_from_pit(pit, curve["levels"]))
    assert coverage_a.title.text.startswith(f"Coverage of {method_label('clap')} · selected bin")
    labels = [item.label.value for item in coverage_a.legend[0].items]
    assert "HPD (all galaxies)" in labels and "central (bin)" in labels
    # All galaxies again: the stored curves, and their plain names.
    explorer.bin_table.selection = []
    (central,) = [
        r.data_source.data
        for r in coverage_a.renderers
        if r.glyph.line_color == method_colour("clap") and not r.glyph.line_dash
    ]
    np.testing.assert_allclose(central["y"], curve["central"])
    assert [item.label.value for item in coverage_a.legend[0].items][1:] == ["central", "HPD"]


def test_each_method_keeps_its_colour_and_name_in_every_plot(run):
    explorer = CalibrationExplorer(run=run)
    pit_a, pit_b = figures(explorer, "PIT of")
    (per_bin,) = figures(explorer, "σ_MAD per bin")
    for a, b in (("clap", "softmax"), ("clap_raw", "ensemble"), ("temperature", "clap")):
        explorer.method_a.value, explorer.method_b.value = a, b
        for plot, method in ((pit_a, a), (pit_b, b)):
            (bars,) = [r for r in plot.renderers if type(r.glyph).__name__ == "Quad"]
            assert bars.glyph.fill_color == method_colour(method)
        labels = [item.label.value for item in per_bin.legend[0].items]
        assert labels == [f"A: {method_label(a)}", f"B: {method_label(b)}"]
        lines = [r.glyph for r in per_bin.renderers if type(r.glyph).__name__ == "Line"]
        assert [line.line_color for line in lines] == [method_colour(a), method_colour(b)]


def test_legends_sit_outside_the_plot_area(run):
    explorer = CalibrationExplorer(run=run)
    explorer.bin_variable.value = "g_r"
    plots = [pane.object for pane in explorer.__panel__().select(pn.pane.Bokeh)]
    with_legends = [p for p in plots if p.legend]
    assert len(with_legends) >= 6  # PIT and coverage of A and B, per bin, PDFs
    for plot in with_legends:
        assert not [obj for obj in plot.center if isinstance(obj, Legend)]
        assert plot.legend[0] in plot.right
    # The grey band of the PIT histograms has its legend entry.
    pit_a, _ = figures(explorer, "PIT of")
    assert "±2σ of a calibrated method" in [i.label.value for i in pit_a.legend[0].items]


def test_a_note_explains_low_hpd_coverage_of_neighbour_histograms(run):
    explorer = CalibrationExplorer(run=run)
    note = hook(explorer, "ck-hpd-note-a")
    explorer.method_a.value = "clap_raw"
    top = run.metrics["clap_raw"]["coverage_curve"]["hpd"][-1]
    assert note.visible == (top < LOW_HPD_COVERAGE)
    if note.visible:
        assert "CLAP raw KNN" in note.object and f"{top:.2f}" in note.object
    explorer.method_a.value = "clap"
    assert not note.visible
