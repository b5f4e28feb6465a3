"""One galaxy up close: its redshift PDF by every method, and CLAP's neighbours.

The neighbours are the training galaxies CLAP's adaptive KNN chose in the latent space
(``clap/knn.h5``, :func:`~clapkit.photoz.details.read_clap_details`); the histogram of
their spectroscopic redshifts is CLAP's raw PDF, before recalibration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from clapkit.errors import ValidationError
from clapkit.plots.style import finish, new_figure, print_style

#: Series name of the neighbours' histogram in the figure's table.
NEIGHBOURS = "neighbours"


def plot_galaxy(
    pdfs_by_method: Mapping[str, ArrayLike],
    edges: ArrayLike,
    *,
    z_true: float | None = None,
    neighbour_z: ArrayLike | None = None,
    galaxy_id: Any = None,
    width: str | float = "single",
) -> tuple[Figure, Table]:
    """A galaxy's PDFs across methods and, when given, its neighbours' redshifts.

    Parameters
    ----------
    pdfs_by_method : mapping of str to array, shape (B,)
        Probabilities per bin of this galaxy, per method (each row sums to 1).
    edges : array, shape (B + 1,)
        The redshift bin edges.
    z_true : float, optional
        The spectroscopic redshift (a vertical line).
    neighbour_z : array, optional
        Redshifts of CLAP's chosen neighbours: a second panel with their histogram on
        ``edges``, over CLAP's PDF.
    galaxy_id : optional
        Named in the title and the table.
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        The PDF panel, then the neighbours' panel (if ``neighbour_z``).
    table : Table
        ``series`` (a method, or ``neighbours``), ``z_lo``, ``z_hi``, ``density``
        (probability per unit redshift, the plotted curve), ``galaxy_id`` and
        ``z_true``; ``table.meta`` holds those and ``n_neighbours``.

    Examples
    --------
    >>> edges = np.linspace(0, 0.4, 5)
    >>> fig, table = plot_galaxy({"a": [0.1, 0.6, 0.3, 0.0]}, edges, z_true=0.15)
    >>> float(np.sum((table["z_hi"] - table["z_lo"]) * table["density"]))
    1.0
    """
    edges = np.asarray(edges, dtype=float)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise ValidationError("edges must be an increasing 1-d array of at least 2 values")
    if not pdfs_by_method:
        raise ValidationError("no PDFs to plot; give at least one method")
    widths = np.diff(edges)
    series: dict[str, np.ndarray] = {}
    for name, p in pdfs_by_method.items():
        p = np.asarray(p, dtype=float)
        if p.shape != widths.shape:
            raise ValidationError(
                f"the PDF of {name!r} has shape {p.shape}; the edges give {widths.size} bins"
            )
        series[name] = p / widths
    neighbours = None if neighbour_z is None else np.asarray(neighbour_z, dtype=float)
    if neighbours is not None:
        if neighbours.size == 0:
            raise ValidationError("neighbour_z is empty; give the neighbours' redshifts")
        counts, _ = np.histogram(neighbours, bins=edges)
        series[NEIGHBOURS] = counts / (neighbours.size * widths)
    with print_style():
        fig = new_figure(width, aspect=0.75 if neighbours is None else 1.1)
        axes = np.atleast_1d(fig.subplots(1 if neighbours is None else 2, 1, sharex=True))
        for i, name in enumerate(pdfs_by_method):
            axes[0].stairs(series[name], edges, color=f"C{i % 10}", label=name)
        if neighbours is not None:
            ax = axes[1]
            ax.stairs(
                series[NEIGHBOURS],
                edges,
                fill=True,
                color="0.75",
                label=f"{neighbours.size} neighbours",
            )
            clap = next((name for name in pdfs_by_method if name.startswith("clap")), None)
            if clap is not None:
                ax.stairs(series[clap], edges, color="C0", label=clap)
            ax.set_ylabel(r"$p(z)$")
            ax.legend(loc="upper right")
        for ax in axes:
            if z_true is not None:
                ax.axvline(z_true, color="k", ls=":", lw=0.8)
            ax.set_xlim(edges[0], edges[-1])
            ax.set_ylim(bottom=0)
        axes[0].set_ylabel(r"$p(z)$")
        axes[0].legend(loc="upper right", ncols=2 if len(pdfs_by_method) > 4 else 1)
        axes[-1].set_xlabel("redshift")
        if galaxy_id is not None:
            title = f"galaxy {galaxy_id}"
            if z_true is not None:
                title += f", $z_\\mathrm{{spec}}$ = {z_true:.3f}"
            axes[0].set_title(title)
        finish(fig)
    rows = [
        {"series": name, "z_lo": edges[b], "z_hi": edges[b + 1], "density": values[b]}
        for name, values in series.items()
        for b in range(widths.size)
    ]
    table = Table(rows=rows)
    # Repeated on every row, so the CSV stays plain (no comment lines to skip).
    table["galaxy_id"] = [galaxy_id if galaxy_id is not None else ""] * len(table)
    table["z_true"] = np.full(len(table), np.nan if z_true is None else z_true)
    table.meta.update(
        galaxy_id=galaxy_id,
        z_true=z_true,
        n_neighbours=0 if neighbours is None else int(neighbours.size),
    )
    return fig, table
