"""The frame of every served page: a template with the run in use and links to the
other dashboards. The dashboards themselves are plain ``Viewer`` objects, so the same
object shows inline in a notebook and inside this frame when served."""

from __future__ import annotations

from typing import Any

import panel as pn
import panel.io.resources

from clapkit_app.keyboard import table_keys


def _typeset_no_tex() -> None:
    """Leave MathJax (bokeh-mathjax.min.js, 1.8 MB) out of every served page.

    Panel adds it to any page holding an HTML or Markdown pane, in case the text holds
    TeX; no text of these dashboards does (units and symbols are Unicode). Without it
    the browser has 1.8 MB less to parse on every first load, and the panes show their
    text as it is (Panel's HTML view skips typesetting when MathJax is absent). Bokeh's
    own test for models that need MathJax (``MathText``) still adds it where needed.
    Panel offers no setting for this; should the private function move, nothing breaks
    but the saving (``tests/app/test_serving.py`` notices).
    """
    if hasattr(panel.io.resources, "_panel_use_mathjax"):
        panel.io.resources._panel_use_mathjax = lambda roots: False


_typeset_no_tex()

#: URL path and title of every dashboard, in the order of the navigation.
DASHBOARDS = {
    "calibration": "Calibration explorer",
    "neighbours": "Neighbour browser",
    "translation": "Translation compare",
    "stellar_mass": "Stellar mass",
}


def problems_alert(run: Any) -> pn.pane.Alert | None:
    """A warning listing what the run lacks and how to make it, or None.

    ``run`` is what a store read (``RunData``, ``TranslationData``,
    ``StellarMassData``): its ``problems``.
    """
    if not run.problems:
        return None
    text = "\n".join(f"- {problem}" for problem in run.problems)
    return pn.pane.Alert(text, alert_type="warning", sizing_mode="stretch_width")


def navigation(current: str | None = None) -> pn.pane.Markdown:
    """Links to the landing page and every dashboard (the current one in bold)."""
    links = ["[Home](./)"]
    for path, title in DASHBOARDS.items():
        links.append(f"**{title}**" if path == current else f"[{title}](./{path})")
    return pn.pane.Markdown("\n\n".join(links))


def page(content, title: str, run_root: str, current: str | None = None):
    """``content`` in the page template of the served app.

    Parameters
    ----------
    content : Viewable
        The dashboard.
    title : str
        Browser tab and header title.
    run_root : str
        Shown in the sidebar.
    current : str, optional
        URL path of this dashboard, highlighted in the navigation.
    """
    # Bootstrap rather than Fast: the Fast design fetches its font from Google, which a
    # machine without internet reports as a console error on every page.
    template = pn.template.BootstrapTemplate(
        title=f"clapkit · {title}",
        sidebar=[navigation(current), pn.pane.Markdown(f"**Run:** `{run_root}`")],
        sidebar_width=220,
        main_max_width="1500px",
    )
    template.main.append(content)
    # Arrow keys move the selected row of any table (clapkit_app.keyboard).
    template.main.append(table_keys())
    return template


def serve(template: Any, document: Any = None) -> None:
    """Add ``template`` (from :func:`page`) to the document of this server session.

    The template adds its areas to the document one root at a time, and Bokeh re-indexes
    every model of the document after each (a third of the time the server spends on a
    session of a large page). With the document's index frozen while the template adds
    itself, the models are indexed once, when it is done; the document is the same.

    Parameters
    ----------
    template : BaseTemplate
        The page.
    document : bokeh.document.Document, optional
        Where to add it; default the session's (``pn.state.curdoc``). Outside a server
        session this does what ``template.servable()`` does.
    """
    document = document if document is not None else pn.state.curdoc
    if document is None or (document is pn.state.curdoc and document.session_context is None):
        template.servable()
        return
    with document.models.freeze():
        template.server_doc(document, location=True)
