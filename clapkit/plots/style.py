"""Journal sizes, print fonts and saving: what makes a figure ready for a paper.

Every figure of :mod:`clapkit.plots` is built inside :func:`print_style` on a
:func:`new_figure` one or two journal columns wide, and written by :func:`save_figure`:
each format atomically, plus ``<name>.csv`` with the numbers the figure shows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib as mpl
from astropy.table import Table
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from clapkit.atomic import atomic_path, check_writable
from clapkit.errors import ValidationError

#: Figure widths in inches. Journals' column widths: A&A 88 mm and 180 mm (3.46 in and
#: 7.09 in), MNRAS 84 mm and 174 mm (3.31 in and 6.85 in), ApJ 3.5 in and 7.1 in; these
#: fit inside all of them within a few per cent (a figure scaled by under 5 % keeps its
#: fonts at print size).
WIDTHS = {"single": 3.35, "double": 7.0}
#: Point size of labels and legends: journals set captions at 8–9 pt, and text in a
#: figure should not be larger.
FONT_SIZE = 8
#: Formats written without ``--format``: a vector file for the paper, a PNG to look at.
DEFAULT_FORMATS = ("pdf", "png")
#: Resolution of raster formats (journals ask for at least 300 dpi).
RASTER_DPI = 300
_VECTOR = {"pdf", "svg", "svgz", "eps", "ps"}

_PRINT_RC = {
    "font.size": FONT_SIZE,
    "axes.titlesize": FONT_SIZE,
    "axes.labelsize": FONT_SIZE,
    "legend.fontsize": FONT_SIZE - 1,
    "xtick.labelsize": FONT_SIZE - 1,
    "ytick.labelsize": FONT_SIZE - 1,
    "lines.linewidth": 1.0,
    "axes.linewidth": 0.6,
    "xtick.direction": "in",
    "ytick.direction": "in",
    "xtick.top": True,
    "ytick.right": True,
    "legend.frameon": False,
}
#: Settings read when a figure is written: TrueType fonts embedded in PDF and PS (journals
#: refuse Type 3 fonts) and text kept as text in SVG.
_SAVE_RC = {"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none"}


@contextlib.contextmanager
def print_style() -> Iterator[None]:
    """Matplotlib settings for print (font sizes, thin lines, inward ticks), for the block.

    Artists read these when they are created, so a figure built inside the block keeps
    them when saved outside it; the user's own settings come back afterwards.
    """
    with mpl.rc_context(_PRINT_RC):
        yield


def figure_width(width: str | float) -> float:
    """Width in inches: ``"single"`` or ``"double"`` (a journal column), or a number.

    Examples
    --------
    >>> figure_width("single"), figure_width(5)
    (3.35, 5.0)
    """
    if isinstance(width, str):
        if width not in WIDTHS:
            raise ValidationError(f"width must be one of {sorted(WIDTHS)} or inches, got {width!r}")
        return WIDTHS[width]
    inches = float(width)
    if not 1.0 <= inches <= 20.0:
        raise ValidationError(f"a figure width of {inches:g} in is not a page's; give 1-20 inches")
    return inches


def new_figure(width: str | float = "single", aspect: float = 0.75) -> Figure:
    """An empty figure ``width`` wide (see :func:`figure_width`) and ``aspect`` × as high.

    Built with the object API (never pyplot), so the user's backend is left alone and no
    display is needed.

    Examples
    --------
    >>> fig = new_figure("double", aspect=0.5)
    >>> [round(float(v), 2) for v in fig.get_size_inches()]
    [7.0, 3.5]
    """
    inches = figure_width(width)
    return Figure(figsize=(inches, inches * aspect), layout="constrained")


def finish(fig: Figure) -> Figure:
    """Print-size tick labels on every axes (ticks are created when drawn, after the
    :func:`print_style` block has ended, so their size is set here once and for all)."""
    for ax in fig.axes:
        ax.tick_params(labelsize=FONT_SIZE - 1, direction="in", top=True, right=True)
    return fig


def label_panels(axes: Sequence, ncols: int, xlabel: str, ylabel: str) -> None:
    """Axis labels on the outer panels of a grid filled row by row: the x label (and x
    tick labels, which shared axes hide) under every panel with none below it, the y
    label on the first column.

    Parameters
    ----------
    axes : sequence of matplotlib Axes
        The panels, row by row.
    ncols : int
        Panels per row.
    xlabel, ylabel : str
        The labels.
    """
    n = len(axes)
    for i, ax in enumerate(axes):
        if i + ncols >= n:
            ax.set_xlabel(xlabel)
            ax.xaxis.set_tick_params(labelbottom=True)
        if i % ncols == 0:
            ax.set_ylabel(ylabel)


def supported_formats() -> list[str]:
    """File formats matplotlib can write, sorted (``pdf``, ``png``, ``svg``...)."""
    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """The formats asked for (a comma-separated string or a sequence), checked.

    Examples
    --------
    >>> check_formats("pdf, png")
    ('pdf', 'png')
    >>> check_formats("pdf,docx")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: unknown figure format 'docx'; matplotlib writes ...
    """
    names = formats.split(",") if isinstance(formats, str) else list(formats)
    names = [name.strip().lower().lstrip(".") for name in names if name.strip()]
    if not names:
        raise ValidationError("give at least one figure format, e.g. pdf,png")
    known = supported_formats()
    for name in names:
        if name not in known:
            raise ValidationError(
                f"unknown figure format {name!r}; matplotlib writes {', '.join(known)}"
            )
    return tuple(dict.fromkeys(names))


def is_vector(fmt: str) -> bool:
    """Whether ``fmt`` keeps lines and text as vectors (pdf, svg, eps, ps)."""
    return fmt in _VECTOR


def output_paths(out_dir: str | os.PathLike, name: str, formats: Sequence[str]) -> list[Path]:
    """The files :func:`save_figure` writes for ``name``: one per format, then the CSV."""
    out_dir = Path(out_dir)
    return [out_dir / f"{name}.{fmt}" for fmt in formats] + [out_dir / f"{name}.csv"]


def save_figure(
    fig: Figure,
    table: Table,
    out_dir: str | os.PathLike,
    name: str,
    formats: str | Sequence[str] = DEFAULT_FORMATS,
    *,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``fig`` in each format and ``table`` (the numbers it shows) as CSV.

    Every file is written atomically (:mod:`clapkit.atomic`); all are checked before the
    first is written, so an existing file without ``overwrite`` leaves nothing new
    behind. Raster formats get :data:`RASTER_DPI`; fonts are embedded as TrueType.

    Parameters
    ----------
    fig : Figure
    table : astropy.table.Table
        Written as ``<name>.csv`` (plain: a header line, then the rows).
    out_dir : path
        Created if needed.
    name : str
        File name without extension.
    formats : str or sequence of str
        Matplotlib formats, e.g. ``"pdf,png"``.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    list of Path
        The files written, figures first.

    Examples
    --------
    >>> import tempfile
    >>> fig = new_figure()
    >>> _ = fig.subplots().plot([0, 1], [0, 1])
    >>> paths = save_figure(fig, Table({"x": [0, 1]}), tempfile.mkdtemp(), "line", "svg")
    >>> [p.name for p in paths]
    ['line.svg', 'line.csv']
    """
    formats = check_formats(formats)
    paths = output_paths(out_dir, name, formats)
    for path in paths:
        check_writable(path, overwrite)
    with mpl.rc_context(_SAVE_RC):
        for fmt, path in zip(formats, paths, strict=False):
            dpi = "figure" if is_vector(fmt) else RASTER_DPI
            with atomic_path(path, overwrite) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi)
    with atomic_path(paths[-1], overwrite) as tmp:
        table.write(tmp, format="ascii.csv", overwrite=True)
    return paths
