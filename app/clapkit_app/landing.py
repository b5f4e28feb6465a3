"""The landing page: the run in use, what is in it, and links to the dashboards."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn
import param

from clapkit.evaluation import TABLE_COLUMNS
from clapkit.metrics.definitions import PHOTOZ
from clapkit_app.downloads import download_buttons, frame_table
from clapkit_app.page import DASHBOARDS, problems_alert
from clapkit_app.store import RunData, method_label

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
                )
            )
            items.append(
                download_buttons(
                    lambda: _metrics_table(run), lambda: "metrics", "ck-metrics-download"
                )
            )
        if run.calibration_figure is not None:
            items.append(pn.pane.PNG(str(run.calibration_figure), width=900))
        return pn.Column(*items, sizing_mode="stretch_width")


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
