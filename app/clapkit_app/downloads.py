"""CSV and FITS buttons for the tables of the dashboards.

A button builds its file when clicked, from what the page shows at that moment (the
methods, the bin, the galaxy chosen): the page gives a function that returns an astropy
Table (:func:`clapkit.tables_io.make_table`, with units and the selection as notes), and
:func:`clapkit.tables_io.table_bytes` makes the bytes. Nothing is computed before a click.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
from astropy.table import Table

from clapkit.tables_io import FORMATS, make_table, table_bytes


def download_buttons(
    table: Callable[[], Table | None], stem: Callable[[], str], css_class: str
) -> pn.Row:
    """A row of a CSV and a FITS download button of ``table()``.

    Parameters
    ----------
    table : callable
        Returns the table of the current selection (None: nothing to download; the
        file then says so in its notes).
    stem : callable
        Returns the file name without suffix (made safe here).
    css_class : str
        CSS class of the row; the buttons get ``<css_class>-csv`` and ``-fits``.
    """
    buttons = []
    for format, suffix in FORMATS.items():
        button = pn.widgets.FileDownload(
            label=format.upper(),
            filename=f"table{suffix}",
            width=70,
            height=32,
            margin=(2, 4),
            css_classes=[f"{css_class}-{format}"],
        )
        button.callback = _callback(button, table, stem, format, suffix)
        buttons.append(button)
    return pn.Row(
        pn.pane.HTML("Download", margin=(8, 4, 0, 10), styles={"font-size": "90%"}),
        *buttons,
        css_classes=[css_class],
    )


def _callback(
    button: pn.widgets.FileDownload,
    table: Callable[[], Table | None],
    stem: Callable[[], str],
    format: str,
    suffix: str,
) -> Callable[[], io.BytesIO]:
    def make() -> io.BytesIO:
        found = table()
        if found is None:
            found = make_table({}, meta={"NOTE": "nothing selected"})
        # Read by FileDownload after this returns: the name follows the selection.
        button.filename = safe_name(stem()) + suffix
        return io.BytesIO(table_bytes(found, format, name=_hdu_name(stem())))

    return make


def safe_name(text: str) -> str:
    """``text`` as a file name: letters, digits, ``-``, ``_`` and ``.`` only.

    Examples
    --------
    >>> safe_name("galaxies of clap · bin 2 [0.1, 0.2)")
    'galaxies_of_clap_bin_2_0.1_0.2'
    """
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9._-]", "_", text)).strip("_") or "table"


def frame_table(
    frame: pd.DataFrame,
    units: dict[str, str] | None = None,
    descriptions: dict[str, str] | None = None,
    meta: dict[str, Any] | None = None,
) -> Table:
    """A table of a page's DataFrame; units and descriptions of columns it lacks are
    dropped (a column some runs do not have).

    Parameters
    ----------
    frame : DataFrame
        What the page shows (its index is left out).
    units, descriptions : dict, optional
        Per column, as :func:`clapkit.tables_io.make_table` takes them.
    meta : dict, optional
        Notes: the run, the selection.

    Examples
    --------
    >>> t = frame_table(pd.DataFrame({"z": [0.1]}), units={"z": "", "mag": "mag"})
    >>> t.colnames
    ['z']
    """
    columns = {str(name): frame[name].to_numpy() for name in frame.columns}
    return make_table(
        columns,
        units={k: v for k, v in (units or {}).items() if k in columns},
        descriptions={k: v for k, v in (descriptions or {}).items() if k in columns},
        meta=meta,
    )


def pdf_table(edges: np.ndarray, pdfs: dict[str, np.ndarray], meta: dict[str, Any]) -> Table:
    """One row per redshift bin: its edges and the probability of every method.

    Examples
    --------
    >>> t = pdf_table(np.array([0.0, 0.5, 1.0]), {"clap": np.array([0.25, 0.75])}, {})
    >>> t["z_lo"].tolist(), t["clap"].tolist()
    ([0.0, 0.5], [0.25, 0.75])
    """
    columns = {"z_lo": edges[:-1], "z_hi": edges[1:], **pdfs}
    descriptions = {
        "z_lo": "lower edge of the redshift bin",
        "z_hi": "upper edge of the redshift bin",
        **{m: f"probability of the bin, method {m}" for m in pdfs},
    }
    return make_table(columns, units={"z_lo": "", "z_hi": ""}, descriptions=descriptions, meta=meta)


def _hdu_name(stem: str) -> str:
    """A FITS extension name: the first word of the stem, upper case."""
    word = re.split(r"[^A-Za-z0-9]", stem.strip())[0]
    return (word or "TABLE").upper()[:16]
