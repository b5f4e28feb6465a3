"""Exploratory plots of a run as HoloViews objects, for notebooks.

The dashboards (``app/``) keep their tuned Bokeh views; exploring a run in Jupyter
wants short plots that compose and link instead. Every function here returns a HoloViews
object over one table of the run's galaxies (:func:`galaxy_frame`): the evaluation's
per-galaxy table (``galaxies.h5``), CLAP's 2-D latent projection (``clap/knn.h5``) and
the catalog of the data the run predicted on, joined on ``id``. Because every element
is drawn from that same table, ``hv.link_selections`` links any of them: selecting
galaxies in the latent map highlights them in the colour diagram and redraws the PIT
histograms from the selected galaxies alone (:func:`explore_run` builds that layout).

This is the one library module that imports HoloViews (and datashader, for
:func:`latent_map` above :data:`RASTERIZE_ABOVE` points); it never loads a plotting
backend itself, because ``hv.extension("bokeh")`` imports Panel, which the library never
does. Call ``hv.extension("bokeh")`` in the notebook first; :func:`explore_run`, whose
linking needs a backend, says so if none is loaded. HoloViews comes with the ``app``
extra (``pip install clapkit[app]``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

try:
    import holoviews as hv
    from holoviews.operation import histogram
except ImportError as err:  # pragma: no cover - the app extra is installed in the tests
    raise ImportError(
        "clapkit.explore draws with HoloViews, which is not installed: pip install 'clapkit[app]'"
    ) from err

from clapkit.errors import ValidationError
from clapkit.evaluation import ordered_methods, read_galaxy_table, run_catalog
from clapkit.h5files import open_checked
from clapkit.photoz.details import read_clap_details
from clapkit.runs import PDF_FORMAT, PDF_FORMAT_VERSION, RunDir

#: The 2-D latent projection's columns in :func:`galaxy_frame`.
LATENT_COLUMNS = ("latent_x", "latent_y")
#: Above this many points a scatter is rasterised by datashader (one image, any size of
#: run) instead of drawn point by point (megabytes of glyphs the browser cannot separate).
RASTERIZE_ABOVE = 20_000
#: Bands whose differences :func:`galaxy_frame` adds as colours (``g_r`` = mag_g − mag_r).
_BAND_ORDER = ("u", "g", "r", "i", "z", "y")

RunLike = RunDir | str | os.PathLike
Source = RunLike | pd.DataFrame


def galaxy_frame(run: RunLike) -> pd.DataFrame:
    """One row per evaluated galaxy of ``run``: everything the explore plots can show.

    Columns: those of ``galaxies.h5`` (``id``, ``z_true``, ``mag_r``, ``g_r``,
    ``<method>.z_phot``, ``<method>.pit``, ``<method>.crps``, CLAP's ``novelty``); with
    ``clap/knn.h5``, the latent projection (``latent_x``, ``latent_y``), CLAP's chosen
    ``k`` and its local PIT distance ``w1``; with a readable data file, every 1-D catalog
    column not already there, and the colours of neighbouring bands (``u_g``, ``r_i``, ...).
    Rows are in PDF-file order.

    Examples
    --------
    >>> frame = galaxy_frame("data/runs/demo")  # doctest: +SKIP
    >>> frame[["id", "z_true", "clap.z_phot", "latent_x", "g_r"]].head()  # doctest: +SKIP
    >>> galaxy_frame("absent")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: absent: no such run directory
    """
    run = _run(run)
    if not run.galaxy_table_path.is_file():
        raise ValidationError(
            f"{run.root}: no per-galaxy table ({run.galaxy_table_path}); run "
            f"`clapkit evaluate --run {run.root}` first"
        )
    frame = read_galaxy_table(run.galaxy_table_path).to_pandas()
    ids = frame["id"].to_numpy()
    if run.clap_details_path.is_file():
        details = read_clap_details(run.clap_details_path)
        rows = _rows_of(details.ids, ids, str(run.clap_details_path))
        frame[LATENT_COLUMNS[0]] = details.projection[rows, 0]
        frame[LATENT_COLUMNS[1]] = details.projection[rows, 1]
        frame["k"] = details.k[rows]
        frame["w1"] = details.w1[rows]
    catalog = run_catalog(run)
    if catalog is not None and "id" in catalog.colnames:
        rows = _rows_of(np.asarray(catalog["id"]), ids, "the run's catalog")
        for name in catalog.colnames:
            values = np.asarray(catalog[name])
            if name not in frame.columns and values.ndim == 1:
                frame[name] = values[rows]
    bands = [b for b in _BAND_ORDER if f"mag_{b}" in frame.columns]
    for blue, red in itertools.pairwise(bands):
        if f"{blue}_{red}" not in frame.columns:
            frame[f"{blue}_{red}"] = frame[f"mag_{blue}"] - frame[f"mag_{red}"]
    frame.attrs["run"] = str(run.root)
    return frame


def latent_map(
    data: Source,
    color: str = "z_true",
    *,
    rasterize_above: int = RASTERIZE_ABOVE,
    cmap: str = "viridis",
) -> hv.Element | hv.DynamicMap:
    """The galaxies in CLAP's 2-D latent projection, coloured by any column.

    Parameters
    ----------
    data : RunDir, path or DataFrame
        A run directory or its :func:`galaxy_frame`.
    color : str
        Column that colours the points (see :func:`galaxy_frame` for the choice).
    rasterize_above : int
        Above this many galaxies the map is rasterised by datashader: a ``DynamicMap``
        of ``hv.Image`` whose pixels are the mean of ``color``, re-aggregated on zoom.
    cmap : str
        Colour map.

    Returns
    -------
    hv.Points or hv.DynamicMap
        ``Points`` with key dimensions ``latent_x``, ``latent_y`` and value ``color``.

    Examples
    --------
    >>> frame = pd.DataFrame({"latent_x": [0.0, 1.0], "latent_y": [1.0, 0.0], "z_true": [0.1, 0.3]})
    >>> latent_map(frame).dimension_values("z_true").tolist()
    [0.1, 0.3]
    """
    frame = _frame(data)
    missing = [name for name in LATENT_COLUMNS if name not in frame.columns]
    if missing:
        raise ValidationError(
            f"{_name(frame)}: no latent projection (CLAP's clap/knn.h5 is missing); train "
            "and predict with `--method clap` to get one"
        )
    return _scatter(frame, LATENT_COLUMNS, color, rasterize_above, cmap, "latent map")


def colour_redshift(
    data: Source,
    colour: str = "g_r",
    z: str = "z_true",
    *,
    color: str | None = None,
    rasterize_above: int = RASTERIZE_ABOVE,
) -> hv.Element | hv.DynamicMap:
    """A colour against redshift (by default g − r against the true redshift).

    Parameters
    ----------
    data : RunDir, path or DataFrame
        A run directory or its :func:`galaxy_frame`.
    colour : str
        The colour column (``g_r``, ``u_g``, ``r_i``, ...; any column will do).
    z : str
        The redshift column: ``z_true``, a method's ``<method>.z_phot``, or the catalog's.
    color : str, optional
        Column that colours the points.
    rasterize_above : int
        Above this many galaxies the diagram is rasterised (see :func:`latent_map`).

    Returns
    -------
    hv.Points or hv.DynamicMap

    Examples
    --------
    >>> frame = pd.DataFrame({"z_true": [0.1, 0.3], "g_r": [0.9, 1.6]})
    >>> colour_redshift(frame).dimension_values("g_r").tolist()
    [0.9, 1.6]
    """
    frame = _frame(data)
    return _scatter(frame, (z, colour), color, rasterize_above, "viridis", "colour diagram")


def magnitude_redshift(
    data: Source,
    magnitude: str = "mag_r",
    z: str = "z_true",
    *,
    color: str | None = None,
    rasterize_above: int = RASTERIZE_ABOVE,
) -> hv.Element | hv.DynamicMap:
    """A magnitude against redshift (bright at the top, as astronomers read it).

    Parameters
    ----------
    data : RunDir, path or DataFrame
        A run directory or its :func:`galaxy_frame`.
    magnitude : str
        The magnitude column.
    z : str
        The redshift column.
    color : str, optional
        Column that colours the points.
    rasterize_above : int
        Above this many galaxies the diagram is rasterised (see :func:`latent_map`).

    Returns
    -------
    hv.Points or hv.DynamicMap

    Examples
    --------
    >>> frame = pd.DataFrame({"z_true": [0.1, 0.3], "mag_r": [16.0, 17.5]})
    >>> len(magnitude_redshift(frame))
    2
    """
    frame = _frame(data)
    plot = _scatter(frame, (z, magnitude), color, rasterize_above, "viridis", "magnitude diagram")
    return plot.opts(invert_yaxis=True)


def pit_histograms(
    data: Source, methods: Sequence[str] | None = None, n_bins: int = 20
) -> hv.Layout:
    """One PIT histogram (counts on [0, 1]) per method.

    The histograms are HoloViews ``histogram`` operations over the galaxy table, so
    under ``hv.link_selections`` they are recomputed from the selected galaxies.

    Examples
    --------
    >>> frame = pd.DataFrame({"clap.pit": [0.05, 0.5, 0.55, 0.99]})
    >>> pit_histograms(frame, n_bins=2).Histogram.clap.dimension_values(1).tolist()
    [1, 3]
    """
    frame = _frame(data)
    available = _methods(frame)
    methods = available if methods is None else list(methods)
    unknown = [m for m in methods if m not in available]
    if unknown or not methods:
        raise ValidationError(
            f"{_name(frame)}: no PIT values of {unknown or 'any method'}; "
            f"methods with PIT values: {available}"
        )
    if not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValidationError(f"n_bins must be a positive integer, got {n_bins!r}")
    dataset = hv.Dataset(frame)
    plots = [
        histogram(
            dataset, dimension=f"{m}.pit", bin_range=(0.0, 1.0), num_bins=int(n_bins), normed=False
        )
        .relabel(m)
        .opts(title=f"PIT {m}", xlabel="PIT")
        for m in methods
    ]
    return hv.Layout(plots).cols(min(len(plots), 3))


def galaxy_pdfs(run: RunLike, ids: Sequence[Any], methods: Sequence[str] = ("clap",)) -> hv.Overlay:
    """PDFs of chosen galaxies, one step curve per galaxy and method, with their true
    redshifts as dashed lines.

    Curves are densities (probability per bin / bin width) at the bin centres, labelled
    ``"<id> <method>"``.

    Examples
    --------
    >>> galaxy_pdfs(run, [100007, 100014], ["clap", "softmax"])  # doctest: +SKIP
    """
    run = _run(run)
    methods = list(methods)
    available = run.methods()
    unknown = [m for m in methods if m not in available]
    if unknown or not methods:
        raise ValidationError(
            f"{run.root}: no PDFs of {unknown or 'any method'}; the run has {available}"
        )
    ids = list(ids)
    if not ids:
        raise ValidationError("galaxy_pdfs needs at least one galaxy id")
    curves: list[hv.Element] = []
    truth: dict[Any, float] = {}
    for method in methods:
        stored, p, edges, z_true = _read_pdf_rows(run, method, ids)
        density = p / np.diff(edges)
        centres = 0.5 * (edges[:-1] + edges[1:])
        for galaxy, row in zip(stored, density, strict=True):
            curves.append(
                hv.Curve((centres, row), "z", "p(z)", label=f"{galaxy} {method}").opts(
                    interpolation="steps-mid"
                )
            )
        if z_true is not None:
            truth.update(zip(stored, z_true.tolist(), strict=True))
    lines = [hv.VLine(z).opts(line_dash="dashed", color="grey") for z in truth.values()]
    return hv.Overlay(curves + lines)


@dataclass
class Exploration:
    """What :func:`explore_run` returns: the linked layout and its selection.

    Attributes
    ----------
    layout : hv.Layout
        Latent map, colour diagram, PIT histograms (linked) and the selected galaxies'
        PDFs; a notebook cell showing the ``Exploration`` shows this layout.
    selection : hv.link_selections
        The link; set ``selection.selection_expr`` (e.g. ``hv.dim("latent_x") > 0``) to
        select in code, or read what a box selection made.
    frame : DataFrame
        The :func:`galaxy_frame` every element is drawn from.
    """

    layout: hv.Layout
    selection: hv.link_selections
    frame: pd.DataFrame = field(repr=False)

    def selected(self) -> pd.DataFrame:
        """Rows of :attr:`frame` the current selection holds (all without one)."""
        expr = self.selection.selection_expr
        if expr is None:
            return self.frame
        mask = np.asarray(expr.apply(hv.Dataset(self.frame)), dtype=bool)
        return self.frame[mask]

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.layout._repr_mimebundle_(include, exclude)


def explore_run(
    run: RunLike,
    color: str = "z_true",
    colour: str = "g_r",
    methods: Sequence[str] | None = None,
    *,
    rasterize_above: int = RASTERIZE_ABOVE,
    n_bins: int = 20,
    max_pdfs: int = 5,
) -> Exploration:
    """The latent map, the colour–redshift diagram and the PIT histograms of a run,
    linked: select galaxies in one and the others show them.

    Needs a plotting backend (``hv.extension("bokeh")`` in the notebook). The PDFs of
    the first ``max_pdfs`` selected galaxies (of the first method) follow the selection.

    Parameters
    ----------
    run : RunDir or path
        The run directory.
    color : str
        Column colouring the latent map.
    colour : str
        Colour column of the colour–redshift diagram.
    methods : sequence of str, optional
        Methods whose PIT histograms are shown (default CLAP's ensemble and the
        baselines the run has, at most four).
    rasterize_above : int
        Galaxies above which the scatters are rasterised.
    n_bins : int
        PIT histogram bins.
    max_pdfs : int
        Selected galaxies whose PDFs are drawn.

    Returns
    -------
    Exploration

    Examples
    --------
    >>> hv.extension("bokeh")  # doctest: +SKIP
    >>> explore_run("data/runs/demo", color="novelty")  # doctest: +SKIP
    """
    if hv.Store.current_backend not in hv.Store.renderers:
        raise ValidationError(
            "explore_run links selections through a plotting backend, and none is loaded: "
            'call hv.extension("bokeh") first'
        )
    if not isinstance(max_pdfs, int | np.integer) or max_pdfs < 1:
        raise ValidationError(f"max_pdfs must be a positive integer, got {max_pdfs!r}")
    frame = galaxy_frame(run)
    dataset = hv.Dataset(frame)
    available = _methods(frame)
    if methods is None:
        # CLAP's ensemble beside the baselines; its other stages on request.
        methods = [m for m in available if m == "clap" or not m.startswith("clap")][:4]
        methods = methods or available[:4]
    plots = latent_map(frame, color, rasterize_above=rasterize_above)
    plots += colour_redshift(frame, colour, rasterize_above=rasterize_above)
    plots += pit_histograms(frame, methods, n_bins)
    selection = hv.link_selections.instance()
    linked = selection(plots)

    def selected_pdfs(selection_expr=None):
        chosen = frame if selection_expr is None else frame[selection_expr.apply(dataset)]
        if chosen.empty:
            return hv.Overlay([hv.Curve([], "z", "p(z)")])
        return galaxy_pdfs(run, chosen["id"].to_numpy()[:max_pdfs], methods[:1])

    pdfs = hv.DynamicMap(selected_pdfs, streams=[hv.streams.Params(selection, ["selection_expr"])])
    layout = (linked + pdfs.opts(title="PDFs of the selection")).cols(3)
    return Exploration(layout, selection, frame)


# ---------------------------------------------------------------------------- helpers


def _run(run: RunLike) -> RunDir:
    run = run if isinstance(run, RunDir) else RunDir(run)
    if not run.root.is_dir():
        raise ValidationError(f"{run.root}: no such run directory")
    return run


def _frame(data: Source) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else galaxy_frame(data)


def _name(frame: pd.DataFrame) -> str:
    return frame.attrs.get("run", "the galaxy table")


def _methods(frame: pd.DataFrame) -> list[str]:
    return ordered_methods([c[: -len(".pit")] for c in frame.columns if c.endswith(".pit")])


def _check_columns(frame: pd.DataFrame, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise ValidationError(
            f"{_name(frame)}: the {what} needs column(s) {missing}; available: "
            f"{sorted(map(str, frame.columns))}"
        )


def _scatter(
    frame: pd.DataFrame,
    axes: Sequence[str],
    color: str | None,
    rasterize_above: int,
    cmap: str,
    what: str,
) -> hv.Element | hv.DynamicMap:
    """Points of ``axes`` coloured by ``color``, over the whole frame (so selections on
    any column link), rasterised above ``rasterize_above`` points."""
    axes = list(axes)
    vdims = [color] if color is not None and color not in axes else []
    _check_columns(frame, axes + vdims, what)
    if not isinstance(rasterize_above, int | np.integer) or rasterize_above < 0:
        raise ValidationError(
            f"rasterize_above must be a non-negative integer, got {rasterize_above!r}"
        )
    points = hv.Dataset(frame).to(hv.Points, axes, vdims, groupby=[])
    colour_opts = {"color": color, "colorbar": True, "cmap": cmap} if color else {}
    if len(frame) <= rasterize_above:
        return points.opts(tools=["box_select", "lasso_select", "hover"], **colour_opts)
    # Only here: datashader (and its numba kernels) costs seconds to import and compile.
    import datashader
    from holoviews.operation.datashader import rasterize

    if color is None:
        aggregator = datashader.count()
    elif pd.api.types.is_numeric_dtype(frame[color]):
        aggregator = datashader.mean(color)
    else:
        raise ValidationError(
            f"{_name(frame)}: column {color!r} is not numeric; above {rasterize_above} "
            "galaxies the map is rasterised, which averages the colouring column"
        )
    return rasterize(points, aggregator=aggregator).opts(
        tools=["box_select"], colorbar=True, cmap=cmap
    )


def _rows_of(stored: np.ndarray, ids: Sequence[Any], where: str) -> np.ndarray:
    """Positions of ``ids`` in ``stored`` (ids of a file), every one of them required."""
    ids = np.asarray(ids)
    index = pd.Index(stored)
    if not index.is_unique:
        repeated = index[index.duplicated()][0]
        repeated = repeated.item() if hasattr(repeated, "item") else repeated
        raise ValidationError(f"{where} holds id {repeated!r} more than once")
    rows = index.get_indexer(ids)
    if np.any(rows < 0):
        missing = ids[rows < 0]
        first = missing[0].item() if hasattr(missing[0], "item") else missing[0]
        raise ValidationError(
            f"{where} has no galaxy with id {first!r} ({missing.size} of {ids.size} ids missing)"
        )
    return rows


def _read_pdf_rows(
    run: RunDir, method: str, ids: Sequence[Any]
) -> tuple[list[Any], np.ndarray, np.ndarray, np.ndarray | None]:
    """The PDFs of ``ids`` only (a run's PDF file can be gigabytes)."""
    path = run.pdf_path(method)
    with open_checked(path, PDF_FORMAT, PDF_FORMAT_VERSION, "a PDF file") as f:
        stored = f["id"][()]
        if stored.dtype.kind in "SO":
            stored = np.asarray([v.decode() if isinstance(v, bytes) else v for v in stored])
        rows = _rows_of(stored, ids, str(path))
        # h5py reads scattered rows only in increasing order, each once.
        unique, inverse = np.unique(rows, return_inverse=True)
        p = f["p"][unique][inverse]
        edges = f["edges"][()]
        z_true = f["z_true"][()][rows] if "z_true" in f else None
    return [v.item() if hasattr(v, "item") else v for v in stored[rows]], p, edges, z_true
