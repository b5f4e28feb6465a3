"""Tables as wide as the page gives them, never wider.

A table sized to its data (Tabulator's ``fit_data_table``) ran past the right edge of
the page whenever the page was narrower than its columns, and the last columns were cut
off. :data:`FIT_WIDTH` makes every column share the table's width (for tables whose
columns all fit, given widths where a column needs them); :data:`WITHIN_WIDTH` keeps
each column as wide as its data and scrolls inside the table's own box when they are
wider than the page (tables of many columns beside a plot).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIT_WIDTH", "WITHIN_WIDTH"]

#: Options of a ``pn.widgets.Tabulator`` whose columns share its container's width; long
#: titles wrap instead of being cut.
FIT_WIDTH: dict[str, Any] = {
    "sizing_mode": "stretch_width",
    "layout": "fit_columns",
    "configuration": {"columnDefaults": {"headerWordWrap": True}},
}
#: Options of a ``pn.widgets.Tabulator`` as wide as its container, its columns as wide as
#: their data (the last one takes what is left), scrolling inside its box when wider.
WITHIN_WIDTH: dict[str, Any] = {"sizing_mode": "stretch_width", "layout": "fit_data_stretch"}
