"""Tables as wide as the page gives them, never wider: every column in view."""

from __future__ import annotations

from typing import Any

__all__ = ["FIT_WIDTH"]

#: Options of a ``pn.widgets.Tabulator`` that fits its container's width: the columns
#: share the width (``fit_columns``) and long titles wrap instead of being cut. A table
#: sized to its data ran past the right edge of the page when the page was narrower.
FIT_WIDTH: dict[str, Any] = {
    "sizing_mode": "stretch_width",
    "layout": "fit_columns",
    "configuration": {"columnDefaults": {"headerWordWrap": True}},
}
