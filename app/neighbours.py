"""Neighbour browser: CLAP's latent space and the training neighbours behind each PDF.

Serve it with the other dashboards (``clapkit serve --run DIR``), or alone::

    panel serve app/neighbours.py --args --run data/runs/demo

The run defaults to ``CLAPKIT_RUN``, else ``data/runs/demo``. It needs ``clap/knn.h5``
(``clapkit predict`` after training CLAP) and ``galaxies.h5`` (``clapkit evaluate``);
without them the page says which command makes them. In a notebook, show
``clapkit_app.neighbours.NeighbourBrowser(run=clapkit_app.store.load_run(DIR))``.
"""

import sys

from clapkit_app.neighbours import NeighbourBrowser
from clapkit_app.page import DASHBOARDS, page, serve
from clapkit_app.store import load_run, run_from_args

if __name__.startswith("bokeh"):
    root = run_from_args(sys.argv)
    serve(
        page(
            NeighbourBrowser(run=load_run(root)), DASHBOARDS["neighbours"], str(root), "neighbours"
        )
    )
