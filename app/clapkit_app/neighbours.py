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
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, ClassVar

import datashader as ds
import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from holoviews.operation.datashader import rasterize

from clapkit_app.galaxy import GalaxyView
from clapkit_app.images import colour_composite, mosaic
from clapkit_app.page import problems_alert
from clapkit_app.store import RunData, method_label

# Options are validated against a loaded plotting backend; load bokeh's without the
# notebook machinery of ``hv.extension``.
hv.renderer("bokeh")

#: Height of the latent map, in screen pixels.
MAP_HEIGHT = 480
#: Side of the neighbour mosaic and height of the histograms, in screen pixels.
PANEL_SIZE = 340


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
    """``tiles`` (n, H, W, 3), n <= ``size``, in a grid of ``size`` tiles (white where
    there are fewer), so that every galaxy's mosaic has the same shape.

    Examples
    --------
    >>> padded_mosaic(np.zeros((3, 4, 4, 3), np.uint8), size=16, columns=4).shape
    (22, 22, 3)
    """
    n, h, w, c = tiles.shape
    full = np.full((size, h, w, c), 255, dtype=np.uint8)
    full[:n] = tiles[:size]
    return mosaic(full, columns)


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
    local_pit_hist: np.ndarray | None = None
    grid: np.ndarray | None = None  # the mosaic, None without images
    grid_note: str = ""


class NeighbourBrowser(pn.viewable.Viewer):
    """CLAP's latent map and the chosen neighbours of a selected galaxy.

    Parameters
    ----------
    run : RunData
        The run shown (shared with other sessions; never modified here).

    Attributes
    ----------
    tap : holoviews.streams.Tap
        Clicks on the latent map; each selects the galaxy nearest to the click.

    Notes
    -----
    Construct one per session (``panel serve`` runs the page script per session): the
    selection and widgets are per user, the run's arrays are shared read-only.

    Changing ``colour_by`` recolours the map and reads nothing from disk; selecting a
    galaxy moves the map's marker (the map itself is not redrawn) and updates the
    neighbour panels, which read that galaxy's neighbour row and its images.
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
        self._frame = _map_frame(run)
        self._positions = run.details.projection  # (N, 2), shared: read only
        self._rows = pd.Index(run.details.ids)
        self._colours = _colour_options(run, self._frame)
        self.param.colour_by.objects = self._colours
        self._selection: Selection | None = None

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
        self._base = self._latent_map()
        self.tap = hv.streams.Tap(source=self._base, x=None, y=None)
        self.tap.add_subscriber(self._on_tap)
        marker = hv.DynamicMap(pn.bind(self._marker, self.param.galaxy_id))
        self._map = pn.pane.HoloViews(
            (self._base * marker).opts(
                responsive=True,
                height=MAP_HEIGHT,
                title="Latent space of the test galaxies (click to select; ★ selected)",
                xlabel="projection 1",
                ylabel="projection 2",
            ),
            css_classes=["ck-latent-map"],
            sizing_mode="stretch_width",
            height=MAP_HEIGHT,
            # Its x and y are the projection's, not the images' pixels of other panes.
            linked_axes=False,
        )

        self._title = pn.pane.Markdown(css_classes=["ck-neighbour-title"], margin=(0, 10))
        self._grid = pn.pane.HoloViews(
            hv.DynamicMap(pn.bind(self._grid_image, self.param.galaxy_id)),
            css_classes=["ck-neighbour-grid"],
            linked_axes=False,
        )
        self._grid_note = pn.pane.Markdown(visible=False, css_classes=["ck-neighbour-no-images"])
        self._caption = pn.pane.HTML(css_classes=["ck-neighbour-caption"], margin=(0, 10))
        self._z_hist = pn.pane.HoloViews(
            hv.DynamicMap(pn.bind(self._z_histogram, self.param.galaxy_id)),
            css_classes=["ck-neighbour-z"],
            linked_axes=False,
        )
        self._pit_hist = pn.pane.HoloViews(
            hv.DynamicMap(pn.bind(self._pit_histogram, self.param.galaxy_id)),
            css_classes=["ck-local-pit"],
            linked_axes=False,
        )
        self._galaxy = GalaxyView(run=run)

        controls = pn.Row(self._colour_select, pn.Column(self._search, self._message))
        neighbours = pn.Column(self._title, self._grid, self._grid_note, self._caption, width=420)
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
        if self.galaxy_id is None and run.details.ids.size:
            self.galaxy_id = _plain(run.details.ids[0])
        else:
            self._show()

    def __panel__(self) -> pn.Column:
        return self._layout

    # ------------------------------------------------------------------ selection

    def select(self, galaxy_id: Any) -> None:
        """Show ``galaxy_id``'s neighbours (one message to the browser for all panels)."""
        with pn.io.hold():
            self.galaxy_id = galaxy_id

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

    def _on_tap(self, x: float | None = None, y: float | None = None, **_: Any) -> None:
        if x is None or y is None:
            return
        self.select(_plain(self.run.details.ids[nearest(self._positions, x, y)]))

    @param.depends("galaxy_id", watch=True)
    def _show(self) -> None:
        if self.run is None or self.run.details is None or self.run.galaxies is None:
            return  # only the alert is shown
        selection = self._selected()
        with pn.io.hold():
            self._title.object = _title(selection)
            has_grid = selection.grid is not None
            self._grid.visible, self._grid_note.visible = has_grid, not has_grid
            self._grid_note.object = selection.grid_note
            self._caption.object = _caption(selection, self.GRID_SIZE, self.GRID_COLUMNS)
            self._galaxy.galaxy_id = selection.galaxy_id

    def _selected(self) -> Selection:
        """The current galaxy's :class:`Selection`, computed on its first use only: the
        panels each ask for it, and it reads from disk."""
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
            local_pit_hist=found["local_pit_hist"],
            grid=grid,
            grid_note=note,
        )

    def _details_row(self, galaxy_id: Any) -> int | None:
        if galaxy_id is None:
            return None
        try:
            row = self._rows.get_indexer([galaxy_id])[0]
        except (TypeError, ValueError):  # an id of another type than the stored ones
            return None
        return int(row) if row >= 0 else None

    # ------------------------------------------------------------------ plots

    def _latent_map(self) -> hv.DynamicMap:
        """The map without the marker: a DynamicMap on ``colour_by`` only."""
        frame = self._frame
        rasterized = len(frame) > self.RASTERIZE_ABOVE
        # The colour variable is always the column "value": HoloViews does not re-map a
        # plot's colours to another column on update, and datashader compiles its
        # aggregation once per column name (a second or two each).
        hover = [c for c in ("id", "z_true", "z_phot") if c in frame and not rasterized]
        frames: dict[str, pd.DataFrame] = {}

        def values(colour_by: str) -> hv.Points:
            if colour_by not in frames:
                columns = {"x": frame["x"], "y": frame["y"], "value": frame[colour_by]}
                frames[colour_by] = pd.DataFrame(columns | {c: frame[c] for c in hover})
            value = hv.Dimension("value", label=self._colour_style(colour_by)["label"])
            return hv.Points(frames[colour_by], ["x", "y"], [value, *hover])

        def styled(element: hv.Element, colour_by: str) -> hv.Element:
            s = self._colour_style(colour_by)
            if rasterized:  # rasterize names the aggregate "x_y value"; hover shows this
                element = element.redim.label(**{element.vdims[0].name: f"mean {s['label']}"})
            return element.opts(
                cmap=s["cmap"],
                clim=s["clim"],
                clabel=s["label"],
                colorbar=True,
                tools=["hover"],
                hooks=[self._colorbar_title],
            )

        points = hv.DynamicMap(pn.bind(values, self.param.colour_by))
        if rasterized:
            # The server aggregates (mean of the colour variable per pixel); the browser
            # gets an image of the plot's size, whatever the number of galaxies.
            return rasterize(points, aggregator=ds.mean("value")).apply(
                styled, colour_by=self.param.colour_by
            )
        return points.apply(styled, colour_by=self.param.colour_by).opts(
            color="value",
            size=4,
            hover_tooltips=[
                ("id", "@id"),
                ("true z", "@z_true{0.000}"),
                *([("photo-z", "@z_phot{0.000}")] if "z_phot" in frame else []),
            ],
            # The tap tool selects glyphs; keep the map unchanged when it does.
            nonselection_alpha=1.0,
            selection_alpha=1.0,
        )

    def _colorbar_title(self, plot: Any, element: hv.Element) -> None:
        # HoloViews titles the colour bar when it draws the plot only; hooks also run on
        # updates, so the title follows ``colour_by``.
        for name, handle in plot.handles.items():
            if name.endswith("colorbar"):
                handle.title = self._colour_style(self.colour_by)["label"]

    def _colour_style(self, colour_by: str) -> dict[str, Any]:
        """Colour map, range and label of a colour variable; both redshifts share a range
        so that true and photometric redshifts compare by eye."""
        label = next(k for k, v in self._colours.items() if v == colour_by)
        values = self._frame[colour_by].to_numpy()
        if colour_by in ("z_true", "z_phot"):
            clim = (0.0, float(np.nanmax(self._frame["z_true"])))
            return {"cmap": "viridis", "clim": clim, "label": label}
        if colour_by == "pit":
            return {"cmap": "coolwarm", "clim": (0.0, 1.0), "label": label}
        return {
            "cmap": "plasma",
            "clim": (float(np.nanmin(values)), float(np.nanmax(values))),
            "label": label,
        }

    def _marker(self, galaxy_id: Any) -> hv.Points:
        row = self._details_row(galaxy_id)
        xy = self._positions[[row]] if row is not None else np.empty((0, 2))
        return hv.Points(xy, ["x", "y"]).opts(
            marker="star", size=24, color="white", line_color="black", line_width=2
        )

    def _grid_image(self, galaxy_id: Any) -> hv.RGB:
        grid = self._selected().grid
        if grid is None:  # hidden, but a DynamicMap needs a frame of the same type
            grid = np.full((2, 2, 3), 255, dtype=np.uint8)
        height, width, _ = grid.shape
        return hv.RGB(grid, bounds=(0, 0, width, height)).opts(
            width=PANEL_SIZE,
            height=PANEL_SIZE,
            xaxis=None,
            yaxis=None,
            toolbar=None,
            framewise=True,
            title=f"{self.GRID_SIZE} nearest neighbours",
        )

    def _z_histogram(self, galaxy_id: Any) -> hv.Overlay:
        selection = self._selected()
        edges = self.run.edges
        z = selection.neighbour_z if selection.neighbour_z is not None else np.empty(0)
        counts, _ = np.histogram(z, bins=edges)
        bars = hv.Histogram((edges, counts), kdims="z", vdims="neighbours").opts(
            color="#4c72b0", line_color=None, framewise=True
        )
        z_true = selection.z_true if np.isfinite(selection.z_true) else float(edges[0])
        line = hv.VLine(z_true).opts(
            color="#d62728",
            line_dash="dashed",
            line_width=2,
            alpha=1.0 if np.isfinite(selection.z_true) else 0.0,
        )
        return (bars * line).opts(
            width=2 * PANEL_SIZE,
            height=PANEL_SIZE,
            title="Spec-z of the k chosen neighbours (dashed: true z)",
            show_grid=True,
        )

    def _pit_histogram(self, galaxy_id: Any) -> hv.Overlay:
        selection = self._selected()
        n_bins = self.run.details.local_pit_hist.shape[1]
        hist = selection.local_pit_hist
        hist = hist if hist is not None else np.zeros(n_bins)
        bars = hv.Histogram(
            (np.linspace(0.0, 1.0, n_bins + 1), hist), kdims="PIT", vdims="fraction"
        ).opts(color="#8172b2", line_color=None, framewise=True)
        uniform = hv.HLine(1.0 / n_bins).opts(color="black", line_dash="dashed", line_width=2)
        return (bars * uniform).opts(
            width=PANEL_SIZE + 60,
            height=PANEL_SIZE,
            title="Local PIT histogram that chose k",
            show_grid=True,
        )


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
    return options


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
        f"training neighbours, whose PIT histogram is at W1 = {selection.w1:.4f} from uniform."
    )


def _caption(selection: Selection, size: int, columns: int) -> str:
    """The ids and spec-z of the neighbours in the grid, laid out as the grid."""
    if selection.neighbour_ids is None:
        return ""
    cells = [
        f"<td><b>{i + 1}</b> {html.escape(str(_plain(gid)))}<br>z = {z:.3f}</td>"
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


def _plain(value: Any) -> Any:
    """A NumPy scalar id as a Python one (it prints and compares as users type it)."""
    return value.item() if hasattr(value, "item") else value


def _no_neighbours_alert() -> pn.pane.Alert:
    return pn.pane.Alert(
        "No CLAP neighbours to show: run `clapkit train --data DATA --run RUN --method clap`, "
        "`clapkit predict --run RUN --data DATA` and `clapkit evaluate --run RUN`.",
        alert_type="warning",
        sizing_mode="stretch_width",
    )
