"""The calibration explorer: two methods side by side, their calibration within any bin.

It shows what ``clapkit evaluate`` stored (``metrics.json`` and the per-galaxy table) and
computes nothing heavier than a histogram of the selected galaxies' PIT values: summary
cards, PIT histograms with the sampling band of a calibrated method, coverage curves,
metrics per bin of true redshift, magnitude or colour, and the galaxies of a chosen bin,
one of which :class:`~clapkit_app.galaxy.GalaxyView` shows in full.

Every plot is a plain Bokeh figure built once per session; a widget change assigns new
arrays (and titles) to the figures it affects, in one document message, and rebuilds
nothing: HoloViews re-rendered a plot in a few hundred milliseconds of server time, this
takes a few. The galaxy table is paginated on the server, so a run of 100,000 galaxies
sends 15 rows at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, Range1d
from bokeh.models.widgets.tables import NumberFormatter
from bokeh.plotting import figure

from clapkit.metrics import coverage_from_pit
from clapkit.metrics.definitions import tooltip, tooltips
from clapkit_app.downloads import download_buttons, frame_table, pdf_table
from clapkit_app.galaxy import GalaxyView
from clapkit_app.legends import outside_legend
from clapkit_app.methods import IDEAL_COLOUR, identity, method_colour
from clapkit_app.page import problems_alert
from clapkit_app.store import BASELINES, BIN_VARIABLES, RunData, method_label, plain_id
from clapkit_app.tables import FIT_WIDTH
from clapkit_app.urlstate import (
    UrlField,
    UrlState,
    choice_field,
    galaxy_links,
    translation_has,
    unknown_id_message,
)

#: Summary cards: key of ``metrics[m]["summary"]``, title, format.
SUMMARY_CARDS = (
    ("sigma_mad", "σ_MAD", "{value:.4f}"),
    ("bias", "bias", "{value:+.4f}"),
    ("outlier_fraction", "outlier fraction", "{value:.4f}"),
    ("crps", "CRPS", "{value:.4f}"),
)
#: Per-bin metrics offered for the plot and shown in the table: label, key.
BIN_METRICS = {
    "σ_MAD": "sigma_mad",
    "bias": "bias",
    "outlier fraction": "outlier_fraction",
    "CRPS": "crps",
    "PIT W1": "pit_w1",
    "cov68": "coverage_68",
}
#: Units of the binned variables and metrics on the per-bin plot's axes (the others,
#: redshifts and fractions, are dimensionless).
AXIS_UNITS = {"mag_r": "mag", "g_r": "mag"}
#: Bins of the PIT histograms.
PIT_BINS = 20
PLOT_HEIGHT = 260
#: Width of the galaxy table, in screen pixels: its nine columns in full.
GALAXY_TABLE_WIDTH = 760
#: Tools of every plot (Bokeh's defaults less the ones that change nothing here).
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
#: Coverage curves of ``metrics[m]["coverage_curve"]``: key, legend label, dash (each in
#: the method's colour).
COVERAGE_CURVES = (("central", "central", "solid"), ("hpd", "HPD", "dashed"))
#: Methods whose PDFs are histograms of neighbours' redshifts (zero between them).
NEIGHBOUR_HISTOGRAMS = ("clap_raw", "knn_photometry")
#: Below this observed HPD coverage at the highest nominal level, a method's HPD
#: intervals miss more than they should: the page says why that can happen.
LOW_HPD_COVERAGE = 0.8
#: Why a spiky PDF's HPD intervals cover less than their credibility (CLAP raw KNN).
SPIKY_HPD_NOTE = (
    "**Why {label}'s HPD coverage stays at {top:.2f} at nominal 1:** its PDF is a "
    "histogram of its k neighbours' spectroscopic redshifts, so it is zero wherever no "
    "neighbour lies. The highest-density interval holds only the bins with neighbours; "
    "a true redshift in an empty bin between them falls outside every HPD interval, "
    "however wide. Its central intervals, which span the gaps, do not suffer from this."
)


def calibrated_band(fig: Any, source: ColumnDataSource) -> Any:
    """The grey band a calibrated method's PIT histogram stays in (±2σ of the counts),
    with its legend entry; ``source`` holds ``x``, ``lower`` and ``upper``."""
    return fig.varea(
        x="x",
        y1="lower",
        y2="upper",
        source=source,
        color="gray",
        alpha=0.25,
        legend_label="±2σ of a calibrated method",
    )


def pit_histogram(pit: np.ndarray, bins: int = PIT_BINS) -> tuple[np.ndarray, np.ndarray, float]:
    """Density histogram of PIT values on [0, 1] and the half-width of its sampling band.

    For a calibrated method the count in each of ``bins`` equal bins is binomial,
    ``B(n, 1/bins)``: its density is 1 with standard deviation ``sqrt((1 - p) / (n p))``.
    The band is two of those, the range a calibrated method's bars mostly stay in.

    Parameters
    ----------
    pit : ndarray
        PIT values; non-finite ones are ignored.
    bins : int
        Number of equal bins on [0, 1].

    Returns
    -------
    edges : ndarray
        ``bins + 1`` edges.
    density : ndarray
        Counts over ``n * width``: integrates to 1 (zeros when there is no value).
    band : float
        Two binomial standard deviations of the density (NaN without values).

    Examples
    --------
    >>> edges, density, band = pit_histogram(np.array([0.1, 0.1, 0.6, 0.9]), bins=2)
    >>> density.tolist(), round(band, 3)
    ([1.0, 1.0], 1.0)
    """
    pit = pit[np.isfinite(pit)]
    counts, edges = np.histogram(pit, bins=bins, range=(0.0, 1.0))
    n = counts.sum()
    if n == 0:
        return edges, np.zeros(bins), float("nan")
    density = counts / (n * np.diff(edges))
    p = 1.0 / bins
    return edges, density, float(2.0 * np.sqrt((1.0 - p) / (n * p)))


def bin_mask(values: np.ndarray, lo: float, hi: float, last: bool = False) -> np.ndarray:
    """Whether each value lies in the bin ``[lo, hi)``, or ``[lo, hi]`` for the last bin.

    Examples
    --------
    >>> bin_mask(np.array([0.0, 0.1, 0.2]), 0.1, 0.2).tolist()
    [False, True, False]
    >>> bin_mask(np.array([0.0, 0.1, 0.2]), 0.1, 0.2, last=True).tolist()
    [False, True, True]
    """
    upper = values <= hi if last else values < hi
    return (values >= lo) & upper


def edge_texts(
    lo: float, hi: float, values: np.ndarray | None = None, last: bool = False
) -> tuple[str, str]:
    """The edges of the bin ``[lo, hi)`` (``[lo, hi]`` when ``last``) as short texts
    that tell the truth about ``values``: the bin written with the shown edges holds
    exactly the values the bin holds. Rounded edges would put a galaxy at r = 17.0984 in
    a bin shown as "17.1 ≤ r < 17.84"; here digits are added until no value changes side.
    Without ``values`` the edges are written in full (shortest text of the float).

    Examples
    --------
    >>> values = np.array([17.0984, 17.5, 17.8414])  # all three in the bin below
    >>> edge_texts(17.09838, 17.8416, values)  # "17.1" and "17.84" would leave two out
    ('17.098', '17.842')
    >>> edge_texts(0.1, 0.2, np.array([0.15]))
    ('0.1', '0.2')
    >>> edge_texts(0.1, 0.30000000000000004)
    ('0.1', '0.30000000000000004')
    """
    if values is None:
        return repr(float(lo)), repr(float(hi))
    values = values[np.isfinite(values)]
    inside = bin_mask(values, lo, hi, last)
    for digits in range(3, 18):
        lo_text, hi_text = f"{lo:.{digits}g}", f"{hi:.{digits}g}"
        shown = bin_mask(values, float(lo_text), float(hi_text), last)
        if np.array_equal(shown, inside):
            return lo_text, hi_text
    return repr(float(lo)), repr(float(hi))


def default_methods(methods: list[str]) -> tuple[str | None, str | None]:
    """Methods compared first: CLAP's ensemble and the first baseline present.

    Examples
    --------
    >>> default_methods(["clap", "clap_raw", "softmax"])
    ('clap', 'softmax')
    >>> default_methods(["clap_raw", "clap_recal"])
    ('clap_raw', 'clap_recal')
    """
    if not methods:
        return None, None
    a = "clap" if "clap" in methods else methods[0]
    others = [m for m in methods if m != a]
    baselines = [m for m in others if m in BASELINES]
    b = baselines[0] if baselines else (others[0] if others else a)
    return a, b


def _number(value: Any) -> float:
    """A metric for display: None (an empty bin) becomes NaN."""
    return float("nan") if value is None else float(value)


def _figure(title: str, **options: Any) -> Any:
    """An empty figure of the explorer's size, as wide as its column."""
    return figure(
        title=title, height=PLOT_HEIGHT, sizing_mode="stretch_width", tools=TOOLS, **options
    )


class PitPlot:
    """PIT histogram of one method, with the sampling band of a calibrated method and the
    uniform density; :meth:`update` sends new bars to the same figure.

    Parameters
    ----------
    colour : str
        Colour of the bars (the method's; :meth:`update` changes it).
    """

    def __init__(self, colour: str) -> None:
        self.figure = _figure(
            "PIT",
            x_range=Range1d(0.0, 1.0),
            y_range=Range1d(0.0, 1.0),
            x_axis_label="PIT",
            y_axis_label="density",
        )
        self.band = ColumnDataSource(
            {"x": [0.0, 1.0], "lower": [np.nan] * 2, "upper": [np.nan] * 2}
        )
        self.bars = ColumnDataSource({"left": [], "right": [], "top": []})
        calibrated_band(self.figure, self.band)
        self._bars = self.figure.quad(
            left="left",
            right="right",
            top="top",
            bottom=0.0,
            source=self.bars,
            fill_color=colour,
            fill_alpha=0.7,
            line_color="white",
        )
        self.figure.line(
            [0.0, 1.0],
            [1.0, 1.0],
            color=IDEAL_COLOUR,
            line_dash="dashed",
            line_width=1.5,
            legend_label="uniform (ideal)",
        )
        outside_legend(self.figure)

    def update(self, pit: np.ndarray, title: str, colour: str | None = None) -> None:
        """Show the histogram of ``pit`` under ``title``.

        Parameters
        ----------
        pit : ndarray
            PIT values of the galaxies shown; non-finite ones are ignored.
        title : str
            The figure's new title.
        colour : str, optional
            New colour of the bars (the method's).
        """
        if colour is not None:
            self._bars.glyph.fill_color = colour
        edges, density, band = pit_histogram(pit)
        self.bars.data = {"left": edges[:-1], "right": edges[1:], "top": density}
        self.band.data = {"x": [0.0, 1.0], "lower": [1.0 - band] * 2, "upper": [1.0 + band] * 2}
        # The y range follows the histogram (and its band), from zero.
        top = max(float(density.max(initial=0.0)), 1.0 + band if np.isfinite(band) else 1.0)
        self.figure.y_range.end = 1.05 * top
        self.figure.title.text = title


class CoveragePlot:
    """Observed coverage of central and HPD credible intervals against their nominal
    credibility, and the ideal diagonal; both curves in the method's colour."""

    def __init__(self) -> None:
        self.figure = _figure(
            "Coverage",
            x_range=Range1d(0.0, 1.0),
            y_range=Range1d(0.0, 1.02),
            x_axis_label="nominal credibility",
            y_axis_label="observed coverage",
        )
        self.figure.line(
            [0.0, 1.0],
            [0.0, 1.0],
            color=IDEAL_COLOUR,
            line_dash="dotted",
            line_width=1.5,
            legend_label="ideal",
        )
        self.curves = {}
        self._lines = {}
        for kind, label, dash in COVERAGE_CURVES:
            self.curves[kind] = ColumnDataSource({"x": [], "y": []})
            self._lines[kind] = self.figure.line(
                "x", "y", source=self.curves[kind], line_width=2, line_dash=dash, legend_label=label
            )
        self.legend = outside_legend(self.figure)

    def update(
        self,
        curve: dict[str, Any],
        title: str,
        colour: str = "#0072B2",
        labels: dict[str, str] | None = None,
    ) -> None:
        """Show a method's coverage curves under ``title``.

        Parameters
        ----------
        curve : dict
            ``metrics[m]["coverage_curve"]``: ``levels`` and the observed coverage of
            each kind of interval; missing ones draw nothing.
        title : str
            The figure's new title.
        colour : str
            The method's colour.
        labels : dict, optional
            Legend labels of the curves (``central``, ``hpd``), default their names.
        """
        levels = np.asarray(curve.get("levels", []), dtype=float)
        labels = labels or {}
        names = {kind: label for kind, label, _ in COVERAGE_CURVES}
        for kind, source in self.curves.items():
            observed = np.asarray(curve.get(kind, [np.nan] * len(levels)), dtype=float)
            source.data = {"x": levels, "y": observed}
            self._lines[kind].glyph.line_color = colour
        for item in self.legend.items:
            kind = next((k for k, line in self._lines.items() if line in item.renderers), None)
            if kind is not None:
                item.label = {"value": labels.get(kind, names[kind])}
        self.figure.title.text = title


class BinPlot:
    """A metric per bin for methods A and B: a line with points each, in the methods'
    colours and dashes, named by the legend (outside the plot area)."""

    def __init__(self) -> None:
        self.figure = _figure("")
        # Padding: the points at the first and last bin stay whole.
        self.figure.x_range.range_padding = self.figure.y_range.range_padding = 0.08
        self.sources = []
        self._glyphs = []
        for name in "AB":
            source = ColumnDataSource({"x": [], "y": []})
            line = self.figure.line("x", "y", source=source, line_width=2, legend_label=name)
            points = self.figure.scatter("x", "y", source=source, size=7, legend_label=name)
            self.sources.append(source)
            self._glyphs.append((line, points))
        self.legend = outside_legend(self.figure)

    def update(
        self,
        rows: list[list[dict[str, Any]]],
        metric: str,
        title: str,
        x_label: str,
        y_label: str,
        methods: tuple[str, str] = ("A", "B"),
    ) -> None:
        """Show ``metric`` of the per-bin rows of A and of B at their bins' centres.

        Parameters
        ----------
        rows : list of two lists of dict
            The per-bin tables of ``metrics.json`` (``lo``, ``hi`` and the metrics) of
            method A and of method B.
        metric : str
            Key of the metric drawn.
        title, x_label, y_label : str
            The figure's new title and axis labels.
        methods : tuple of two str
            Methods A and B: the legend's names, the lines' colours and dashes.
        """
        for side, method in enumerate(methods):
            found = identity(method)
            line, points = self._glyphs[side]
            line.glyph.update(line_color=found.colour, line_dash=found.dash)
            points.glyph.update(fill_color=found.colour, line_color=found.colour)
            self.legend.items[side].label = {"value": f"{'AB'[side]}: {found.label}"}
        for source, table in zip(self.sources, rows, strict=True):
            source.data = {
                "x": np.array([0.5 * (r["lo"] + r["hi"]) for r in table], dtype=float),
                "y": np.array([_number(r.get(metric)) for r in table], dtype=float),
            }
        self.figure.title.text = title
        self.figure.xaxis.axis_label = x_label
        self.figure.yaxis.axis_label = y_label


class CalibrationExplorer(pn.viewable.Viewer):
    """Calibration of two methods side by side, overall and within a bin.

    Pick methods A and B; pick a bin (a row of the per-bin table) to restrict the PIT
    histograms and the galaxy table to its galaxies; pick a galaxy to see its images and
    PDFs. Create one per session: it keeps the session's selection, while ``run`` is
    shared and never modified.
    """

    run = param.ClassSelector(class_=RunData, doc="the run shown (shared, read-only)")
    selected_bin = param.Integer(
        default=None, allow_None=True, doc="row of the per-bin table selected, None for all"
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        run = self.run
        options = {method_label(m): m for m in run.methods} if run is not None else {}
        a, b = default_methods(list(options.values()))
        self.method_a = pn.widgets.Select(
            label="Method A", options=options, value=a, css_classes=["ck-method-a"]
        )
        self.method_b = pn.widgets.Select(
            label="Method B", options=options, value=b, css_classes=["ck-method-b"]
        )
        variables = self._bin_variables()
        self.bin_variable = pn.widgets.Select(
            label="Bins of",
            options=variables,
            value=next(iter(variables.values()), None),
            css_classes=["ck-bin-variable"],
            width=200,
        )
        self.bin_metric = pn.widgets.Select(
            label="Metric",
            options=BIN_METRICS,
            value="sigma_mad",
            css_classes=["ck-bin-metric"],
            width=200,
        )
        self.status = pn.pane.Markdown(css_classes=["ck-selection-status"], margin=(0, 10))
        self.hpd_notes = tuple(
            pn.pane.Markdown(
                visible=False,
                css_classes=[f"ck-hpd-note-{side}"],
                styles={"font-size": "90%"},
                sizing_mode="stretch_width",
            )
            for side in "ab"
        )
        # Bin edges as the page writes them, per variable (see edge_texts).
        self._edge_texts: dict[str, list[tuple[str, str]]] = {}
        self.galaxy_view = GalaxyView(run=run)
        # The mask of the selected bin, kept while the selection does not change.
        self._mask_cache: tuple[Any, np.ndarray | None] = (None, None)
        self._layout = self._build()
        if run is not None and run.ok:
            self._bind_url()

    def __panel__(self) -> pn.Column:
        return self._layout

    # ------------------------------------------------------------------ layout

    def _build(self) -> pn.Column:
        alert = problems_alert(self.run) if self.run is not None else None
        if self.run is None or not self.run.ok:
            if alert is None:  # no run given at all
                alert = pn.pane.Alert("No run to show.", alert_type="warning")
            return pn.Column(alert, sizing_mode="stretch_width")
        self.summary_a = self._summary_cards("ck-summary-a")
        self.summary_b = self._summary_cards("ck-summary-b")
        # Figures built once; the updates below send them data.
        a, b = self._methods()
        self._pit_plots = (PitPlot(method_colour(a)), PitPlot(method_colour(b)))
        self._coverage_plots = (CoveragePlot(), CoveragePlot())
        self._bin_plot = BinPlot()
        self._make_tables()
        self._fill_and_watch()
        return self._arrange(alert)

    def _arrange(self, alert: pn.pane.Alert | None) -> pn.Column:
        """The page: both sides, the per-bin plot and table, the galaxies."""
        sides = [
            pn.Column(
                select,
                cards,
                self._plot(self._pit_plots[side].figure),
                self._plot(self._coverage_plots[side].figure),
                self.hpd_notes[side],
                sizing_mode="stretch_width",
            )
            for side, select, cards in (
                (0, self.method_a, self.summary_a),
                (1, self.method_b, self.summary_b),
            )
        ]
        bin_plot = self._plot(self._bin_plot.figure)
        return pn.Column(
            *([alert] if alert is not None else []),
            pn.Row(*sides, sizing_mode="stretch_width"),
            self.bin_heading,
            pn.Row(
                pn.Column(self.bin_variable, self.bin_metric, width=230),
                bin_plot,
                sizing_mode="stretch_width",
            ),
            self.bin_table,
            self._bin_downloads(),
            self.status,
            self._galaxy_downloads(),
            self.galaxy_links,
            pn.Row(self.galaxy_table, self.galaxy_view, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def _make_tables(self) -> None:
        """The per-bin table, its heading and the galaxy table, built once."""
        self.bin_table = pn.widgets.Tabulator(
            self._bin_frame(),
            selectable=1,
            disabled=True,
            show_index=False,
            css_classes=["ck-bin-table"],
            # The bin's exact edges in full; the metrics share the rest of the width.
            widths={"bin": 225, "n": 45},
            # Fixed titles: new titles rebuild every column of the table in the server
            # and the browser (a quarter of a second each); the heading names the variable.
            titles={
                "bin": "bin",
                **{f"{key}_a": f"{label} A" for label, key in BIN_METRICS.items()},
                **{f"{key}_b": f"{label} B" for label, key in BIN_METRICS.items()},
            },
            formatters=self._formatters(),
            header_tooltips=self._bin_tooltips(),
            max_height=360,
            **FIT_WIDTH,
        )
        self.galaxy_table = pn.widgets.Tabulator(
            self._galaxy_frame(),
            pagination="remote",
            page_size=15,
            disabled=True,
            selectable=1,
            show_index=False,
            css_classes=["ck-galaxy-table"],
            # Wide enough for every number in full; the galaxy view takes the rest.
            **(FIT_WIDTH | {"sizing_mode": "fixed", "width": GALAXY_TABLE_WIDTH}),
            # Fixed titles: new titles rebuild every column's definition, a cost each
            # time the methods change; the selects above name A and B.
            titles={
                "z_phot_a": "z_phot A",
                "pit_a": "PIT A",
                "z_phot_b": "z_phot B",
                "pit_b": "PIT B",
                "novelty": "novelty",
            },
            formatters={
                "id": NumberFormatter(format="0"),  # no thousands separators in ids
                **{
                    name: NumberFormatter(format="0.0000")
                    for name in ("z_true", "mag_r", "g_r", "z_phot_a", "pit_a", "z_phot_b", "pit_b")
                },
                "novelty": NumberFormatter(format="0"),
            },
            header_tooltips={
                **tooltips(["z_phot_a", "pit_a"], suffix="_a"),
                **tooltips(["z_phot_b", "pit_b", "novelty"], suffix="_b"),
            },
        )
        self.bin_heading = pn.pane.Markdown(css_classes=["ck-bin-heading"])
        self.galaxy_links = pn.pane.Markdown(css_classes=["ck-galaxy-links"], margin=(0, 10))

    def _fill_and_watch(self) -> None:
        """Every part shows the first methods; then the widgets are watched."""
        self._update_bin_heading()
        self._update_status()
        for side in (0, 1):
            self._update_side(side)
        self._update_bin_plot()
        self.bin_table.param.watch(self._on_bin_row, "selection")
        self.galaxy_table.param.watch(self._on_galaxy_row, "selection")
        self.method_a.param.watch(lambda event: self._on_method(0), "value")
        self.method_b.param.watch(lambda event: self._on_method(1), "value")
        self.bin_variable.param.watch(self._on_bin_variable, "value")
        self.bin_metric.param.watch(lambda event: self._update_bin_plot(), "value")
        # The first galaxy, selected: the page opens with a galaxy to look at.
        if len(self.galaxy_table.value):
            self.galaxy_table.selection = [0]

    @staticmethod
    def _plot(plot: Any) -> pn.pane.Bokeh:
        """A pane of a figure that keeps its models: updates go to its data sources."""
        return pn.pane.Bokeh(plot, sizing_mode="stretch_width", height=PLOT_HEIGHT)

    def _summary_cards(self, css: str) -> pn.Row:
        cards = [
            pn.indicators.Number(
                label=title, format=fmt, font_size="18pt", title_size="10pt", margin=(0, 12)
            )
            for _, title, fmt in SUMMARY_CARDS
        ]
        return pn.Row(*cards, css_classes=[css])

    # ------------------------------------------------------------------ selection

    def _bin_variables(self) -> dict[str, str]:
        """Label -> variable of the per-bin tables ``metrics.json`` holds."""
        if self.run is None or not self.run.ok or not self.run.methods:
            return {}
        tables = self.run.metrics[self.run.methods[0]]
        found = [key[3:] for key in tables if key.startswith("by_")]
        ordered = [v for v in BIN_VARIABLES if v in found] + [
            v for v in found if v not in BIN_VARIABLES
        ]
        return {BIN_VARIABLES.get(v, v): v for v in ordered}

    def _bins(self, variable: str | None) -> list[dict[str, Any]]:
        """Rows of the per-bin table of ``variable`` (the first method's: bins are the
        same for every method of a run)."""
        if variable is None:
            return []
        return self.run.metrics[self.run.methods[0]].get(f"by_{variable}", [])

    def _selected(self) -> tuple[str, float, float, bool] | None:
        """Variable, lo, hi and whether it is the last bin, of the selected bin."""
        bins = self._bins(self.bin_variable.value)
        index = self.selected_bin
        if index is None or not 0 <= index < len(bins):
            return None
        return self.bin_variable.value, bins[index]["lo"], bins[index]["hi"], index == len(bins) - 1

    def _mask(self) -> np.ndarray | None:
        """Which galaxies are in the selected bin; None for all (or a variable the galaxy
        table lacks)."""
        key = self._selected()
        if key is None or key[0] not in self.run.galaxies:
            return None
        if self._mask_cache[0] != key:
            variable, lo, hi, last = key
            self._mask_cache = (key, bin_mask(self.run.galaxies[variable].to_numpy(), lo, hi, last))
        return self._mask_cache[1]

    def _on_bin_row(self, event: param.parameterized.Event) -> None:
        self.selected_bin = event.new[0] if event.new else None

    def _on_bin_variable(self, event: param.parameterized.Event) -> None:
        with pn.io.hold():
            self.bin_table.selection = []  # bin i of another variable is another bin
            self.bin_table.value = self._bin_frame()
            self._update_bin_heading()
            self._update_bin_plot()

    def _on_method(self, side: int) -> None:
        """Method A (side 0) or B changed: its cards and plots, and what shows both."""
        with pn.io.hold():
            self._update_side(side)
            self.bin_table.value = self._bin_frame()  # keeps the selected row (same index)
            self._update_bin_plot()
            self._refresh_galaxies()

    @param.depends("selected_bin", watch=True)
    def _on_selected_bin(self) -> None:
        # Only what shows the selected galaxies: the metrics and curves are of all.
        with pn.io.hold():
            self._update_status()
            for side in (0, 1):
                self._update_pit(side)
                self._update_coverage(side)
            self._refresh_galaxies()

    def _edges(self, variable: str | None) -> list[tuple[str, str]]:
        """The edges of every bin of ``variable`` as the page writes them (exact enough
        for the galaxies of the run: :func:`edge_texts`), computed once per variable."""
        if variable is None:
            return []
        if variable not in self._edge_texts:
            bins = self._bins(variable)
            values = (
                self.run.galaxies[variable].to_numpy() if variable in self.run.galaxies else None
            )
            self._edge_texts[variable] = [
                edge_texts(row["lo"], row["hi"], values, i == len(bins) - 1)
                for i, row in enumerate(bins)
            ]
        return self._edge_texts[variable]

    def _update_status(self) -> None:
        key, mask = self._selected(), self._mask()
        total = len(self.run.galaxies)
        if key is None:
            self.status.object = f"Showing all {total} galaxies."
        elif mask is None:
            self.status.object = (
                f"The galaxy table has no column `{key[0]}`: showing all {total} galaxies."
            )
        else:
            variable, _, _, last = key
            lo, hi = self._edges(variable)[self.selected_bin]
            label = BIN_VARIABLES.get(variable, variable)
            self.status.object = (
                f"Showing {int(mask.sum())} galaxies with "
                f"{lo} ≤ {label} {'≤' if last else '<'} {hi}."
            )

    # ------------------------------------------------------------------ tables

    def _bin_frame(self) -> pd.DataFrame:
        """One row per bin: its range, its galaxies and both methods' metrics."""
        variable = self.bin_variable.value
        bins = self._bins(variable)
        frame = {
            "bin": [
                f"[{lo}, {hi}{']' if i == len(bins) - 1 else ')'}"
                for i, (lo, hi) in enumerate(self._edges(variable))
            ],
            "n": [int(row["n"] or 0) for row in bins],
        }
        for suffix, method in (("a", self.method_a.value), ("b", self.method_b.value)):
            rows = self.run.metrics.get(method, {}).get(f"by_{variable}", [])
            for key in BIN_METRICS.values():
                values = [_number(row.get(key)) for row in rows[: len(bins)]]
                frame[f"{key}_{suffix}"] = values + [np.nan] * (len(bins) - len(values))
        return pd.DataFrame(frame)

    def _formatters(self) -> dict[str, NumberFormatter]:
        return {
            f"{key}_{suffix}": NumberFormatter(format="0.0000")
            for key in BIN_METRICS.values()
            for suffix in "ab"
        }

    def _galaxy_frame(self) -> pd.DataFrame:
        """The selected galaxies with both methods' estimates; indexed by row in
        ``run.galaxies``. Only the selected rows are copied (none when all are shown)."""
        galaxies = self.run.galaxies
        mask = self._mask()
        rows = None if mask is None else np.flatnonzero(mask)
        columns = {name: name for name in ("id", "z_true", "mag_r", "g_r") if name in galaxies}
        for suffix, method in (("a", self.method_a.value), ("b", self.method_b.value)):
            for quantity in ("z_phot", "pit"):
                if f"{method}.{quantity}" in galaxies:
                    columns[f"{quantity}_{suffix}"] = f"{method}.{quantity}"
        # How far the training set is from each galaxy in CLAP's latent space, as a
        # percentile: above 99 its PDF deserves suspicion (clapkit.photoz.novelty).
        if "novelty" in galaxies:
            columns["novelty"] = "novelty"
        data = {
            name: galaxies[source].to_numpy() if rows is None else galaxies[source].to_numpy()[rows]
            for name, source in columns.items()
        }
        index = galaxies.index if rows is None else galaxies.index[rows]
        return pd.DataFrame(data, index=index, copy=False)

    def _refresh_galaxies(self) -> None:
        """New galaxy table; the galaxy shown stays selected if it is still listed, else
        the table's first galaxy is shown (none when the table is empty): the view never
        shows a galaxy outside the selected bin."""
        frame = self._galaxy_frame()
        self.galaxy_table.value = frame
        shown = self.galaxy_view.galaxy_id
        row = self.run.row_of(shown) if shown is not None else None
        position = frame.index.get_indexer([row])[0] if row is not None else -1
        if position < 0 and len(frame):
            position = 0
        self.galaxy_table.selection = [int(position)] if position >= 0 else []
        if not len(frame):
            self.galaxy_view.galaxy_id = None

    def _on_galaxy_row(self, event: param.parameterized.Event) -> None:
        # An emptied selection (a new table) keeps the galaxy shown.
        if event.new:
            galaxy_id = self.galaxy_table.value["id"].iat[event.new[0]]
            self.galaxy_view.galaxy_id = (
                galaxy_id.item() if hasattr(galaxy_id, "item") else galaxy_id
            )

    def _update_bin_heading(self) -> None:
        """The heading of the per-bin table names the variable binned."""
        variable = self.bin_variable.value
        label = BIN_VARIABLES.get(variable, variable or "bin")
        self.bin_heading.object = (
            f"### Metrics per bin of {label} — select a row to look inside that bin"
        )

    # ------------------------------------------------------------------ plots

    def _methods(self) -> tuple[str | None, str | None]:
        return self.method_a.value, self.method_b.value

    def _update_side(self, side: int) -> None:
        """Summary cards, PIT histogram and coverage curves of method A (0) or B (1)."""
        method = self._methods()[side]
        metrics = self.run.metrics.get(method, {})
        summary = metrics.get("summary", {})
        cards = (self.summary_a, self.summary_b)[side].objects
        for card, (key, _, _) in zip(cards, SUMMARY_CARDS, strict=True):
            card.value = _number(summary.get(key))
        self._update_pit(side)
        self._update_coverage(side)
        curve = metrics.get("coverage_curve", {})
        hpd = [v for v in curve.get("hpd", []) if v is not None]
        note = self.hpd_notes[side]
        note.visible = method in NEIGHBOUR_HISTOGRAMS and bool(hpd) and hpd[-1] < LOW_HPD_COVERAGE
        if note.visible:
            note.object = SPIKY_HPD_NOTE.format(label=method_label(method), top=hpd[-1])

    def _update_coverage(self, side: int) -> None:
        """Coverage curves of method A (0) or B (1): stored ones for all galaxies; in a
        bin, the central intervals' coverage of its galaxies from their stored PIT values
        (a central interval holds the truth when the PIT lies inside it). HPD coverage
        needs each galaxy's PDF, which the per-galaxy table does not hold: the curve of
        all galaxies stays, and its legend says so."""
        method = self._methods()[side]
        curve = self.run.metrics.get(method, {}).get("coverage_curve", {})
        mask = self._mask()
        column = f"{method}.pit"
        label, colour = method_label(method), method_colour(method)
        if mask is None or column not in self.run.galaxies or not curve.get("levels"):
            self._coverage_plots[side].update(
                curve, f"Coverage of {label} · all galaxies", colour=colour
            )
            return
        pit = self.run.galaxies[column].to_numpy()[mask]
        pit = pit[np.isfinite(pit)]
        levels = np.asarray(curve["levels"], dtype=float)
        central = coverage_from_pit(pit, levels) if pit.size else np.full(levels.size, np.nan)
        in_bin = {"levels": levels, "central": central, "hpd": curve.get("hpd", [])}
        self._coverage_plots[side].update(
            in_bin,
            f"Coverage of {label} · selected bin (n = {pit.size})",
            colour=colour,
            labels={"central": "central (bin)", "hpd": "HPD (all galaxies)"},
        )

    def _update_pit(self, side: int) -> None:
        """PIT histogram of method A (0) or B (1), of the selected bin's galaxies."""
        method = self._methods()[side]
        column = f"{method}.pit"
        pit = self.run.galaxies[column].to_numpy() if column in self.run.galaxies else np.array([])
        mask = self._mask()
        if mask is not None and pit.size:
            pit = pit[mask]
        n = int(np.isfinite(pit).sum())
        where = "all galaxies" if mask is None else "selected bin"
        self._pit_plots[side].update(
            pit, f"PIT of {method_label(method)} · {where} (n = {n})", method_colour(method)
        )

    def _update_bin_plot(self) -> None:
        a, b = self._methods()
        variable, metric = self.bin_variable.value, self.bin_metric.value
        label = next((k for k, v in BIN_METRICS.items() if v == metric), metric)
        x_label = BIN_VARIABLES.get(variable, variable or "bin")
        rows = [self.run.metrics.get(m, {}).get(f"by_{variable}", []) for m in (a, b)]
        unit = AXIS_UNITS.get(variable, "") if variable else ""
        self._bin_plot.update(
            rows,
            metric,
            f"{label} per bin of {x_label} · A: {method_label(a)} · B: {method_label(b)}",
            f"{x_label} ({unit})" if unit else x_label,
            f"{label} ({AXIS_UNITS[metric]})" if metric in AXIS_UNITS else label,
            methods=(a, b),
        )

    # ------------------------------------------------------------------ URL, downloads

    def _bin_tooltips(self) -> dict[str, str]:
        """Definitions of the per-bin table's metrics, shown on their column headers."""
        keys = list(BIN_METRICS.values())
        return {
            **tooltips(["n"]),
            **tooltips([f"{key}_a" for key in keys], suffix="_a"),
            **tooltips([f"{key}_b" for key in keys], suffix="_b"),
        }

    def _bind_url(self) -> None:
        """The methods, bins, metric and galaxy in the page's URL (see
        :mod:`clapkit_app.urlstate`)."""
        self.url = UrlState(
            [
                choice_field("a", self.method_a, "method"),
                choice_field("b", self.method_b, "method"),
                choice_field("bins", self.bin_variable, "bin variable"),
                UrlField("bin", self._bin_text, self._show_bin, [(self, "selected_bin")]),
                choice_field("metric", self.bin_metric, "metric"),
                UrlField(
                    "galaxy",
                    lambda: _text(self.galaxy_view.galaxy_id),
                    self._show_galaxy,
                    [(self.galaxy_view, "galaxy_id")],
                ),
            ]
        )
        self._layout.insert(0, self.url.message)
        self.galaxy_view.param.watch(lambda event: self._update_links(), "galaxy_id")
        self._update_links()
        self.url.bind()

    def _bin_text(self) -> str | None:
        return None if self.selected_bin is None else str(self.selected_bin)

    def _show_bin(self, text: str) -> str | None:
        bins = self._bins(self.bin_variable.value)
        if not text.isdigit() or int(text) >= len(bins):
            return (
                f"No bin {text!r}: the bins of {self.bin_variable.value} are numbered 0 to "
                f"{len(bins) - 1}."
            )
        self.bin_table.selection = [int(text)]
        return None

    def _show_galaxy(self, text: str) -> str | None:
        galaxy_id = self.run.parse_id(text)
        if galaxy_id is None:
            return unknown_id_message(text, self.run.galaxies["id"].to_numpy(), "in this run")
        self.galaxy_view.galaxy_id = galaxy_id
        frame = self.galaxy_table.value
        position = frame.index.get_indexer([self.run.row_of(galaxy_id)])[0]
        self.galaxy_table.selection = [int(position)] if position >= 0 else []
        return None

    def _update_links(self) -> None:
        galaxy_id = self.galaxy_view.galaxy_id
        pages = {}
        if galaxy_id is not None and self.run.details_row(galaxy_id) is not None:
            pages["neighbours"] = "its neighbours in CLAP's latent space"
        if galaxy_id is not None and translation_has(self.run.root, galaxy_id):
            pages["translation"] = "its translated images"
        self.galaxy_links.object = galaxy_links(galaxy_id, pages)

    def _bin_downloads(self) -> pn.Row:
        return download_buttons(self._bin_table, self._bin_stem, "ck-bin-download")

    def _galaxy_downloads(self) -> pn.Row:
        return pn.Row(
            download_buttons(self._galaxies_table, self._galaxies_stem, "ck-galaxies-download"),
            pn.pane.HTML("PDFs of the galaxy shown:", margin=(8, 4, 0, 20)),
            download_buttons(self._pdfs_table, self._pdfs_stem, "ck-pdfs-download"),
        )

    def _notes(self) -> dict[str, Any]:
        a, b = self._methods()
        key = self._selected()
        selection = "all galaxies" if key is None else self.status.object.rstrip(".")
        return {"RUN": str(self.run.root), "METHOD_A": a, "METHOD_B": b, "SELECTION": selection}

    def _bin_table(self) -> Any:
        frame = self.bin_table.value
        suffixed = {f"{key}_{s}": key for key in BIN_METRICS.values() for s in "ab"}
        units = {name: "" for name in frame.columns if name in suffixed}
        descriptions = {name: text for name, key in suffixed.items() if (text := tooltip(key))}
        notes = {**self._notes(), "BINS": self.bin_variable.value}
        notes.pop("SELECTION")
        return frame_table(frame, units=units, descriptions=descriptions, meta=notes)

    def _bin_stem(self) -> str:
        a, b = self._methods()
        return f"metrics per bin of {self.bin_variable.value} {a} {b}"

    def _galaxies_table(self) -> Any:
        frame = self.galaxy_table.value
        units = {name: "" for name in ("z_true", "z_phot_a", "z_phot_b", "pit_a", "pit_b")}
        units.update({"mag_r": "mag", "g_r": "mag", "novelty": "%"})
        descriptions = {
            **tooltips(["z_phot_a", "pit_a"], suffix="_a"),
            **tooltips(["z_phot_b", "pit_b", "novelty"], suffix="_b"),
        }
        return frame_table(frame, units=units, descriptions=descriptions, meta=self._notes())

    def _galaxies_stem(self) -> str:
        key = self._selected()
        where = "all" if key is None else f"{key[0]} bin {self.selected_bin}"
        return f"galaxies {where}"

    def _pdfs_table(self) -> Any:
        galaxy_id = self.galaxy_view.galaxy_id
        if galaxy_id is None or self.run.row_of(galaxy_id) is None:
            return None
        row = self.run.row_of(galaxy_id)
        meta = {
            "RUN": str(self.run.root),
            "GALAXY": str(galaxy_id),
            "Z_TRUE": float(self.run.galaxies["z_true"].iat[row]),
        }
        return pdf_table(self.run.edges, self.run.pdfs(galaxy_id), meta)

    def _pdfs_stem(self) -> str:
        return f"pdfs galaxy {self.galaxy_view.galaxy_id}"


def _text(value: Any) -> str | None:
    return None if value is None else str(plain_id(value))
