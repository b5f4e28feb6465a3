"""The landing page: the run in use, what is in it, and links to the dashboards."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import Range1d
from bokeh.plotting import figure

from clapkit.evaluation import TABLE_COLUMNS
from clapkit.metrics.definitions import PHOTOZ
from clapkit_app.calibration import PLOT_HEIGHT, TOOLS, pit_histogram
from clapkit_app.downloads import download_buttons, frame_table
from clapkit_app.legends import outside_legend
from clapkit_app.methods import IDEAL_COLOUR, LANDING_METHODS, LANDING_WHY, identity
from clapkit_app.page import DASHBOARDS, problems_alert
from clapkit_app.store import RunData, method_label
from clapkit_app.tables import WITHIN_WIDTH

#: One line on what each dashboard is for.
DESCRIPTIONS = {
    "calibration": "PIT histograms, coverage curves and metrics of every method, overall "
    "and in bins of redshift, magnitude and colour; the galaxies of a bin.",
    "neighbours": "CLAP's latent space in 2-D; a galaxy's nearest neighbours, their "
    "images and redshifts, and the local PIT histogram that chose k.",
    "translation": "Translated galaxy images against the real ones, per model: bands, "
    "residuals and composites, noise power spectra, morphology and photo-z over the test "
    "set, and every model's redshift information.",
    "stellar_mass": "Stellar mass from each input set against the truth; the causal graph "
    "of the local tests and PC beside the true graph; the MI decomposition of input pairs "
    "per galaxy type and per galaxy; attribution maps per band with the randomisation "
    "check.",
}


class Landing(pn.viewable.Viewer):
    """The run directory in use, its methods with their headline metrics, the dashboards."""

    run = param.ClassSelector(class_=RunData, doc="the run shown")

    def __panel__(self) -> pn.Column:
        run = self.run
        items: list = [pn.pane.Markdown(f"## Run `{run.root}`", css_classes=["ck-run"])]
        alert = problems_alert(run)
        if alert is not None:
            items.append(alert)
        links = "\n".join(
            f"- **[{title}](./{path})** — {DESCRIPTIONS[path]}"
            for path, title in DASHBOARDS.items()
        )
        items.append(pn.pane.Markdown(f"### Dashboards\n{links}", css_classes=["ck-dashboards"]))
        if run.metrics:
            rows = {
                method_label(m): {
                    title: run.metrics[m]["summary"][key] for key, title, _ in TABLE_COLUMNS
                }
                for m in run.methods
            }
            table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")
            items.append(pn.pane.Markdown("### Methods on the held-out galaxies"))
            items.append(
                pn.widgets.Tabulator(
                    table.reset_index(),
                    disabled=True,
                    show_index=False,
                    formatters={title: _number(fmt) for _, title, fmt in TABLE_COLUMNS},
                    header_tooltips={
                        title: PHOTOZ[key].tooltip()
                        for key, title, _ in TABLE_COLUMNS
                        if key in PHOTOZ
                    },
                    css_classes=["ck-metrics"],
                    **WITHIN_WIDTH,
                )
            )
            items.append(
                download_buttons(
                    lambda: _metrics_table(run), lambda: "metrics", "ck-metrics-download"
                )
            )
        shown = landing_methods(run)
        if shown:
            names = ", ".join(method_label(m) for m in shown)
            items.append(pn.pane.Markdown("### Calibration at a glance"))
            items.append(
                pn.pane.Markdown(
                    f"These plots show {len(shown)} of the run's {len(run.methods)} methods "
                    f"({names}): {LANDING_WHY}",
                    css_classes=["ck-landing-why"],
                )
            )
            items.append(
                pn.Row(
                    _pane(pit_figure(run, shown), "ck-landing-pit"),
                    _pane(coverage_figure(run, shown), "ck-landing-coverage"),
                    sizing_mode="stretch_width",
                )
            )
        return pn.Column(*items, sizing_mode="stretch_width")


def landing_methods(run: RunData) -> list[str]:
    """The methods the landing plots draw: those of :data:`LANDING_METHODS` the run has
    evaluated (with a PIT column), in the dashboards' order."""
    if not run.ok:
        return []
    return [m for m in LANDING_METHODS if m in run.methods and f"{m}.pit" in run.galaxies]


def pit_figure(run: RunData, methods: list[str]) -> Any:
    """PIT histograms of ``methods`` (stored PIT values) as step lines, with the ±2σ
    band of a calibrated method of that many galaxies and the uniform density."""
    fig = figure(
        title="PIT histograms · all galaxies",
        height=PLOT_HEIGHT + 40,
        sizing_mode="stretch_width",
        tools=TOOLS,
        x_range=Range1d(0.0, 1.0),
        x_axis_label="PIT",
        y_axis_label="density",
    )
    top = 1.0
    for method in methods:
        pit = run.galaxies[f"{method}.pit"].to_numpy()
        edges, density, band = pit_histogram(pit)
        if method == methods[0] and np.isfinite(band):
            fig.varea(
                x=[0.0, 1.0],
                y1=[1.0 - band] * 2,
                y2=[1.0 + band] * 2,
                color="gray",
                alpha=0.25,
                legend_label="±2σ of a calibrated method",
            )
        found = identity(method)
        fig.step(
            x=edges,
            y=np.append(density, density[-1]),
            mode="after",
            line_width=2,
            color=found.colour,
            line_dash=found.dash,
            legend_label=found.label,
        )
        top = max(top, float(density.max(initial=0.0)))
    fig.line([0.0, 1.0], [1.0, 1.0], color=IDEAL_COLOUR, line_dash="dotted", legend_label="uniform")
    fig.y_range.start = 0.0
    outside_legend(fig)
    return fig


def coverage_figure(run: RunData, methods: list[str]) -> Any:
    """Observed coverage of the central credible intervals of ``methods`` (stored curves)
    against their credibility, with the ideal diagonal."""
    fig = figure(
        title="Coverage of central intervals · all galaxies",
        height=PLOT_HEIGHT + 40,
        sizing_mode="stretch_width",
        tools=TOOLS,
        x_range=Range1d(0.0, 1.0),
        y_range=Range1d(0.0, 1.02),
        x_axis_label="nominal credibility",
        y_axis_label="observed coverage",
    )
    for method in methods:
        curve = run.metrics[method].get("coverage_curve", {})
        found = identity(method)
        fig.line(
            np.asarray(curve.get("levels", []), dtype=float),
            np.asarray(curve.get("central", []), dtype=float),
            line_width=2,
            color=found.colour,
            line_dash=found.dash,
            legend_label=found.label,
        )
    fig.line([0.0, 1.0], [0.0, 1.0], color=IDEAL_COLOUR, line_dash="dotted", legend_label="ideal")
    outside_legend(fig)
    return fig


def _pane(fig: Any, css_class: str) -> pn.pane.Bokeh:
    fig.css_classes = [css_class]
    return pn.pane.Bokeh(fig, css_classes=[css_class], sizing_mode="stretch_width")


def _number(fmt: str) -> dict:
    """A Tabulator number formatter matching a Python format's precision."""
    digits = int(fmt.split(".")[1][0]) if "." in fmt else 0
    return {"type": "money", "precision": digits, "thousand": ""}


def _metrics_table(run: RunData) -> Any:
    """Every method's summary metrics, one row per method (its key, not its label)."""
    columns: dict[str, list] = {"method": list(run.methods)}
    for key, _title, _fmt in TABLE_COLUMNS:
        columns[key] = [run.metrics[m]["summary"].get(key) for m in run.methods]
    frame = pd.DataFrame(columns)
    units = {key: item.unit for key, item in PHOTOZ.items()}
    descriptions = {key: item.tooltip() for key, item in PHOTOZ.items()}
    return frame_table(frame, units=units, descriptions=descriptions, meta={"RUN": str(run.root)})
