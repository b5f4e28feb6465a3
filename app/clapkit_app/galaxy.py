"""One galaxy as the dashboards show it: its images, every method's PDF and its catalog row.

:class:`GalaxyView` is shared by the calibration explorer (the galaxy picked in its table)
and the neighbour browser (the galaxy whose neighbours are shown). Its plots are built once
per run as HoloViews ``DynamicMap`` objects that stream ``galaxy_id``: picking another
galaxy sends new data to the existing figures instead of building new ones, and nothing
else on the page re-renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from clapkit_app.images import colour_composite, stretch_band
from clapkit_app.store import RunData, method_label

# Options are validated against a loaded plotting backend; load bokeh's without the
# notebook machinery of ``hv.extension``.
hv.renderer("bokeh")

#: Side of one band's thumbnail, in screen pixels.
THUMBNAIL = 76
#: Height of the PDF plot and the most the catalog table takes, in screen pixels.
PDF_HEIGHT = 300
#: The value axis of the PDF curves.
DENSITY = hv.Dimension("density", label="p(z)")


def pdf_curves(
    pdfs: dict[str, np.ndarray], edges: np.ndarray, z_true: float | None = None
) -> hv.Overlay:
    """Every method's PDF of one galaxy as a density curve, and the true redshift.

    Parameters
    ----------
    pdfs : dict of str to ndarray
        Probability of each redshift bin, per method (:meth:`RunData.pdfs`).
    edges : ndarray
        The bins' edges (``len(p) + 1``).
    z_true : float, optional
        Marked by a vertical dashed line; NaN or None draws the line out of sight, so
        that the overlay keeps the same elements for every galaxy.

    Examples
    --------
    >>> edges = np.linspace(0.0, 1.0, 5)
    >>> plot = pdf_curves({"clap": np.array([0.0, 0.5, 0.5, 0.0])}, edges, z_true=0.4)
    >>> [type(el).__name__ for el in plot]
    ['Curve', 'VLine']
    >>> float(plot.get(0).dimension_values("density").max())  # 0.5 per bin of width 0.25
    2.0
    """
    widths = np.diff(edges)
    # Steps drawn here rather than by HoloViews' interpolation: one array op per curve.
    x = np.repeat(edges, 2)[1:-1]
    elements: list[Any] = [
        # Probability per bin over bin width: a density, comparable across binnings.
        hv.Curve((x, np.repeat(np.asarray(p) / widths, 2)), "z", DENSITY, label=method_label(m))
        for m, p in pdfs.items()
    ]
    z = float(z_true) if z_true is not None else np.nan
    elements.append(hv.VLine(z))
    return hv.Overlay(elements)


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
        # The galaxy read last: every plot's callback asks for the same one.
        self._loaded: tuple[Any, _Galaxy | None] = (None, None)
        self._bands: tuple[str, ...] = ()
        self._image_shape: tuple[int, int] = (1, 1)
        self._title = pn.pane.Markdown(css_classes=["ck-galaxy-title"], margin=(0, 10))
        # No axis linking: it walks every plot of the page when a session starts, and
        # would tie the PDFs' z axis to other plots of a dashboard.
        self._images = pn.pane.HoloViews(
            None, visible=False, linked_axes=False, css_classes=["ck-galaxy-images"]
        )
        self._images_note = pn.pane.Markdown(visible=False, css_classes=["ck-galaxy-no-images"])
        self._pdfs = pn.pane.HoloViews(
            None,
            visible=False,
            sizing_mode="stretch_width",
            height=PDF_HEIGHT,
            linked_axes=False,
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
        """The plots, built once per run; a new galaxy only streams new data into them."""
        self._loaded = (None, None)
        run = self.run
        self._images.object = self._pdfs.object = None
        if run is not None and run.ok and run.methods and run.edges is not None:
            stream = hv.streams.Params(parameterized=self, parameters=["galaxy_id"])
            # Options set once on the DynamicMap, not on every frame: cheaper updates.
            self._pdfs.object = hv.DynamicMap(self._pdf_plot, streams=[stream], cache_size=1).opts(
                hv.opts.Curve(line_width=1.8, framewise=True),  # each galaxy's own range
                hv.opts.VLine(color="black", line_dash="dashed", line_width=1.5),
                hv.opts.Overlay(
                    responsive=True,
                    height=PDF_HEIGHT,
                    legend_position="right",
                    title="PDF of every method (dashed: true redshift)",
                    show_grid=True,
                ),
            )
            self._images.object = self._image_plots(stream)
        self._update()

    def _image_plots(self, stream: hv.streams.Stream) -> hv.DynamicMap | None:
        """The thumbnails' plot, or None when the run has no images."""
        try:
            found = self.run.images(self.run.galaxies["id"].iloc[:1].tolist())
        except (OSError, KeyError, ValueError):
            found = None
        if found is None:
            return None
        self._bands = tuple(found[0])
        self._image_shape = found[1].shape[-2:]
        height, width = self._image_shape
        tiles = len(self._bands) + 1
        # Screen size from the data's extent (tiles and gaps), so that pixels stay square.
        extent = tiles * (width + _gap(width)) - _gap(width)
        return hv.DynamicMap(self._thumbnails, streams=[stream], cache_size=1).opts(
            hv.opts.Image(cmap="gray", clim=(0.0, 1.0)),
            hv.opts.Labels(
                text_color="yellow", text_font_size="9pt", text_align="left", text_baseline="top"
            ),
            hv.opts.Overlay(
                width=round(THUMBNAIL * extent / height),
                height=THUMBNAIL,
                border=0,
                xaxis=None,
                yaxis=None,
                toolbar=None,
                show_frame=False,
                title="",
            ),
        )

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

    def _pdf_plot(self, galaxy_id: Any) -> hv.Overlay:
        galaxy = self._galaxy(galaxy_id)
        edges = self.run.edges
        if galaxy is None:  # the pane is hidden; same elements keep the figure reusable
            empty = np.full(len(edges) - 1, np.nan)
            return pdf_curves(dict.fromkeys(self.run.methods, empty), edges)
        return pdf_curves(galaxy.pdfs, edges, galaxy.z_true)

    def _thumbnails(self, galaxy_id: Any) -> hv.Overlay:
        """Each band, gray, and the colour composite, side by side in one figure: one
        figure rather than one per band keeps the page light."""
        height, width = self._image_shape
        galaxy = self._galaxy(galaxy_id)
        images = None if galaxy is None else galaxy.images
        step = width + _gap(width)
        elements: list[Any] = []
        for b in range(len(self._bands)):
            image = np.zeros((height, width), np.float32) if images is None else images[b]
            tile = image if images is None else stretch_band(image)
            elements.append(hv.Image(tile, bounds=(b * step, 0, b * step + width, height)))
        rgb = (
            np.zeros((height, width, 3), np.uint8)
            if images is None
            else colour_composite(images, self._bands)
        )
        x0 = len(self._bands) * step
        elements.append(hv.RGB(rgb, bounds=(x0, 0, x0 + width, height)))
        names = [*self._bands, "colour"]
        labels = hv.Labels(
            ([i * step + 1 for i in range(len(names))], [height - 1] * len(names), names),
            ["x", "y"],
            "band",
        )
        return hv.Overlay([*elements, labels])

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
                self._title.object = "Pick a galaxy in the table to see its images and PDFs."
            else:
                self._title.object = f"Galaxy {galaxy_id} is not among the galaxies of this run."
            for pane in (self._images, self._images_note, self._pdfs, self._catalog):
                pane.visible = False
            return
        self._title.object = f"### Galaxy {galaxy_id} · true redshift z = {galaxy.z_true:.4f}"
        has_images = galaxy.images is not None and self._images.object is not None
        self._images.visible = has_images
        self._images_note.visible = not has_images
        if not has_images:
            reason = (
                f"they cannot be read ({galaxy.image_error})"
                if galaxy.image_error
                else "the run's galaxy file does not have them (see the warning above)"
            )
            self._images_note.object = f"*No images of galaxy {galaxy_id}: {reason}.*"
        self._pdfs.visible = True
        catalog = run.catalog_row(galaxy_id)
        if not catalog:
            # No galaxy file: the evaluated columns are all the run knows of the galaxy.
            row = run.row_of(galaxy_id)
            columns = [c for c in ("id", "z_true", "mag_r", "g_r") if c in run.galaxies]
            catalog = {c: run.galaxies[c].iat[row].item() for c in columns}
        self._catalog.object = catalog_frame(catalog)
        self._catalog.visible = True
