"""Calibration figures: PIT histograms, coverage curves, calibration per bin.

The dashboards draw interactive versions; these are the static figures for papers.
PIT values and coverage curves may be given as :class:`~clapkit.metrics.PDFs` (computed
here with :mod:`clapkit.metrics`) or as already computed arrays (``galaxies.h5`` and
``metrics.json`` of an evaluated run, which is what :mod:`clapkit.plots.from_run` reads).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from clapkit.errors import ValidationError
from clapkit.evaluation import COVERAGE_LEVELS
from clapkit.metrics import PDFs, coverage
from clapkit.plots.style import finish, label_panels, new_figure, print_style

#: Labels of the per-bin variables of ``metrics.json``.
BIN_LABELS = {"z_true": r"$z_\mathrm{spec}$", "mag_r": r"$r$ [mag]", "g_r": r"$g-r$ [mag]"}


def plot_calibration(pdfs_by_method: Mapping[str, PDFs], n_pit_bins: int = 20) -> Figure:
    """PIT histogram and coverage curves (central and HPD) of one or more methods.

    The PIT panel shades the ±2σ band a uniform histogram of that many galaxies fills by
    chance; the coverage panel plots observed against nominal credibility, so calibrated
    PDFs lie on the diagonal and over-confident ones below it. A quick-look figure (the
    demo's ``calibration.png``); :func:`plot_pit_histograms` and
    :func:`plot_coverage_curves` are the journal-sized ones.

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
        ax_pit.axhspan(
            *_uniform_band(n_max, n_pit_bins), color="0.85", zorder=0, label="uniform ±2σ"
        )
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


def _uniform_band(n: int, n_bins: int) -> tuple[float, float]:
    """Density range a uniform histogram of ``n`` values in ``n_bins`` bins fills at ±2σ."""
    # Counts per bin are binomial: relative std sqrt((1 - 1/n_bins) / (n / n_bins)).
    band = 2 * np.sqrt((1 - 1 / n_bins) * n_bins / n)
    return 1 - band, 1 + band


def _grid(n_panels: int, width: str | float, panel_aspect: float = 0.8):
    """A figure of ``n_panels`` small panels, two per row in one column, four in two, and
    the number of columns."""
    ncols = _columns(n_panels, width)
    nrows = -(-n_panels // ncols)
    fig = new_figure(width, aspect=panel_aspect * nrows / ncols)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))
    axes = axes.ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _columns(n_panels: int, width: str | float) -> int:
    return min(n_panels, 2 if width == "single" else 4)


def plot_pit_histograms(
    pit_by_method: Mapping[str, PDFs | ArrayLike],
    n_bins: int = 20,
    width: str | float = "single",
) -> tuple[Figure, Table]:
    """One PIT histogram per method, as densities, with the band uniform PITs fill.

    Parameters
    ----------
    pit_by_method : mapping of str to PDFs or array
        PDFs with ``z_true`` (their PIT is computed) or PIT values, per method.
    n_bins : int
        Histogram bins on [0, 1].
    width : "single", "double" or float
        Figure width (see :func:`~clapkit.plots.style.figure_width`).

    Returns
    -------
    fig : Figure
        One panel per method, titled by its name.
    table : Table
        ``method``, ``pit_lo``, ``pit_hi``, ``count``, ``density`` (the bar heights)
        and ``uniform_lo``/``uniform_hi`` (the shaded ±2σ band).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fig, table = plot_pit_histograms({"toy": rng.uniform(size=100)}, n_bins=10)
    >>> int(table["count"].sum()), len(fig.axes)
    (100, 1)
    """
    pits = {name: _pit_values(name, values) for name, values in pit_by_method.items()}
    _check_some(pits, "PIT values")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    rows: list[dict[str, Any]] = []
    with print_style():
        fig, axes = _grid(len(pits), width)
        for ax, (name, values) in zip(axes, pits.items(), strict=True):
            counts, _ = np.histogram(values, bins=edges)
            density = counts / (values.size * np.diff(edges))
            lo, hi = _uniform_band(values.size, n_bins)
            ax.axhspan(max(lo, 0.0), hi, color="0.85", lw=0, zorder=0)
            ax.axhline(1.0, color="k", lw=0.6)
            ax.bar(edges[:-1], density, width=np.diff(edges), align="edge", color="C0", lw=0)
            ax.set_title(name)
            ax.set_xlim(0, 1)
            for b in range(n_bins):
                rows.append(
                    {
                        "method": name,
                        "pit_lo": edges[b],
                        "pit_hi": edges[b + 1],
                        "count": int(counts[b]),
                        "density": density[b],
                        "uniform_lo": lo,
                        "uniform_hi": hi,
                    }
                )
        label_panels(axes, _columns(len(pits), width), "PIT", "density")
        finish(fig)
    return fig, Table(rows=rows)


def coverage_curve(pdfs: PDFs, levels: Sequence[float] = COVERAGE_LEVELS) -> dict[str, list]:
    """Observed central and HPD coverage of ``pdfs`` at each credibility level, in the
    form ``metrics.json`` stores (``levels``, ``central``, ``hpd``)."""
    if pdfs.z_true is None:
        raise ValidationError("coverage needs PDFs with z_true")
    levels = list(levels)
    return {
        "levels": levels,
        "central": coverage(pdfs.p, pdfs.edges, pdfs.z_true, levels, kind="central").tolist(),
        "hpd": coverage(pdfs.p, pdfs.edges, pdfs.z_true, levels, kind="hpd").tolist(),
    }


def plot_coverage_curves(
    curves_by_method: Mapping[str, PDFs | Mapping[str, Sequence[float]]],
    width: str | float = "single",
) -> tuple[Figure, Table]:
    """Observed against nominal coverage of every method: central intervals (solid) and
    highest-density regions (dashed); calibrated PDFs lie on the diagonal, over-confident
    ones below it.

    Parameters
    ----------
    curves_by_method : mapping of str to PDFs or mapping
        PDFs with ``z_true``, or curves as ``metrics.json`` stores them (``levels``,
        ``central``, ``hpd``; see :func:`coverage_curve`).
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        One square panel.
    table : Table
        ``method``, ``kind`` (``central`` or ``hpd``), ``level``, ``coverage``.

    Examples
    --------
    >>> curve = {"levels": [0.5, 0.9], "central": [0.4, 0.8], "hpd": [0.45, 0.85]}
    >>> fig, table = plot_coverage_curves({"toy": curve})
    >>> len(table), [float(x) for x in fig.axes[0].get_xlim()]
    (4, [0.0, 1.0])
    """
    curves = {
        name: coverage_curve(value) if isinstance(value, PDFs) else value
        for name, value in curves_by_method.items()
    }
    _check_some(curves, "coverage curves")
    rows: list[dict[str, Any]] = []
    with print_style():
        fig = new_figure(width, aspect=1.0 if width == "single" else 0.6)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color="k", lw=0.6)
        for i, (name, curve) in enumerate(curves.items()):
            levels = np.asarray(curve["levels"], dtype=float)
            for kind, style in (("central", "-"), ("hpd", "--")):
                values = np.asarray(curve[kind], dtype=float)
                if values.shape != levels.shape:
                    raise ValidationError(
                        f"coverage curve of {name!r}: {kind} has {values.size} values for "
                        f"{levels.size} levels"
                    )
                label = name if kind == "central" else None
                ax.plot(levels, values, ls=style, color=f"C{i % 10}", label=label)
                rows += [
                    {"method": name, "kind": kind, "level": lv, "coverage": cv}
                    for lv, cv in zip(levels, values, strict=True)
                ]
        ax.plot([], [], ls="--", color="0.4", label="HPD")
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
        ax.set_xlabel("nominal credibility")
        ax.set_ylabel("observed coverage")
        ax.legend(loc="upper left", ncols=1 if len(curves) < 6 else 2)
        finish(fig)
    return fig, Table(rows=rows)


def plot_calibration_by_bin(
    tables_by_method: Mapping[str, Sequence[Mapping[str, Any]] | Table],
    variable: str = "z_true",
    width: str | float = "single",
) -> tuple[Figure, Table]:
    """Coverage of the 68 % and 95 % intervals, and the PIT's distance to uniform, in
    bins of one variable (true redshift, magnitude, colour), one line per method.

    Parameters
    ----------
    tables_by_method : mapping of str to table
        Per method the rows of a per-bin table (``metrics.json``'s ``by_<variable>``,
        or :func:`~clapkit.metrics.calibration_table`): ``lo``, ``hi``, ``n``,
        ``coverage_68``, ``coverage_95``, ``pit_w1``. Empty bins (None) are gaps.
    variable : str
        What the bins are of (axis label; ``z_true``, ``mag_r`` and ``g_r`` are named).
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        Two panels sharing the x axis: coverage (dotted lines at 0.68 and 0.95) and PIT W1.
    table : Table
        ``method``, ``lo``, ``hi``, ``centre``, ``n``, ``coverage_68``, ``coverage_95``,
        ``pit_w1`` (NaN for empty bins).
    """
    _check_some(tables_by_method, "per-bin tables")
    keys = ("lo", "hi", "n", "coverage_68", "coverage_95", "pit_w1")
    rows: list[dict[str, Any]] = []
    for name, table in tables_by_method.items():
        for row in table:
            missing = [key for key in keys if key not in _row_keys(row)]
            if missing:
                raise ValidationError(f"per-bin table of {name!r} lacks {missing}")
            values = {key: _number(row[key]) for key in keys}
            rows.append({"method": name, **values, "centre": 0.5 * (values["lo"] + values["hi"])})
    out = Table(
        rows=rows,
        names=["method", "lo", "hi", "n", "coverage_68", "coverage_95", "pit_w1", "centre"],
    )
    out = out[["method", "lo", "hi", "centre", "n", "coverage_68", "coverage_95", "pit_w1"]]
    with print_style():
        fig = new_figure(width, aspect=1.0 if width == "single" else 0.55)
        ax_cov, ax_w1 = fig.subplots(2, 1, sharex=True)
        for level in (0.68, 0.95):
            ax_cov.axhline(level, color="k", lw=0.5, ls=":")
        for i, name in enumerate(tables_by_method):
            mine = out[out["method"] == name]
            colour = f"C{i % 10}"
            ax_cov.plot(mine["centre"], mine["coverage_68"], "o-", ms=2.5, color=colour, label=name)
            ax_cov.plot(mine["centre"], mine["coverage_95"], "s--", ms=2.5, color=colour)
            ax_w1.plot(mine["centre"], mine["pit_w1"], "o-", ms=2.5, color=colour)
        ax_cov.set_ylabel("coverage (68 %, 95 %)")
        ax_cov.set_ylim(0, 1.02)
        ax_w1.set_ylabel("PIT $W_1$")
        ax_w1.set_ylim(bottom=0)
        ax_w1.set_xlabel(BIN_LABELS.get(variable, variable))
        ax_cov.legend(loc="lower left", ncols=2 if len(tables_by_method) > 3 else 1)
        finish(fig)
    return fig, out


def _pit_values(name: str, values: PDFs | ArrayLike) -> np.ndarray:
    if isinstance(values, PDFs):
        if values.z_true is None:
            raise ValidationError(f"the PDFs of {name!r} carry no z_true; a PIT needs it")
        return values.pit()
    pit = np.asarray(values, dtype=float).ravel()
    if pit.size == 0 or not np.all((pit >= 0) & (pit <= 1)):
        raise ValidationError(f"PIT values of {name!r} must be a non-empty array in [0, 1]")
    return pit


def _check_some(mapping: Mapping, what: str) -> None:
    if not mapping:
        raise ValidationError(f"no {what} to plot; give at least one method")


def _row_keys(row: Any) -> Sequence[str]:
    return row.colnames if hasattr(row, "colnames") else list(row)


def _number(value: Any) -> float:
    """A table cell as float; None (an empty bin in ``metrics.json``) becomes NaN."""
    return float("nan") if value is None else float(value)
