"""The neighbour browser: CLAP's latent space and the neighbours that made a galaxy's PDF.

A map of the run's test galaxies in the 2-D projection of their latent vectors v_A
(``clap/knn.h5``), coloured by true redshift, photo-z, chosen k or PIT. Clicking on the
map, or typing an id, selects a galaxy; the browser then shows the training galaxies
CLAP's adaptive KNN chose for it (their images, nearest first, and the histogram of
their spectroscopic redshifts, which is the raw KNN PDF), the chosen k with the local
PIT histogram whose distance to uniform chose it, and the galaxy itself
(:class:`~clapkit_app.galaxy.GalaxyView`).

Everything shown was computed by ``clapkit predict``; a selection reads one galaxy's
neighbour row and at most :attr:`NeighbourBrowser.GRID_SIZE` images from disk. Large
runs are rasterized by datashader on the server, so the browser never receives more
than :attr:`NeighbourBrowser.RASTERIZE_ABOVE` points.

The plots are plain Bokeh figures built once per session; a selection or a recolouring
assigns new arrays to their data sources (one document message), which costs a few
milliseconds of server time where re-rendering HoloViews plots cost hundreds. What
depends on the run only (the map's columns, colour ranges, rasterized maps) is computed
once per process and shared by all sessions.
"""

from __future__ import annotations

import html
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, ClassVar

import colorcet
import datashader as ds
import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.events import Tap
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    HoverTool,
    LinearColorMapper,
    Range1d,
    Span,
    TapTool,
)
from bokeh.palettes import Plasma256, Viridis256
from bokeh.plotting import figure

from clapkit.photoz.novelty import NOVEL_ABOVE
from clapkit.tables_io import make_table
from clapkit_app.calibration import calibrated_band
from clapkit_app.downloads import download_buttons, pdf_table
from clapkit_app.galaxy import GalaxyView
from clapkit_app.images import colour_composite, label_on_stamps, mosaic, rgba_image
from clapkit_app.legends import outside_legend
from clapkit_app.methods import IDEAL_COLOUR
from clapkit_app.page import problems_alert
from clapkit_app.store import RunData, method_label, plain_id
from clapkit_app.urlstate import (
    UrlField,
    UrlState,
    choice_field,
    galaxy_links,
    translation_has,
    unknown_id_message,
)

#: Height of the latent map, in screen pixels.
MAP_HEIGHT = 480
#: Side of the neighbour mosaic and height of the histograms, in screen pixels.
PANEL_SIZE = 340
#: Pixels of the neighbour grid's border and title (its figure is sized to its tiles).
GRID_BORDER, GRID_TITLE = 4, 24
#: Pixels (height, width) of the rasterized map: about the plot's frame on a wide screen.
RASTER_SHAPE = (400, 800)
#: Tools of the histograms (Bokeh's defaults less the ones that change nothing here).
PLOT_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
#: About how many bins the local PIT histogram is shown in: the stored one has a bin
#: per percent or so, far too many for the 11–33 neighbours it counts.
LOCAL_PIT_BINS = 10
#: Colour maps of the map's variables.
PALETTES = {"viridis": Viridis256, "plasma": Plasma256, "coolwarm": tuple(colorcet.coolwarm)}


def nearest(positions: np.ndarray, x: float, y: float) -> int:
    """Row of ``positions`` (N, 2) nearest to the point (x, y).

    Examples
    --------
    >>> nearest(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]]), 1.9, 0.4)
    2
    """
    # A brute-force scan: ~1 ms for 100,000 galaxies, less than a tree's construction.
    return int(np.argmin((positions[:, 0] - x) ** 2 + (positions[:, 1] - y) ** 2))


def padded_mosaic(tiles: np.ndarray, size: int, columns: int) -> np.ndarray:
    """The first ``size`` of ``tiles`` (n, H, W, 3) in rows of ``columns``: as many rows
    as the tiles fill, the last row padded with white.

    Examples
    --------
    >>> padded_mosaic(np.zeros((11, 4, 4, 3), np.uint8), size=16, columns=4).shape
    (16, 22, 3)
    >>> padded_mosaic(np.zeros((20, 4, 4, 3), np.uint8), size=16, columns=4).shape
    (22, 22, 3)
    """
    n, h, w, c = tiles.shape
    shown = min(n, size)
    cells = max(1, -(-shown // columns)) * columns
    full = np.full((cells, h, w, c), 255, dtype=np.uint8)
    full[:shown] = tiles[:shown]
    return mosaic(full, columns)


def coarse_pit_histogram(
    fractions: np.ndarray, k: int, target: int = LOCAL_PIT_BINS
) -> tuple[np.ndarray, np.ndarray, float]:
    """A stored local PIT histogram (fractions of ``k`` neighbours in equal bins) summed
    into about ``target`` equal bins, and the ±2σ half-width of a calibrated method's
    fraction per bin (binomial, ``k`` draws).

    Parameters
    ----------
    fractions : ndarray
        Fraction of the neighbours in each of the stored bins on [0, 1].
    k : int
        Number of neighbours counted.
    target : int
        Bins wanted; the nearest number of bins that divides the stored ones is used.

    Returns
    -------
    edges : ndarray
        Edges of the coarse bins.
    coarse : ndarray
        Fraction of the neighbours in each coarse bin.
    band : float
        Two binomial standard deviations of a bin's fraction (NaN when ``k`` < 1).

    Examples
    --------
    >>> edges, coarse, band = coarse_pit_histogram(np.full(100, 0.01), k=25)
    >>> coarse.size, round(float(coarse.sum()), 6), round(band, 4)
    (10, 1.0, 0.12)
    """
    fractions = np.asarray(fractions, dtype=float)
    n = fractions.size
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    bins = min(divisors, key=lambda d: (abs(d - target), -d))
    coarse = fractions.reshape(bins, n // bins).sum(axis=1)
    p = 1.0 / bins
    band = 2.0 * np.sqrt(p * (1.0 - p) / k) if k >= 1 else float("nan")
    return np.linspace(0.0, 1.0, bins + 1), coarse, float(band)


@dataclass(frozen=True)
class Selection:
    """What the browser shows of one selected galaxy (computed once per selection)."""

    galaxy_id: Any
    row: int | None  # row in ``run.details`` (and the latent map), None if absent
    z_true: float = np.nan
    z_phot: float = np.nan
    neighbour_ids: np.ndarray | None = None  # chosen neighbours, nearest first
    neighbour_z: np.ndarray | None = None
    k: int = 0
    w1: float = np.nan
    novelty: float = np.nan  # percentile of its neighbour distance among the training set's
    local_pit_hist: np.ndarray | None = None
    grid: np.ndarray | None = None  # the mosaic, None without images
    grid_note: str = ""


@dataclass
class MapData:
    """What the latent map needs of a run, computed once per process and shared by all
    sessions (read only).

    Attributes
    ----------
    frame : DataFrame
        One row per galaxy of ``run.details`` (see :func:`_map_frame`).
    colours : dict of str to str
        Colour variables: label shown -> column of ``frame``.
    styles : dict of str to dict
        Per column of ``colours``: ``palette``, ``clim`` and ``label``.
    extent : tuple of float
        (x0, x1, y0, y1): the projection's range with a margin, the map's initial view.
    """

    frame: pd.DataFrame
    colours: dict[str, str]
    styles: dict[str, dict[str, Any]]
    extent: tuple[float, float, float, float]
    _rasters: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def raster(self, colour_by: str) -> np.ndarray:
        """Mean of ``colour_by`` per pixel of the map's full extent (NaN where empty),
        (height, width) float32 with the lowest y first, as Bokeh's ``image`` wants it.
        Computed on first use, then shared."""
        with self._lock:
            if colour_by not in self._rasters:
                x0, x1, y0, y1 = self.extent
                canvas = ds.Canvas(
                    plot_width=RASTER_SHAPE[1],
                    plot_height=RASTER_SHAPE[0],
                    x_range=(x0, x1),
                    y_range=(y0, y1),
                )
                # One column name for every variable: datashader compiles its
                # aggregation once per column name (a second or two each).
                points = pd.DataFrame(
                    {"x": self.frame["x"], "y": self.frame["y"], "value": self.frame[colour_by]}
                )
                agg = canvas.points(points, "x", "y", agg=ds.mean("value"))
                self._rasters[colour_by] = np.asarray(agg.data, dtype=np.float32)
            return self._rasters[colour_by]


_shared: dict[int, tuple[weakref.ref, MapData]] = {}
_shared_lock = threading.Lock()


def map_data(run: RunData) -> MapData:
    """The run's :class:`MapData`, computed by the first session that shows the run.

    Keyed by the run object (``load_run`` gives every session the same one); a weak
    reference checks that a key is not the id of a run since collected, and drops the
    entry with its run.
    """
    with _shared_lock:
        entry = _shared.get(id(run))
        if entry is not None and entry[0]() is run:
            return entry[1]
        data = _map_data(run)
        key = id(run)
        _shared[key] = (weakref.ref(run, lambda _ref, key=key: _shared.pop(key, None)), data)
        return data


def _map_data(run: RunData) -> MapData:
    frame = _map_frame(run)
    colours = _colour_options(run, frame)
    styles = {column: _colour_style(frame, column, label) for label, column in colours.items()}
    x, y = frame["x"].to_numpy(), frame["y"].to_numpy()
    extent = (*_padded(x), *_padded(y)) if x.size else (0.0, 1.0, 0.0, 1.0)
    return MapData(frame=frame, colours=colours, styles=styles, extent=extent)


def _padded(values: np.ndarray, margin: float = 0.05) -> tuple[float, float]:
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = margin * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


class NeighbourBrowser(pn.viewable.Viewer):
    """CLAP's latent map and the chosen neighbours of a selected galaxy.

    Parameters
    ----------
    run : RunData
        The run shown (shared with other sessions; never modified here).

    Notes
    -----
    Construct one per session (``panel serve`` runs the page script per session): the
    selection and widgets are per user, the run's arrays are shared read-only.

    Changing ``colour_by`` recolours the map and reads nothing from disk; selecting a
    galaxy moves the map's marker (the map itself is not redrawn) and updates the
    neighbour panels, which read that galaxy's neighbour row and its images.

    Above :attr:`RASTERIZE_ABOVE` galaxies the map is one image of the full extent
    (:data:`RASTER_SHAPE` pixels, each the mean of the colour variable over its
    galaxies), computed once per colour variable per process: zooming in enlarges its
    pixels rather than re-aggregating, which keeps pan and zoom free of server work.
    """

    #: Above this many galaxies the map is rasterized on the server (datashader, mean of
    #: the colour variable per pixel) instead of sent to the browser as points.
    RASTERIZE_ABOVE: ClassVar[int] = 20_000
    #: Neighbours shown as images, nearest first, and the columns of their grid.
    GRID_SIZE: ClassVar[int] = 16
    GRID_COLUMNS: ClassVar[int] = 4

    run = param.ClassSelector(class_=RunData, doc="the run shown")
    galaxy_id = param.Parameter(default=None, doc="id of the selected galaxy")
    colour_by = param.Selector(default="z_true", objects=["z_true"], doc="colour of the map")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        run = self.run
        alert = problems_alert(run) if run is not None else None
        if run is None or run.details is None or run.galaxies is None:
            # Nothing to browse: say why (the store's problems name the command to run).
            self._layout = pn.Column(alert or _no_neighbours_alert(), sizing_mode="stretch_width")
            return
        self._data = map_data(run)
        self._frame = self._data.frame
        self._positions = run.details.projection  # (N, 2), shared: read only
        self.param.colour_by.objects = self._data.colours
        self._selection: Selection | None = None
        self._rasterized = len(self._frame) > self.RASTERIZE_ABOVE

        self._colour_select = pn.widgets.Select.from_param(
            self.param.colour_by, label="Colour by", css_classes=["ck-colour-by"], width=260
        )
        self._search = pn.widgets.TextInput(
            label="Find a galaxy", placeholder="galaxy id", css_classes=["ck-search"], width=260
        )
        self._search.param.watch(self._on_search, "value")
        self._message = pn.pane.Markdown(
            "", visible=False, css_classes=["ck-search-message"], styles={"color": "#b00020"}
        )
        self._map = _bokeh_pane(
            self._map_figure(), "ck-latent-map", sizing_mode="stretch_width", height=MAP_HEIGHT
        )

        self._title = pn.pane.Markdown(css_classes=["ck-neighbour-title"], margin=(0, 10))
        self._grid = _bokeh_pane(self._grid_figure(), "ck-neighbour-grid")
        self._grid_note = pn.pane.Markdown(visible=False, css_classes=["ck-neighbour-no-images"])
        self._caption = pn.pane.HTML(css_classes=["ck-neighbour-caption"], margin=(0, 10))
        self._z_hist = _bokeh_pane(self._z_figure(), "ck-neighbour-z")
        self._pit_hist = _bokeh_pane(self._pit_figure(), "ck-local-pit")
        self._galaxy = GalaxyView(run=run)

        controls = pn.Row(self._colour_select, pn.Column(self._search, self._message))
        neighbours = pn.Column(self._title, self._grid, self._grid_note, self._caption, width=420)
        self._links = pn.pane.Markdown(css_classes=["ck-galaxy-links"], margin=(0, 10))
        neighbours.extend([*self._download_rows(), self._links])
        self._layout = pn.Column(
            *([alert] if alert is not None else []),
            controls,
            pn.Row(
                pn.Column(self._map, sizing_mode="stretch_width"),
                neighbours,
                sizing_mode="stretch_width",
            ),
            pn.Row(self._z_hist, self._pit_hist),
            self._galaxy,
            sizing_mode="stretch_width",
            css_classes=["ck-neighbour-browser"],
        )
        self._recolour()
        if self.galaxy_id is None and run.details.ids.size:
            self.galaxy_id = plain_id(run.details.ids[0])
        else:
            self._show()
        self._bind_url()

    def __panel__(self) -> pn.Column:
        return self._layout

    # ------------------------------------------------------------------ selection

    def select(self, galaxy_id: Any) -> None:
        """Show ``galaxy_id``'s neighbours (one message to the browser for all panels)."""
        with pn.io.hold():
            self.galaxy_id = galaxy_id

    def tap(self, x: float | None, y: float | None) -> None:
        """Select the galaxy nearest to (x, y), in the map's coordinates (a click)."""
        if x is None or y is None or not self._positions.shape[0]:
            return
        self.select(plain_id(self.run.details.ids[nearest(self._positions, x, y)]))

    def _on_search(self, event: param.parameterized.Event) -> None:
        text = (event.new or "").strip()
        if not text:
            self._message.visible = False
            return
        galaxy_id = self.run.parse_id(text)
        if galaxy_id is None:
            # An unknown id changes nothing but the message: the user keeps their galaxy.
            self._message.object = f"No galaxy with id '{html.escape(text)}' in this run"
            self._message.visible = True
            return
        self._message.visible = False
        self.select(galaxy_id)

    @param.depends("galaxy_id", watch=True)
    def _show(self) -> None:
        if self.run is None or self.run.details is None or self.run.galaxies is None:
            return  # only the alert is shown
        selection = self._selected()
        with pn.io.hold():
            self._title.object = _title(selection)
            has_grid = selection.grid is not None
            # A Bokeh pane copies its figure's ``visible`` onto itself: set both.
            self._grid.object.visible = self._grid.visible = has_grid
            self._grid_note.visible = not has_grid
            self._grid_note.object = selection.grid_note
            self._caption.object = _caption(selection, self.GRID_SIZE, self.GRID_COLUMNS)
            self._update_plots(selection)
            self._galaxy.galaxy_id = selection.galaxy_id
            self._links.object = self._links_text(selection.galaxy_id)

    def _selected(self) -> Selection:
        """The current galaxy's :class:`Selection`, computed on its first use only."""
        if self._selection is None or self._selection.galaxy_id != self.galaxy_id:
            self._selection = self._select(self.galaxy_id)
        return self._selection

    def _select(self, galaxy_id: Any) -> Selection:
        run = self.run
        row = self._details_row(galaxy_id)
        if row is None:
            return Selection(galaxy_id, None)
        found = run.neighbours(galaxy_id)
        ids, z = found["ids"], found["z"]
        grid, note = None, ""
        try:
            images = run.images(list(ids[: self.GRID_SIZE]))
        except (OSError, KeyError, ValueError) as err:  # a damaged galaxy file
            images, note = None, f"*The neighbours' images cannot be read ({err}).*"
        if images is not None:
            bands, pixels = images  # (n, B, H, W)
            tiles = np.stack([colour_composite(image, bands) for image in pixels])
            grid = padded_mosaic(tiles, self.GRID_SIZE, self.GRID_COLUMNS)
        elif not note:
            note = "*No images: the run's galaxy file is not available (see the warning above).*"
        return Selection(
            galaxy_id=galaxy_id,
            row=row,
            z_true=float(self._frame["z_true"].iat[row]),
            z_phot=float(self._frame["z_phot"].iat[row]) if "z_phot" in self._frame else np.nan,
            neighbour_ids=ids,
            neighbour_z=z,
            k=found["k"],
            w1=found["w1"],
            novelty=found["novelty"],
            local_pit_hist=found["local_pit_hist"],
            grid=grid,
            grid_note=note,
        )

    def _details_row(self, galaxy_id: Any) -> int | None:
        return None if galaxy_id is None else self.run.details_row(galaxy_id)

    # ------------------------------------------------------------------ URL, downloads

    def _bind_url(self) -> None:
        """The galaxy and the map's colour in the page's URL (:mod:`clapkit_app.urlstate`)."""
        self.url = UrlState(
            [
                UrlField(
                    "galaxy",
                    lambda: None if self.galaxy_id is None else str(self.galaxy_id),
                    self._show_url_galaxy,
                    [(self, "galaxy_id")],
                ),
                choice_field("colour", self._colour_select, "colour variable"),
            ]
        )
        self._layout.insert(0, self.url.message)
        self.url.bind()

    def _show_url_galaxy(self, text: str) -> str | None:
        galaxy_id = self.run.parse_id(text)
        if galaxy_id is None or self.run.details_row(galaxy_id) is None:
            return unknown_id_message(text, self.run.details.ids, "in CLAP's neighbour file")
        self.galaxy_id = galaxy_id
        return None

    def _links_text(self, galaxy_id: Any) -> str:
        pages = {}
        if galaxy_id is not None and self.run.has_galaxy(galaxy_id):
            pages["calibration"] = "its PDFs in the calibration explorer"
        if galaxy_id is not None and translation_has(self.run.root, galaxy_id):
            pages["translation"] = "its translated images"
        return galaxy_links(galaxy_id, pages)

    def _download_rows(self) -> list[pn.Row]:
        return [
            pn.Row(
                pn.pane.HTML("Neighbours:", margin=(8, 0, 0, 10)),
                download_buttons(
                    self._neighbour_table,
                    lambda: f"neighbours galaxy {self.galaxy_id}",
                    "ck-neighbours-download",
                ),
            ),
            pn.Row(
                pn.pane.HTML("PDFs:", margin=(8, 0, 0, 10)),
                download_buttons(
                    self._pdf_table, lambda: f"pdfs galaxy {self.galaxy_id}", "ck-pdfs-download"
                ),
            ),
        ]

    def _neighbour_table(self) -> Any:
        """The chosen neighbours of the galaxy shown, nearest first, with their spec-z."""
        selection = self._selected()
        if selection.neighbour_ids is None:
            return None
        ids = np.asarray([plain_id(i) for i in selection.neighbour_ids])
        return make_table(
            {
                "rank": np.arange(1, ids.size + 1),
                "id": ids,
                "z_spec": np.asarray(selection.neighbour_z, dtype=float),
            },
            units={"z_spec": ""},
            descriptions={
                "rank": "1 = nearest in CLAP's latent space",
                "id": "training galaxy",
                "z_spec": "its spectroscopic redshift",
            },
            meta={
                "RUN": str(self.run.root),
                "GALAXY": str(selection.galaxy_id),
                "K": int(selection.k),
                "Z_TRUE": float(selection.z_true),
            },
        )

    def _pdf_table(self) -> Any:
        galaxy_id = self.galaxy_id
        if galaxy_id is None or not self.run.has_galaxy(galaxy_id) or self.run.edges is None:
            return None
        meta = {"RUN": str(self.run.root), "GALAXY": str(galaxy_id)}
        return pdf_table(self.run.edges, self.run.pdfs(galaxy_id), meta)

    # ------------------------------------------------------------------ plots

    def _map_figure(self) -> Any:
        """The latent map: the galaxies (points, or one image above
        :attr:`RASTERIZE_ABOVE`), a colour bar and the selected galaxy's marker."""
        x0, x1, y0, y1 = self._data.extent
        fig = figure(
            title="Latent space of the test galaxies (click to select; ★ selected)",
            x_axis_label="projection 1",
            y_axis_label="projection 2",
            x_range=Range1d(x0, x1),
            y_range=Range1d(y0, y1),
            tools="pan,wheel_zoom,box_zoom,reset,save",
            active_scroll="wheel_zoom",
            sizing_mode="stretch_width",
            height=MAP_HEIGHT,
        )
        self._mapper = LinearColorMapper(palette=Viridis256, nan_color=(0, 0, 0, 0))
        colours = {"field": "value", "transform": self._mapper}
        if self._rasterized:
            # The image's pixels, not its galaxies, go to the browser.
            self._points = ColumnDataSource({"image": [self._data.raster(self.colour_by)]})
            galaxies = fig.image(
                image="image",
                x=x0,
                y=y0,
                dw=x1 - x0,
                dh=y1 - y0,
                source=self._points,
                color_mapper=self._mapper,
                name="galaxies",
            )
        else:
            frame = self._frame
            columns = ["x", "y", "id", "z_true", *(["z_phot"] if "z_phot" in frame else [])]
            data = {c: frame[c].to_numpy() for c in columns}
            self._points = ColumnDataSource(data | {"value": frame[self.colour_by].to_numpy()})
            galaxies = fig.scatter(
                "x",
                "y",
                source=self._points,
                size=4,
                fill_color=colours,
                line_color=colours,
                name="galaxies",
            )
        self._hover = HoverTool(renderers=[galaxies])
        fig.add_tools(self._hover)
        self._colorbar = ColorBar(color_mapper=self._mapper)
        fig.add_layout(self._colorbar, "right")
        self._marker = ColumnDataSource({"x": [], "y": []})
        marker = fig.scatter(
            "x",
            "y",
            source=self._marker,
            marker="star",
            size=24,
            fill_color="white",
            line_color="black",
            line_width=2,
            name="marker",
        )
        # An inspecting tap tool shows that the map takes clicks and selects no glyph;
        # the click itself arrives as a Tap event, in data coordinates.
        fig.add_tools(TapTool(renderers=[marker], behavior="inspect"))
        fig.on_event(Tap, self._on_tap)
        return fig

    def _on_tap(self, event: Tap) -> None:
        self.tap(event.x, event.y)

    @param.depends("colour_by", watch=True)
    def _recolour(self) -> None:
        """Recolour the map: new values (points) or image (rasterized), colour map and
        labels; the positions stay in the browser."""
        style = self._data.styles[self.colour_by]
        with pn.io.hold():
            if self._rasterized:
                self._points.data.update(image=[self._data.raster(self.colour_by)])
                self._hover.tooltips = [(f"mean {style['label']}", "@image{0.000}")]
            else:
                self._points.data.update(value=self._frame[self.colour_by].to_numpy())
                shown = {"z_true": "true z", "z_phot": "photo-z"}
                # The coloured variable once: a redshift the tooltip already shows is not
                # repeated under its longer name.
                self._hover.tooltips = [
                    ("id", "@id"),
                    *[
                        (name, f"@{column}{{0.000}}")
                        for column, name in shown.items()
                        if column in self._frame
                    ],
                    *([] if self.colour_by in shown else [(style["label"], "@value{0.000}")]),
                ]
            self._mapper.update(
                palette=style["palette"], low=style["clim"][0], high=style["clim"][1]
            )
            self._colorbar.title = style["label"]

    def _grid_figure(self) -> Any:
        fig = figure(
            title="Nearest neighbours",
            width=PANEL_SIZE,
            height=PANEL_SIZE,
            min_border=GRID_BORDER,
            x_range=Range1d(0, 1),
            y_range=Range1d(0, 1),
            tools="",
            toolbar_location=None,
        )
        fig.axis.visible = False
        fig.grid.visible = False
        self._grid_source = ColumnDataSource({"image": [], "dw": [], "dh": []})
        fig.image_rgba(
            image="image", x=0, y=0, dw="dw", dh="dh", source=self._grid_source, name="grid"
        )
        # Each tile's id and spec-z, on a solid background (readable on any image).
        self._tile_labels = ColumnDataSource({"x": [], "y": [], "text": []})
        label_on_stamps(
            fig, "7pt", "tile_labels", x="x", y="y", text="text", source=self._tile_labels
        )
        self._grid_ranges = fig.x_range, fig.y_range
        return fig

    def _z_figure(self) -> Any:
        fig = figure(
            title="Spec-z of the k chosen neighbours (dashed: true z)",
            width=2 * PANEL_SIZE,
            height=PANEL_SIZE,
            x_axis_label="z",
            y_axis_label="neighbours",
            tools=PLOT_TOOLS,
        )
        edges = self.run.edges
        self._z_source = ColumnDataSource(
            {"left": edges[:-1], "right": edges[1:], "top": np.zeros(edges.size - 1)}
        )
        fig.quad(
            left="left",
            right="right",
            top="top",
            bottom=0,
            source=self._z_source,
            fill_color="#4c72b0",
            line_color=None,
            name="neighbour_z",
        )
        self._z_line = Span(
            location=float(edges[0]),
            dimension="height",
            line_color=IDEAL_COLOUR,
            line_dash="dashed",
            line_width=2,
            name="true_z",
        )
        fig.add_layout(self._z_line)
        fig.y_range.start = 0
        return fig

    def _pit_figure(self) -> Any:
        n_stored = self.run.details.local_pit_hist.shape[1]
        edges, _, _ = coarse_pit_histogram(np.zeros(n_stored), k=1)
        n_bins = edges.size - 1
        fig = figure(
            title="Local PIT histogram that chose k",
            width=PANEL_SIZE + 200,
            height=PANEL_SIZE,
            x_axis_label="PIT of the k neighbours",
            y_axis_label="fraction of the neighbours",
            tools=PLOT_TOOLS,
            x_range=Range1d(0.0, 1.0),
        )
        self._pit_band = ColumnDataSource(
            {"x": [0.0, 1.0], "lower": [np.nan] * 2, "upper": [np.nan] * 2}
        )
        calibrated_band(fig, self._pit_band)
        self._pit_source = ColumnDataSource(
            {"left": edges[:-1], "right": edges[1:], "top": np.zeros(n_bins)}
        )
        fig.quad(
            left="left",
            right="right",
            top="top",
            bottom=0,
            source=self._pit_source,
            fill_color="#8172b2",
            line_color="white",
            name="local_pit",
        )
        fig.line(
            [0.0, 1.0],
            [1.0 / n_bins] * 2,
            color=IDEAL_COLOUR,
            line_dash="dashed",
            line_width=2,
            legend_label="uniform",
            name="uniform",
        )
        outside_legend(fig)
        fig.y_range.start = 0
        return fig

    def _update_plots(self, selection: Selection) -> None:
        """Give the plots ``selection``'s arrays; only the changed columns are sent."""
        row = selection.row
        xy = self._positions[[row]] if row is not None else np.empty((0, 2))
        self._marker.data = {"x": xy[:, 0], "y": xy[:, 1]}

        if selection.grid is not None:
            height, width, _ = selection.grid.shape
            x_range, y_range = self._grid_ranges
            if (x_range.end, y_range.end) != (width, height):
                x_range.update(start=0, end=width)
                y_range.update(start=0, end=height)
                # As tall as the rows the tiles fill, so that the tiles stay square.
                frame = self._grid.object.width - 2 * GRID_BORDER
                self._grid.object.height = (
                    GRID_TITLE + 2 * GRID_BORDER + round(frame * height / width)
                )
            image = rgba_image(selection.grid)
            self._grid_source.data = {"image": [image], "dw": [width], "dh": [height]}
            self._tile_labels.data = self._tile_label_data(selection, width, height)
        else:
            self._tile_labels.data = {"x": [], "y": [], "text": []}
        shown = min(selection.k, self.GRID_SIZE)
        self._grid.object.title.text = (
            f"{shown} nearest neighbours of k = {selection.k}"
            if selection.k > shown
            else f"The k = {selection.k} nearest neighbours"
        )

        z = selection.neighbour_z if selection.neighbour_z is not None else np.empty(0)
        self._z_source.data.update(top=np.histogram(z, bins=self.run.edges)[0])
        known = np.isfinite(selection.z_true)
        self._z_line.update(
            location=selection.z_true if known else float(self.run.edges[0]), visible=known
        )

        n_bins = self._pit_source.data["top"].size
        if selection.local_pit_hist is None:
            top, band = np.zeros(n_bins), float("nan")
        else:
            _, top, band = coarse_pit_histogram(selection.local_pit_hist, selection.k)
        self._pit_source.data.update(top=top)
        uniform = 1.0 / n_bins
        self._pit_band.data = {
            "x": [0.0, 1.0],
            "lower": [max(uniform - band, 0.0)] * 2,
            "upper": [uniform + band] * 2,
        }

    def _tile_label_data(self, selection: Selection, width: int, height: int) -> dict:
        """Id and spec-z of each neighbour in the grid, at the top left of its tile."""
        n = min(selection.k, self.GRID_SIZE, len(selection.neighbour_ids))
        rows = -(-n // self.GRID_COLUMNS) if n else 1
        # The mosaic's pitch: tiles and the 2-pixel gaps between them (images.mosaic).
        tile_w, tile_h = (width + 2) / self.GRID_COLUMNS, (height + 2) / rows
        cells = np.arange(n)
        return {
            "x": (cells % self.GRID_COLUMNS) * tile_w + 1,
            "y": height - (cells // self.GRID_COLUMNS) * tile_h - 1,
            "text": [
                f"{plain_id(gid)}\nz={z:.3f}"
                for gid, z in zip(
                    selection.neighbour_ids[:n], selection.neighbour_z[:n], strict=True
                )
            ],
        }


def _bokeh_pane(fig: Any, css_class: str, **params: Any) -> pn.pane.Bokeh:
    """``fig`` in a pane with the CSS class ``css_class``, on the figure itself too: the
    pane renders as the figure's own element, which takes its classes from the figure."""
    fig.css_classes = [css_class]
    return pn.pane.Bokeh(fig, css_classes=[css_class], **params)


def _map_frame(run: RunData) -> pd.DataFrame:
    """One row per galaxy of ``run.details`` (its order, the projection's), with the
    colour variables of :func:`_colour_options` taken from ``run.galaxies`` by id."""
    details, galaxies = run.details, run.galaxies
    gal_ids = galaxies["id"].to_numpy()
    if gal_ids.shape == details.ids.shape and np.array_equal(gal_ids, details.ids):
        rows = np.arange(gal_ids.size)  # the usual case: both in prediction order
    else:
        rows = pd.Index(gal_ids).get_indexer(details.ids)  # -1: not evaluated

    def column(name: str) -> np.ndarray:
        values = galaxies[name].to_numpy(dtype=np.float64)
        return np.where(rows >= 0, values[rows], np.nan)

    method = _photoz_method(run)
    columns = {
        "x": details.projection[:, 0],
        "y": details.projection[:, 1],
        "z_true": column("z_true"),
        # float64 like the others: datashader compiles one mean aggregation, not two.
        "k": details.k.astype(np.float64),
        "id": details.ids,
    }
    if method is not None:
        columns["z_phot"] = column(f"{method}.z_phot")
    if "clap.pit" in galaxies:
        columns["pit"] = column("clap.pit")
    columns["novelty"] = details.novelty.astype(np.float64)
    return pd.DataFrame(columns)


def _photoz_method(run: RunData) -> str | None:
    """CLAP's ensemble if the run has its photo-z, else the first method that has one."""
    candidates = ["clap", *run.methods]
    return next((m for m in candidates if f"{m}.z_phot" in run.galaxies), None)


def _colour_options(run: RunData, frame: pd.DataFrame) -> dict[str, str]:
    """The colour variables the run has: label shown -> column of the map frame."""
    options = {"true redshift": "z_true"}
    if "z_phot" in frame:
        options[f"photo-z ({method_label(_photoz_method(run))})"] = "z_phot"
    options["chosen k"] = "k"
    if "pit" in frame:
        options[f"PIT ({method_label('clap')})"] = "pit"
    options["novelty (percentile of the distance to the training set)"] = "novelty"
    return options


def _colour_style(frame: pd.DataFrame, colour_by: str, label: str) -> dict[str, Any]:
    """Palette, range and label of a colour variable; both redshifts share a range so
    that true and photometric redshifts compare by eye."""
    if colour_by in ("z_true", "z_phot"):
        clim = (0.0, _finite_max(frame["z_true"]))
        return {"palette": PALETTES["viridis"], "clim": clim, "label": label}
    if colour_by == "pit":
        return {"palette": PALETTES["coolwarm"], "clim": (0.0, 1.0), "label": label}
    if colour_by == "novelty":
        return {"palette": PALETTES["plasma"], "clim": (0.0, 100.0), "label": label}
    values = frame[colour_by].to_numpy()
    finite = values[np.isfinite(values)]
    clim = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return {"palette": PALETTES["plasma"], "clim": clim, "label": label}


def _finite_max(values: pd.Series) -> float:
    finite = values.to_numpy()[np.isfinite(values.to_numpy())]
    return float(finite.max()) if finite.size else 1.0


def _title(selection: Selection) -> str:
    if selection.galaxy_id is None:
        return "Click on the map or type an id to pick a galaxy."
    if selection.row is None:
        return (
            f"### Galaxy {selection.galaxy_id}\n\nThis galaxy has no CLAP neighbours in this run."
        )
    photoz = f", photo-z {selection.z_phot:.4f}" if np.isfinite(selection.z_phot) else ""
    return (
        f"### Galaxy {selection.galaxy_id}\n\n"
        f"True redshift {selection.z_true:.4f}{photoz}. CLAP chose **k = {selection.k}** "
        f"training neighbours, whose PIT histogram is at W1 = {selection.w1:.4f} from uniform. "
        + _novelty_sentence(selection.novelty)
    )


def _novelty_sentence(percentile: float) -> str:
    """How novel a galaxy is to the training set, in words (empty when unknown)."""
    if not np.isfinite(percentile):
        return ""
    text = (
        f"Its neighbours are farther than those of **{percentile:.1f}%** of the training "
        "galaxies (novelty percentile)"
    )
    if percentile > NOVEL_ABOVE:
        return text + ": **the training set does not cover it; treat its PDF with suspicion.**"
    return text + "."


def _caption(selection: Selection, size: int, columns: int) -> str:
    """The ids and spec-z of the neighbours in the grid, laid out as the grid."""
    if selection.neighbour_ids is None:
        return ""
    cells = [
        f"<td><b>{i + 1}</b> {html.escape(str(plain_id(gid)))}<br>z = {z:.3f}</td>"
        for i, (gid, z) in enumerate(
            zip(selection.neighbour_ids[:size], selection.neighbour_z[:size], strict=True)
        )
    ]
    rows = [
        "<tr>" + "".join(cells[i : i + columns]) + "</tr>" for i in range(0, len(cells), columns)
    ]
    more = selection.k - len(cells)
    tail = f"<p>… and {more} more of the k = {selection.k}.</p>" if more > 0 else ""
    head = "<p>Nearest first, row by row: id and spec-z.</p>"
    return head + "<table style='font-size: 0.8em'>" + "".join(rows) + "</table>" + tail


def _no_neighbours_alert() -> pn.pane.Alert:
    return pn.pane.Alert(
        "No CLAP neighbours to show: run `clapkit train --data DATA --run RUN --method clap`, "
        "`clapkit predict --run RUN --data DATA` and `clapkit evaluate --run RUN`.",
        alert_type="warning",
        sizing_mode="stretch_width",
    )
