"""Translation compare: translated galaxy images against the real ones, per model.

Serve it with the other dashboards (``clapkit serve --run DIR``), or alone::

    panel serve app/translation.py --args --run data/runs/demo

The run defaults to ``CLAPKIT_RUN``, else ``data/runs/demo``. It reads what
``clapkit translate evaluate`` stored in ``translate/<task>/`` and the images of the
galaxy shown; a run without an evaluated translation says which commands make one. In a
notebook, show ``clapkit_app.translation.TranslationCompare(
data=clapkit_app.translation_store.load_translation(DIR))``.
"""

import sys

from clapkit_app.page import DASHBOARDS, page, serve
from clapkit_app.store import run_from_args
from clapkit_app.translation import TranslationCompare
from clapkit_app.translation_store import load_translation

if __name__.startswith("bokeh"):
    root = run_from_args(sys.argv)
    serve(
        page(
            TranslationCompare(data=load_translation(root)),
            DASHBOARDS["translation"],
            str(root),
            "translation",
        )
    )
