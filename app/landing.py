"""Landing page of the served app (also its index, ``/``): the run in use and the dashboards.

Serve every page with ``clapkit serve [--run DIR]`` or
``panel serve app/*.py --index landing --args --run DIR``; the run defaults to
``CLAPKIT_RUN`` or ``data/runs/demo``.
"""

import sys

from clapkit_app.landing import Landing
from clapkit_app.page import page, serve
from clapkit_app.store import load_run, run_from_args

if __name__.startswith("bokeh"):
    root = run_from_args(sys.argv)
    serve(page(Landing(run=load_run(root)), "Home", str(root)))
