"""Publication-ready matplotlib figures of every pillar, for papers and notebooks.

Every ``plot_*`` function takes data already in memory (PDFs, per-bin tables, arrays, a
causal graph) and returns ``(figure, table)``: a :class:`matplotlib.figure.Figure` one or
two journal columns wide (``width="single"`` or ``"double"``, see
:mod:`clapkit.plots.style`) and an :class:`astropy.table.Table` of exactly the numbers it
draws, one row per bar, point or curve sample. :func:`save_figure` writes both (each
format, then ``<name>.csv``). :func:`figures_from_run` draws every figure a run directory
has the data for; :func:`write_figures` is ``clapkit figures``.

Figures are built with the object API, never pyplot, so the library leaves the user's
backend alone and needs no display. The names below load their module when first used,
so ``clapkit --help`` does not wait for matplotlib. Modules, one per pillar:

- :mod:`~clapkit.plots.calibration`: PIT histograms, coverage curves, calibration per bin;
- :mod:`~clapkit.plots.neighbours`: one galaxy's PDFs and CLAP's neighbours;
- :mod:`~clapkit.plots.translation`: stamps side by side, noise power spectra;
- :mod:`~clapkit.plots.stellar_mass`: mass against truth, the causal graphs, MI bars;
- :mod:`~clapkit.plots.style`: journal widths, print fonts, :func:`save_figure`;
- :mod:`~clapkit.plots.from_run`: the figures of a run directory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clapkit.plots.calibration import (
        coverage_curve,
        plot_calibration,
        plot_calibration_by_bin,
        plot_coverage_curves,
        plot_pit_histograms,
    )
    from clapkit.plots.from_run import figures_from_run, plan_figures, write_figures
    from clapkit.plots.neighbours import plot_galaxy
    from clapkit.plots.stellar_mass import (
        plot_causal_graph,
        plot_mass_vs_truth,
        plot_mi_bars,
        plot_pc_graph,
    )
    from clapkit.plots.style import WIDTHS, save_figure
    from clapkit.plots.translation import plot_noise_spectra, plot_translation_grid

__all__ = [
    "WIDTHS",
    "coverage_curve",
    "figures_from_run",
    "plan_figures",
    "plot_calibration",
    "plot_calibration_by_bin",
    "plot_causal_graph",
    "plot_coverage_curves",
    "plot_galaxy",
    "plot_mass_vs_truth",
    "plot_mi_bars",
    "plot_noise_spectra",
    "plot_pc_graph",
    "plot_pit_histograms",
    "plot_translation_grid",
    "save_figure",
    "write_figures",
]

#: Module of each public name.
_MODULES = {
    "WIDTHS": "style",
    "save_figure": "style",
    "coverage_curve": "calibration",
    "plot_calibration": "calibration",
    "plot_calibration_by_bin": "calibration",
    "plot_coverage_curves": "calibration",
    "plot_pit_histograms": "calibration",
    "figures_from_run": "from_run",
    "plan_figures": "from_run",
    "write_figures": "from_run",
    "plot_galaxy": "neighbours",
    "plot_causal_graph": "stellar_mass",
    "plot_mass_vs_truth": "stellar_mass",
    "plot_mi_bars": "stellar_mass",
    "plot_pc_graph": "stellar_mass",
    "plot_noise_spectra": "translation",
    "plot_translation_grid": "translation",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'clapkit.plots' has no attribute {name!r}")
    return getattr(importlib.import_module(f"clapkit.plots.{_MODULES[name]}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
