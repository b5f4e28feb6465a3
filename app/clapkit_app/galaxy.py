"""One galaxy as the dashboards show it: its images, every method's PDF and its catalog row.

:class:`GalaxyView` is shared by the calibration explorer (the galaxy picked in its table)
and the neighbour browser (the galaxy whose neighbours are shown). Its two figures are
plain Bokeh figures built once per run and session: picking another galaxy assigns new
arrays to their data sources (one document message) instead of re-rendering a HoloViews
plot, which cost a few hundred milliseconds of server time per galaxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, LinearColorMapper, Range1d, Span
from bokeh.palettes import Greys256
from bokeh.plotting import figure

from clapkit_app.images import colour_composite, label_on_stamps, stretch_band
from clapkit_app.legends import outside_legend
from clapkit_app.methods import IDEAL_COLOUR, identity
from clapkit_app.store import RunData

#: Side of one band's thumbnail, in screen pixels.
THUMBNAIL = 76
#: Height of the PDF plot and the most the catalog table takes, in screen pixels.
PDF_HEIGHT = 300
#: Title of the PDF plot.
PDF_TITLE = "PDF of every method (dashed: true redshift)"
#: The title's look, the same with or without a galaxy: one line of one size (the
#: template's h3 is twice the size of its text, and wrapped in a narrow column).
TITLE_CSS = """
:host h3, :host p {
  font-size: 1.1rem;
  font-weight: 600;
  line-height: 1.4;
  margin: 0.3em 0;
  white-space: nowrap;
  overflow: hidden;
  text-overflow: ellipsis;
}
"""
#: Tools of the PDF plot (Bokeh's defaults less the ones that change nothing here).
PDF_TOOLS = "pan,wheel_zoom,box_zoom,reset,save"


def pdf_steps(pdfs: dict[str, np.ndarray], edges: np.ndarray) -> dict[str, np.ndarray]:
    """Every method's PDF of one galaxy as a step curve of its density.

    Parameters
    ----------
    pdfs : dict of str to ndarray
        Probability of each redshift bin, per method (:meth:`RunData.pdfs`).
    edges : ndarray
        The bins' edges (``len(p) + 1``).

    Returns
    -------
    dict of str to ndarray
        ``"z"``: the steps' x (each inner edge twice), and per method its density at
        those points (probability over bin width: comparable across binnings).

    Examples
    --------
    >>> edges = np.linspace(0.0, 1.0, 5)
    >>> steps = pdf_steps({"clap": np.array([0.0, 0.5, 0.5, 0.0])}, edges)
    >>> steps["z"].tolist()
    [0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0]
    >>> float(steps["clap"].max())  # 0.5 per bin of width 0.25
    2.0
    """
    widths = np.diff(edges)
    # Steps drawn here, one array op per curve: a line glyph draws them as they are.
    steps = {"z": np.repeat(np.asarray(edges, dtype=float), 2)[1:-1]}
    for method, p in pdfs.items():
        steps[method] = np.repeat(np.asarray(p, dtype=float) / widths, 2)
    return steps


def catalog_frame(row: dict[str, Any]) -> pd.DataFrame:
    """A catalog row as a two-column (name, value) table, floats to 5 significant digits.

    Examples
    --------
    >>> catalog_frame({"id": 7, "z": 0.123456789, "split": "test"}).to_numpy().tolist()
    [['id', '7'], ['z', '0.12346'], ['split', 'test']]
    """
    values = [f"{v:.5g}" if isinstance(v, float) else str(v) for v in row.values()]
    return pd.DataFrame({"name": list(row), "value": values})


def _gap(width: int) -> int:
    """Pixels between two thumbnails of images ``width`` pixels wide."""
    return max(1, width // 8)


def _show_pane(pane: pn.viewable.Viewable, visible: bool) -> None:
    """Show or hide ``pane``. A Bokeh pane copies its figure's ``visible`` back onto
    itself when that differs from its own default, so the figure's is set first."""
    if isinstance(pane, pn.pane.Bokeh) and pane.object is not None:
        pane.object.visible = visible
    pane.visible = visible


@dataclass(frozen=True)
class _Galaxy:
    """What the view shows of one galaxy, read once per galaxy."""

    z_true: float
    pdfs: dict[str, np.ndarray]
    images: np.ndarray | None  # (B, H, W), None when the galaxy file lacks it
    image_error: str | None


class GalaxyView(pn.viewable.Viewer):
    """Images, PDFs of every method and catalog row of the galaxy ``galaxy_id``.

    Set ``galaxy_id`` (an id of ``run.galaxies``) to show a galaxy; None shows a hint.
    Nothing here raises for a galaxy the run lacks or for a run without images: the view
    says what is missing instead.
    """

    run = param.ClassSelector(class_=RunData, doc="the run the galaxy belongs to")
    galaxy_id = param.Parameter(default=None, doc="id of the galaxy shown, or None")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # The galaxy read last: asked for again when the same galaxy is shown again.
        self._loaded: tuple[Any, _Galaxy | None] = (None, None)
        self._bands: tuple[str, ...] = ()
        self._image_shape: tuple[int, int] = (1, 1)
        # The data sources the figures draw, replaced (their ``data``) for each galaxy.
        self._pdf_source: ColumnDataSource | None = None
        self._truth: Span | None = None
        self._tile_source: ColumnDataSource | None = None
        self._rgb_source: ColumnDataSource | None = None
        self._title = pn.pane.Markdown(
            css_classes=["ck-galaxy-title"], margin=(0, 10), stylesheets=[TITLE_CSS]
        )
        self._images = pn.pane.Bokeh(None, visible=False, css_classes=["ck-galaxy-images"])
        self._images_note = pn.pane.Markdown(visible=False, css_classes=["ck-galaxy-no-images"])
        self._pdfs = pn.pane.Bokeh(
            None,
            visible=False,
            sizing_mode="stretch_width",
            height=PDF_HEIGHT,
            css_classes=["ck-galaxy-pdfs"],
        )
        self._catalog = pn.pane.DataFrame(
            None,
            index=False,
            visible=False,
            width=320,
            max_height=200,
            styles={"overflow-y": "auto", "font-size": "90%"},
            css_classes=["ck-galaxy-catalog"],
        )
        self._layout = pn.Column(
            self._title,
            # In a Row of its own: Bokeh aligns the frames of plots in one column, which
            # squeezed the thumbnails to the PDF plot's frame.
            pn.Row(self._images),
            self._images_note,
            # One column: the view also fits the narrow side of a dashboard. (A FlexBox
            # here broke Bokeh's layout in the browser and stopped later updates.)
            self._pdfs,
            self._catalog,
            css_classes=["ck-galaxy-view"],
            sizing_mode="stretch_width",
        )
        self._build()

    def __panel__(self) -> pn.Column:
        return self._layout

    # ------------------------------------------------------------------ building

    @param.depends("run", watch=True)
    def _build(self) -> None:
        """The figures, built once per run; a new galaxy only sends new data to them."""
        self._loaded = (None, None)
        self._pdf_source = self._truth = self._tile_source = self._rgb_source = None
        run = self.run
        self._images.object = self._pdfs.object = None
        if run is not None and run.ok and run.methods and run.edges is not None:
            self._pdfs.object = self._pdf_figure()
            self._images.object = self._image_figure()
        self._update()

    def _pdf_figure(self) -> Any:
        """One step line per method (one source, a column each) and the true redshift."""
        empty = np.full(len(self.run.edges) - 1, np.nan)
        self._pdf_source = ColumnDataSource(
            pdf_steps(dict.fromkeys(self.run.methods, empty), self.run.edges)
        )
        plot = figure(
            title=PDF_TITLE,
            height=PDF_HEIGHT,
            sizing_mode="stretch_width",
            tools=PDF_TOOLS,
            x_axis_label="z",
            y_axis_label="p(z)",
        )
        for method in self.run.methods:
            found = identity(method)
            # The ranges follow each galaxy's curves: Bokeh's automatic data ranges.
            plot.line(
                "z",
                method,
                source=self._pdf_source,
                line_width=1.8,
                color=found.colour,
                line_dash=found.dash,
                legend_label=found.label,
            )
        self._truth = Span(
            location=None,
            dimension="height",
            line_color=IDEAL_COLOUR,
            line_dash="dashed",
            line_width=2,
        )
        plot.add_layout(self._truth)
        outside_legend(plot).click_policy = "hide"
        return plot

    def _image_figure(self) -> Any:
        """The thumbnails' figure, or None when the run has no images: each band, gray,
        and the colour composite, side by side in one figure (lighter than one each)."""
        try:
            found = self.run.images(self.run.galaxies["id"].iloc[:1].tolist())
        except (OSError, KeyError, ValueError):
            found = None
        if found is None:
            return None
        self._bands = tuple(found[0])
        self._image_shape = found[1].shape[-2:]
        height, width = self._image_shape
        step = width + _gap(width)
        n = len(self._bands)
        # Screen size from the data's extent (tiles and gaps), so that pixels stay square.
        extent = (n + 1) * step - _gap(width)
        plot = figure(
            width=round(THUMBNAIL * extent / height),
            height=THUMBNAIL,
            x_range=Range1d(0, extent),
            y_range=Range1d(0, height),
            toolbar_location=None,
            tools="",
            min_border=0,
            outline_line_color=None,
        )
        plot.axis.visible = False
        plot.grid.visible = False
        x = [b * step for b in range(n)]
        self._tile_source = ColumnDataSource(
            {"image": [np.zeros((height, width), np.float32)] * n, "x": x}
        )
        plot.image(
            image="image",
            x="x",
            y=0,
            dw=width,
            dh=height,
            source=self._tile_source,
            color_mapper=LinearColorMapper(palette=Greys256, low=0.0, high=1.0),
        )
        self._rgb_source = ColumnDataSource({"image": [np.zeros((height, width), np.uint32)]})
        plot.image_rgba(
            image="image", x=n * step, y=0, dw=width, dh=height, source=self._rgb_source
        )
        names = [*self._bands, "colour"]
        label_on_stamps(
            plot,
            "9pt",
            "band_labels",
            x=[i * step + 1 for i in range(len(names))],
            y=[height - 1] * len(names),
            text=names,
        )
        return plot

    # ------------------------------------------------------------------ data

    def _galaxy(self, galaxy_id: Any) -> _Galaxy | None:
        """The shown galaxy's data, read on first request, None if the run lacks it."""
        if self._loaded[0] == galaxy_id and self._loaded[1] is not None:
            return self._loaded[1]
        run = self.run
        if galaxy_id is None or run is None or not run.ok or not run.has_galaxy(galaxy_id):
            return None
        row = run.row_of(galaxy_id)
        error = None
        try:
            found = run.images([galaxy_id])
        except (OSError, KeyError, ValueError) as err:  # a damaged galaxy file
            found, error = None, str(err)
        galaxy = _Galaxy(
            z_true=float(run.galaxies["z_true"].iat[row]),
            pdfs=run.pdfs(galaxy_id),
            images=None if found is None else found[1][0],
            image_error=error,
        )
        self._loaded = (galaxy_id, galaxy)
        return galaxy

    def _show_pdfs(self, galaxy: _Galaxy) -> None:
        # Every method's column, even one the galaxy lacks: the lines read fixed columns.
        empty = np.full(len(self.run.edges) - 1, np.nan)
        pdfs = {m: galaxy.pdfs.get(m, empty) for m in self.run.methods}
        self._pdf_source.data = pdf_steps(pdfs, self.run.edges)
        self._truth.location = galaxy.z_true if np.isfinite(galaxy.z_true) else None

    def _show_images(self, images: np.ndarray) -> None:
        """Stretched bands and composite of ``images`` (B, H, W). Rows are flipped: Bokeh
        draws an image's first row at the bottom, an astronomer's viewer at the top."""
        tiles = [stretch_band(images[b])[::-1] for b in range(len(self._bands))]
        self._tile_source.data = {"image": tiles, "x": self._tile_source.data["x"]}
        rgb = colour_composite(images, self._bands)[::-1]
        rgba = np.empty((*rgb.shape[:2], 4), np.uint8)
        rgba[..., :3], rgba[..., 3] = rgb, 255
        self._rgb_source.data = {"image": [rgba.view(np.uint32)[..., 0]]}

    # ------------------------------------------------------------------ updating

    @param.depends("galaxy_id", watch=True)
    def _update(self) -> None:
        # One document hold: the browser receives the new galaxy in one message.
        with pn.io.hold():
            self._show(self.galaxy_id)

    def _show(self, galaxy_id: Any) -> None:
        run = self.run
        galaxy = self._galaxy(galaxy_id)
        if galaxy is None:
            if galaxy_id is None or run is None or not run.ok:
                self._title.object = "### Pick a galaxy in the table to see its images and PDFs."
            else:
                self._title.object = (
                    f"### Galaxy {galaxy_id} is not among the galaxies of this run."
                )
            for pane in (self._images, self._images_note, self._pdfs, self._catalog):
                _show_pane(pane, False)
            return
        self._title.object = f"### Galaxy {galaxy_id} · true z = {galaxy.z_true:.4f}"
        has_images = galaxy.images is not None and self._images.object is not None
        _show_pane(self._images, has_images)
        self._images_note.visible = not has_images
        if not has_images:
            reason = (
                f"they cannot be read ({galaxy.image_error})"
                if galaxy.image_error
                else "the run's galaxy file does not have them (see the warning above)"
            )
            self._images_note.object = f"*No images of galaxy {galaxy_id}: {reason}.*"
        if has_images:
            self._show_images(galaxy.images)
        self._show_pdfs(galaxy)
        _show_pane(self._pdfs, True)
        catalog = run.catalog_row(galaxy_id)
        if not catalog:
            # No galaxy file: the evaluated columns are all the run knows of the galaxy.
            row = run.row_of(galaxy_id)
            columns = [c for c in ("id", "z_true", "mag_r", "g_r") if c in run.galaxies]
            catalog = {c: run.galaxies[c].iat[row].item() for c in columns}
        self._catalog.object = catalog_frame(catalog)
        self._catalog.visible = True
