"""Matplotlib figures of calibration, for papers and the command line.

The dashboards draw their own interactive versions; these are static figures that the
demo and notebooks save next to the numbers. Figures are built with the object API
(``matplotlib.figure.Figure``), never pyplot, so the library leaves the user's backend
alone and works without a display.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from clapkit.metrics import PDFs, coverage


def plot_calibration(pdfs_by_method: Mapping[str, PDFs], n_pit_bins: int = 20) -> Figure:
    """PIT histogram and coverage curves (central and HPD) of one or more methods.

    The PIT panel shades the ±2σ band a uniform histogram of that many galaxies fills by
    chance; the coverage panel plots observed against nominal credibility, so calibrated
    PDFs lie on the diagonal and over-confident ones below it.

    Examples
    --------
    >>> pdfs = PDFs.from_gaussian([0.2] * 50, [0.05] * 50, np.linspace(0, 0.4, 81), z_true=[0.2] * 50)
    >>> fig = plot_calibration({"toy": pdfs})
    >>> len(fig.axes)
    2
    """
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_pit, ax_cov = fig.subplots(1, 2)
    levels = np.linspace(0.02, 0.98, 25)
    n_max = 0
    for name, pdfs in pdfs_by_method.items():
        pit_values = pdfs.pit()
        n_max = max(n_max, pdfs.n)
        ax_pit.hist(
            pit_values,
            bins=n_pit_bins,
            range=(0, 1),
            density=True,
            histtype="step",
            lw=2,
            label=name,
        )
        central = coverage(pdfs.p, pdfs.edges, pdfs.z_true, levels, kind="central")
        hpd = coverage(pdfs.p, pdfs.edges, pdfs.z_true, levels, kind="hpd")
        (line,) = ax_cov.plot(levels, central, lw=2, label=f"{name} (central)")
        ax_cov.plot(levels, hpd, lw=1.5, ls="--", color=line.get_color(), label=f"{name} (HPD)")
    if n_max:
        # Counts per bin are binomial: relative std sqrt((1 - 1/n_bins) / (n / n_bins)).
        band = 2 * np.sqrt((1 - 1 / n_pit_bins) * n_pit_bins / n_max)
        ax_pit.axhspan(1 - band, 1 + band, color="0.85", zorder=0, label="uniform ±2σ")
    ax_pit.axhline(1.0, color="k", lw=1)
    ax_pit.set(xlabel="PIT", ylabel="density", title="PIT histogram", xlim=(0, 1))
    ax_cov.plot([0, 1], [0, 1], color="k", lw=1)
    ax_cov.set(
        xlabel="nominal credibility",
        ylabel="observed coverage",
        title="Coverage",
        xlim=(0, 1),
        ylim=(0, 1),
        aspect="equal",
    )
    ax_pit.legend(fontsize="small")
    ax_cov.legend(fontsize="small")
    return fig
