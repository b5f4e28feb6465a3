"""Landing page: the run directory in use and the metrics the library stored in it.

Serve with ``panel serve app/landing.py --args --run DIR`` (default ``data/runs/demo``,
or the ``CLAPKIT_RUN`` environment variable). It reads ``metrics.json`` and
``calibration.png`` and computes nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import panel as pn
import param

from clapkit.evaluation import TABLE_COLUMNS
from clapkit.runs import RunDir

DEFAULT_RUN = Path("data") / "runs" / "demo"


def run_from_args(argv: list[str]) -> Path:
    """The run directory from ``--run DIR``, else ``CLAPKIT_RUN``, else the demo run."""
    if "--run" in argv and argv.index("--run") + 1 < len(argv):
        return Path(argv[argv.index("--run") + 1])
    return Path(os.environ.get("CLAPKIT_RUN", DEFAULT_RUN))


@pn.cache
def load_metrics(run_root: str) -> dict | None:
    """The run's ``metrics.json``, read once per process and shared by sessions."""
    try:
        return RunDir(run_root).read_json("metrics.json")
    except OSError:
        return None


class Landing(pn.viewable.Viewer):
    """The run in use, its methods and their headline metrics."""

    run_root = param.String(doc="run directory shown")

    def __panel__(self) -> pn.template.BaseTemplate:
        template = pn.template.FastListTemplate(title="clapkit", main_max_width="1100px")
        template.main.append(pn.pane.Markdown(f"**Run directory:** `{self.run_root}`"))
        metrics = load_metrics(self.run_root)
        if metrics is None:
            template.main.append(
                pn.pane.Alert(
                    f"No `metrics.json` in `{self.run_root}`. Build the demo run with "
                    "`make demo` (or `clapkit demo`), or pass `--args --run DIR`.",
                    alert_type="warning",
                )
            )
            return template
        rows = {
            method: {title: result["summary"][key] for key, title, _ in TABLE_COLUMNS}
            for method, result in metrics["methods"].items()
        }
        table = pd.DataFrame.from_dict(rows, orient="index").rename_axis("method").reset_index()
        template.main.append(pn.pane.DataFrame(table, index=False, sizing_mode="stretch_width"))
        figure = Path(self.run_root) / "calibration.png"
        if figure.is_file():
            template.main.append(pn.pane.PNG(str(figure), sizing_mode="scale_width"))
        return template


if __name__.startswith("bokeh"):
    Landing(run_root=str(run_from_args(sys.argv))).servable()
