"""Calibration explorer: two methods' PDFs compared, overall and within any bin.

Serve it with the other dashboards (``clapkit serve --run DIR``), or alone::

    panel serve app/calibration.py --args --run data/runs/demo

The run defaults to ``CLAPKIT_RUN``, else ``data/runs/demo``. It reads what
``clapkit evaluate`` stored in the run (``metrics.json``, ``galaxies.h5``) and the PDFs
and images of the galaxy picked; a run that lacks something shows what to run instead.
"""

import sys

from clapkit_app.calibration import CalibrationExplorer
from clapkit_app.page import DASHBOARDS, page, serve
from clapkit_app.store import load_run, run_from_args

if __name__.startswith("bokeh"):
    root = run_from_args(sys.argv)
    serve(
        page(
            CalibrationExplorer(run=load_run(root)),
            DASHBOARDS["calibration"],
            str(root),
            "calibration",
        )
    )
