"""Stellar mass: estimates from each input set, the causal graph, the MI decomposition
and the attribution maps of ``clapkit interpret``.

Serve it with the other dashboards (``clapkit serve --run DIR``), or alone::

    panel serve app/stellar_mass.py --args --run data/runs/demo

The run defaults to ``CLAPKIT_RUN``, else ``data/runs/demo``. It reads what ``clapkit
interpret train|causal|pid|attribute`` stored in ``interpret/``; a run without those
results says which commands make them. In a notebook, show
``clapkit_app.stellar_mass.StellarMass(
data=clapkit_app.stellar_mass_store.load_stellar_mass(DIR))``.
"""

import sys

from clapkit_app.page import DASHBOARDS, page, serve
from clapkit_app.stellar_mass import StellarMass
from clapkit_app.stellar_mass_store import load_stellar_mass
from clapkit_app.store import run_from_args

if __name__.startswith("bokeh"):
    root = run_from_args(sys.argv)
    serve(
        page(
            StellarMass(data=load_stellar_mass(root)),
            DASHBOARDS["stellar_mass"],
            str(root),
            "stellar_mass",
        )
    )
