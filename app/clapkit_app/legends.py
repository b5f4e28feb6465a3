"""Legends beside the plot area, never over the data."""

from __future__ import annotations

from typing import Any

from bokeh.models import Legend

__all__ = ["outside_legend"]


def outside_legend(fig: Any, side: str = "right", font_size: str = "9pt") -> Legend | None:
    """Move ``fig``'s legend out of the plot area to its ``side`` (``"right"``, or
    ``"above"`` in one row for a narrow figure), so that it covers no data.

    Examples
    --------
    >>> from bokeh.plotting import figure
    >>> fig = figure()
    >>> _ = fig.line([0, 1], [0, 1], legend_label="a")
    >>> legend = outside_legend(fig)
    >>> legend in fig.right, legend in fig.center
    (True, False)
    """
    if not fig.legend:
        return None
    legend = fig.legend[0]
    if legend in fig.center:
        fig.center.remove(legend)
    legend.update(label_text_font_size=font_size, spacing=0, padding=4, margin=4)
    if side == "above":
        legend.update(orientation="horizontal", spacing=8)
    fig.add_layout(legend, side)
    return legend
