"""The photo-z figures draw exactly the numbers of the run: PIT histograms, coverage
curves, calibration per bin, one galaxy's PDFs and neighbours."""

import shutil

import numpy as np
import pytest

from clapkit.errors import ValidationError
from clapkit.evaluation import COVERAGE_LEVELS, ordered_methods
from clapkit.metrics import coverage
from clapkit.photoz.details import read_clap_details
from clapkit.plots import (
    figures_from_run,
    plan_figures,
    plot_coverage_curves,
    plot_galaxy,
    plot_pit_histograms,
)
from clapkit.plots.style import WIDTHS
from clapkit.testing import SyntheticRunConfig, synthetic_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return synthetic_run(
        tmp_path_factory.mktemp("photoz") / "run", SyntheticRunConfig(n_test=40, n_train=60)
    )


@pytest.fixture(scope="module")
def figures(run):
    return figures_from_run(run)


@pytest.fixture(scope="module")
def pdfs(run):
    return {method: run.load_pdfs(method)[0] for method in ordered_methods(run.methods())}


def visible(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def test_a_photoz_run_makes_the_calibration_and_galaxy_figures_and_skips_the_rest(run):
    plan = plan_figures(run)
    assert plan.names == [
        "pit_histograms",
        "coverage_curves",
        "calibration_by_z_true",
        "calibration_by_mag_r",
        "calibration_by_g_r",
        "galaxy",
    ]
    skipped = " ".join(plan.skipped)
    for command in ("clapkit translate", "clapkit interpret train", "interpret causal", "pid"):
        assert command in skipped


def test_pit_histograms_count_every_galaxy_of_every_method(figures, pdfs):
    fig, table = figures["pit_histograms"]
    axes = visible(fig)
    assert [ax.get_title() for ax in axes] == list(pdfs)
    for ax, (method, method_pdfs) in zip(axes, pdfs.items(), strict=True):
        assert ax.get_xlim() == (0.0, 1.0)
        rows = table[table["method"] == method]
        assert rows["count"].sum() == method_pdfs.n
        # The bars are the densities of the table, and those are the PITs of the PDFs.
        heights = [bar.get_height() for bar in ax.containers[0]]
        assert np.allclose(heights, rows["density"])
        expected, _ = np.histogram(method_pdfs.pit(), bins=np.linspace(0, 1, len(rows) + 1))
        assert np.array_equal(rows["count"], expected)
        widths = rows["pit_hi"] - rows["pit_lo"]
        assert np.allclose(rows["density"] * widths * method_pdfs.n, rows["count"])
    assert axes[-1].get_xlabel() == "PIT" and axes[0].get_ylabel() == "density"


def test_coverage_curves_are_those_of_the_metrics(figures, pdfs):
    fig, table = figures["coverage_curves"]
    (ax,) = fig.axes
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    assert ax.get_xlabel() == "nominal credibility"
    lines = {line.get_label(): line for line in ax.get_lines()}
    for method, method_pdfs in pdfs.items():
        for kind in ("central", "hpd"):
            expected = coverage(
                method_pdfs.p, method_pdfs.edges, method_pdfs.z_true, COVERAGE_LEVELS, kind=kind
            )
            rows = table[(table["method"] == method) & (table["kind"] == kind)]
            assert np.allclose(rows["level"], COVERAGE_LEVELS)
            assert np.allclose(rows["coverage"], expected)
        assert np.allclose(
            lines[method].get_ydata(),
            table[(table["method"] == method) & (table["kind"] == "central")]["coverage"],
        )


def test_calibration_per_bin_plots_the_per_bin_tables(run, figures):
    metrics = run.read_json("metrics.json")["methods"]
    fig, table = figures["calibration_by_z_true"]
    ax_cov, ax_w1 = fig.axes
    assert ax_w1.get_xlabel() == r"$z_\mathrm{spec}$" and "coverage" in ax_cov.get_ylabel()
    for method, result in metrics.items():
        rows = table[table["method"] == method]
        stored = result["by_z_true"]
        assert len(rows) == len(stored)
        for row, bin_row in zip(rows, stored, strict=True):
            assert row["lo"] == bin_row["lo"] and row["n"] == bin_row["n"]
            assert row["coverage_68"] == pytest.approx(bin_row["coverage_68"], nan_ok=True)
            assert row["pit_w1"] == pytest.approx(bin_row["pit_w1"], nan_ok=True)
    first = ax_cov.get_lines()[2]  # after the two reference levels
    clap = table[table["method"] == first.get_label()]
    assert np.allclose(first.get_xdata(), clap["centre"])
    assert np.allclose(first.get_ydata(), clap["coverage_68"], equal_nan=True)


def test_the_galaxy_figure_shows_its_pdfs_and_clap_neighbours(run, figures, pdfs):
    fig, table = figures["galaxy"]
    clap = pdfs["clap"]
    # The default galaxy is the one of median true redshift.
    row = int(np.argsort(clap.z_true, kind="stable")[(clap.n - 1) // 2])
    galaxy_id = clap.ids[row].item()
    assert f"galaxy {galaxy_id}" in fig.axes[0].get_title()
    widths = np.diff(clap.edges)
    for method, method_pdfs in pdfs.items():
        density = table[table["series"] == method]["density"]
        assert np.allclose(density * widths, method_pdfs.p[row])
    details = read_clap_details(run.root / "clap" / "knn.h5")
    detail_row = int(np.flatnonzero(details.ids == galaxy_id)[0])
    neighbours = table[table["series"] == "neighbours"]["density"]
    assert np.sum(neighbours * widths) == pytest.approx(1.0)
    assert f"{details.k[detail_row]} neighbours" in [
        t.get_text() for t in fig.axes[1].get_legend().get_texts()
    ]
    assert fig.axes[1].get_xlabel() == "redshift" and fig.axes[0].get_xlim() == (0.0, 0.4)


def test_another_galaxy_is_chosen_by_id_and_an_unknown_id_is_refused(run, pdfs):
    chosen = pdfs["clap"].ids[3].item()
    (galaxy,) = [f for f in plan_figures(run, galaxy=str(chosen)).figures if f.name == "galaxy"]
    _, table = galaxy.make("single")
    assert table.meta["galaxy_id"] == chosen and set(table["galaxy_id"]) == {chosen}
    with pytest.raises(ValidationError, match="--galaxy 12: not among the 40 galaxies"):
        plan_figures(run, galaxy=12)


def test_width_sets_the_figure_size(run):
    curves = {"clap": run.read_json("metrics.json")["methods"]["clap"]["coverage_curve"]}
    narrow, _ = plot_coverage_curves(curves, width="single")
    wide, _ = plot_coverage_curves(curves, width="double")
    assert narrow.get_figwidth() == pytest.approx(WIDTHS["single"])
    assert wide.get_figwidth() == pytest.approx(WIDTHS["double"])
    with pytest.raises(ValidationError, match="width must be one of"):
        figures_from_run(run, width="triple")


def test_bad_inputs_are_refused():
    with pytest.raises(ValidationError, match="in \\[0, 1\\]"):
        plot_pit_histograms({"a": [0.2, 1.5]})
    with pytest.raises(ValidationError, match="no PIT values"):
        plot_pit_histograms({})
    with pytest.raises(ValidationError, match="the edges give 4 bins"):
        plot_galaxy({"a": [0.5, 0.5]}, np.linspace(0, 0.4, 5))


def test_a_run_without_evaluation_or_clap_still_shows_its_galaxy(run, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(run.pdfs_dir, partial / "pdfs")
    plan = plan_figures(partial)
    assert plan.names == ["galaxy"]
    skipped = " ".join(plan.skipped)
    assert f"clapkit evaluate --run {partial}" in skipped and "CLAP neighbours" in skipped
    fig, table = plan.figures[0].make("single")
    assert len(fig.axes) == 1 and "neighbours" not in set(table["series"])
