"""The figures of the translation dashboard, each built once and updated in place.

As in the other dashboards, every figure is a plain Bokeh figure whose data sources get
new arrays when the model, galaxy, band or task changes (one document message), instead
of a HoloViews plot re-rendered on the server. Display only: the images are stretched
with :mod:`clapkit_app.images`, everything else is drawn as stored by
``clapkit translate evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import colorcet
import numpy as np
from bokeh.core.properties import value
from bokeh.models import (
    ColumnDataSource,
    HoverTool,
    LinearColorMapper,
    LogTicker,
    Range1d,
    Slope,
)
from bokeh.palettes import Greys256
from bokeh.plotting import figure

from clapkit_app.images import colour_composite, label_on_stamps, rgba_image, stretch_band
from clapkit_app.legends import outside_legend
from clapkit_app.methods import model_identity
from clapkit_app.scatter import shown_note, shown_rows

#: Side of one image tile on screen, in pixels.
TILE = 100
#: Gap between tiles and height of the column titles, in tiles.
GAP, HEADER = 0.08, 0.3
#: Tools of the line and scatter plots.
TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
#: Morphology scatter plots: key, title, column of the morphology table (``{b}``: the
#: band), whether the axes are logarithmic.
MORPHOLOGY = (
    ("flux", "{b}-band flux", "flux_{b}", True),
    ("peak", "{b}-band peak flux", "peak_{b}", True),
    ("size", "{b}-band HSM size σ (arcsec)", "sigma_{b}", False),
    ("photoz", "probe photo-z (mean)", "photoz", False),
)
#: Labelled ticks at most on a logarithmic axis of a morphology plot.
LOG_TICKS = 4
MORPHOLOGY_LOG = {key: log for key, _title, _column, log in MORPHOLOGY}


def positive(values: Any) -> np.ndarray:
    """Values for a logarithmic axis: non-positive and non-finite ones become NaN.

    Examples
    --------
    >>> positive([1.0, 0.0, -2.0, 3.0]).tolist()
    [1.0, nan, nan, 3.0]
    """
    out = np.asarray(values, dtype=float).copy()
    out[~(out > 0)] = np.nan
    return out


def robust_limit(residuals: list[np.ndarray], percentile: float = 99.5) -> float:
    """Half-range of a symmetric colour scale for residual images: a high percentile of
    their absolute values (1 when there is nothing finite and non-zero).

    Examples
    --------
    >>> robust_limit([np.array([[-4.0, 1.0], [2.0, 0.5]])], percentile=100)
    4.0
    >>> robust_limit([])
    1.0
    """
    values = np.concatenate([np.abs(r).ravel() for r in residuals]) if residuals else np.empty(0)
    values = values[np.isfinite(values)]
    limit = float(np.percentile(values, percentile)) if values.size else 0.0
    return limit if limit > 0 else 1.0


def blank_tile() -> np.ndarray:
    """A tile drawn as nothing (NaN is transparent): an image a file lacks."""
    return np.full((2, 2), np.nan, dtype=np.float32)


def add_label(labels: dict[str, list], x: float, y: float, text: str, colour: str) -> None:
    """Append one text label to the columns of a label source."""
    labels["x"].append(x)
    labels["y"].append(y)
    labels["text"].append(text)
    labels["colour"].append(colour)


def _band(found: tuple[tuple[str, ...], np.ndarray] | None, band: str) -> np.ndarray | None:
    """Band ``band`` of ``found`` (bands, images), None if absent."""
    if found is None or band not in found[0]:
        return None
    return found[1][found[0].index(band)]


class TileGrid:
    """A frame of square image tiles, ``COLUMNS`` wide, with titles above the columns:
    one data unit per tile, every tile ``TILE`` pixels whatever its image's grid.

    Subclasses add their image layers with :meth:`_layer`, then call :meth:`_finish`,
    which draws the labels on top and sizes the frame.
    """

    COLUMNS = 1
    #: Height of the band of column titles, in tiles.
    HEADER = HEADER

    def __init__(self) -> None:
        self.figure = figure(tools="", toolbar_location=None, min_border=0)
        self.figure.outline_line_color = None
        self.figure.x_range, self.figure.y_range = Range1d(0, 1), Range1d(0, 1)
        self.figure.axis.visible = False
        self.figure.grid.visible = False
        self.labels = ColumnDataSource({"x": [], "y": [], "text": [], "colour": []})
        self._rows = 0

    def _layer(self, name: str, mapper: LinearColorMapper) -> ColumnDataSource:
        """A layer of colour-mapped tiles, drawn above the earlier ones."""
        source = ColumnDataSource({"image": [], "x": [], "y": []})
        self.figure.image(
            image="image",
            x="x",
            y="y",
            dw=1,
            dh=1,
            source=source,
            color_mapper=mapper,
            name=name,
        )
        return source

    def _finish(self, rows: int) -> None:
        label_on_stamps(
            self.figure,
            "9pt",
            "labels",
            x="x",
            y="y",
            text="text",
            text_color="colour",
            source=self.labels,
        )
        self._shape(rows)

    def _shape(self, rows: int) -> None:
        """Ranges and size for ``rows`` rows of tiles: one data unit per tile, square (no
        axes or borders: the frame is the whole figure)."""
        if rows == self._rows:
            return
        self._rows = rows
        width = self.COLUMNS * (1 + GAP) - GAP
        height = rows * (1 + GAP) - GAP + self.HEADER
        self.figure.x_range.update(start=0, end=width)
        self.figure.y_range.update(start=0, end=height)
        self.figure.width = round(TILE * width)
        self.figure.height = round(TILE * height)

    def _corner(self, column: int, row: int) -> tuple[float, float]:
        """Bottom-left corner of the tile in ``column``, ``row`` (row 0 at the top)."""
        return column * (1 + GAP), (self._rows - 1 - row) * (1 + GAP)

    def _titles(self, labels: dict[str, list], titles: Sequence[str]) -> None:
        """The column titles, in the header band."""
        top = self._rows * (1 + GAP) - GAP + self.HEADER
        for column, title in enumerate(titles):
            add_label(labels, column * (1 + GAP), top - 0.04, title, "black")


class ImageGrid(TileGrid):
    """One galaxy per band: source input, translation, real target and their residual,
    then a row of colour composites; every tile one square of ``TILE`` pixels, whatever
    its instrument's pixel grid."""

    COLUMNS = 4

    def __init__(self, n_bands: int) -> None:
        super().__init__()
        grey = LinearColorMapper(palette=Greys256, low=0.0, high=1.0, nan_color=(0, 0, 0, 0))
        self.residual_mapper = LinearColorMapper(
            palette=tuple(colorcet.coolwarm), low=-1.0, high=1.0, nan_color=(0, 0, 0, 0)
        )
        self.tiles = self._layer("tiles", grey)
        self.residuals = self._layer("residuals", self.residual_mapper)
        self.composites = ColumnDataSource({"image": [], "x": [], "y": []})
        self.figure.image_rgba(
            image="image", x="x", y="y", dw=1, dh=1, source=self.composites, name="composites"
        )
        self._finish(n_bands + 1)

    def update(self, found: dict[str, Any], bands: list[str], titles: list[str]) -> None:
        """Show one galaxy's images.

        Parameters
        ----------
        found : dict
            ``source``, ``translated`` and ``real``: (bands, images (B, H, W)) or None.
        bands : list of str
            The rows, in order.
        titles : list of str
            The four column titles.
        """
        self._shape(len(bands) + 1)
        tiles: dict[str, list] = {"image": [], "x": [], "y": []}
        residuals: dict[str, list] = {"image": [], "x": [], "y": []}
        labels: dict[str, list] = {"x": [], "y": [], "text": [], "colour": []}
        for row, band in enumerate(bands):
            source = _band(found["source"], band)
            translated, real = _band(found["translated"], band), _band(found["real"], band)
            if translated is not None and real is not None and translated.shape == real.shape:
                # On the real image's scale: the differences show, not each one's scaling.
                shown = [stretch_band(translated, reference=real), stretch_band(real)]
                residual = (translated - real)[::-1]
            else:
                shown = [stretch_band(x) if x is not None else None for x in (translated, real)]
                residual = None
            shown.insert(0, stretch_band(source) if source is not None else None)
            for column, image in enumerate(shown):
                x, y = self._corner(column, row)
                tiles["image"].append(image[::-1] if image is not None else blank_tile())
                tiles["x"].append(x)
                tiles["y"].append(y)
                add_label(labels, x + 0.04, y + 0.96, band, "yellow")
            x, y = self._corner(3, row)
            residuals["image"].append(residual if residual is not None else blank_tile())
            residuals["x"].append(x)
            residuals["y"].append(y)
        composites: dict[str, list] = {"image": [], "x": [], "y": []}
        for column, key in enumerate(("source", "translated", "real")):
            if found[key] is None:
                continue
            names, images = found[key]
            x, y = self._corner(column, len(bands))
            composites["image"].append(rgba_image(colour_composite(images, names)))
            composites["x"].append(x)
            composites["y"].append(y)
            add_label(labels, x + 0.04, y + 0.96, "colour", "yellow")
        limit = robust_limit([r for r in residuals["image"] if np.isfinite(r).any()])
        self.residual_mapper.update(low=-limit, high=limit)
        # The residuals' colour scale in their title: blue −limit, white 0, red +limit.
        self._titles(labels, [*titles[:3], f"{titles[3]} (±{limit:.3g})"])
        self.tiles.data, self.residuals.data = tiles, residuals
        self.composites.data, self.labels.data = composites, labels


class NoisePowerPlot:
    """Noise power against spatial frequency, log-log: the real images, the chosen model
    and, when present, NR-GAN without its emulated noise."""

    def __init__(self) -> None:
        self.figure = figure(
            title="Noise power spectrum",
            x_axis_type="log",
            y_axis_type="log",
            x_axis_label="k (cycles per pixel)",
            y_axis_label="power",
            tools=TOOLS,
            height=420,
            sizing_mode="stretch_width",
        )
        self.source = ColumnDataSource({"k": [], "real": [], "model": [], "smooth": []})
        self.lines = {}
        # Each curve in its model's colour and dash (clapkit_app.methods.MODELS), set
        # by update: the model curve changes model.
        for column, model in (("real", "real"), ("model", "nrgan"), ("smooth", "nrgan_smooth")):
            found = model_identity(model)
            self.lines[column] = self.figure.line(
                "k",
                column,
                source=self.source,
                color=found.colour,
                line_dash=found.dash,
                line_width=2,
                legend_label=found.label,
                name=column,
            )
        outside_legend(self.figure)
        self._items = {item.renderers[0].name: item for item in self.figure.legend[0].items}

    def update(
        self,
        k: np.ndarray,
        spectra: dict[str, np.ndarray | None],
        names: dict[str, str],
        title: str,
    ) -> None:
        """Draw ``spectra`` (``real``, ``model``, ``smooth``: power per ``k``, None for
        a curve not shown), each named in the legend and coloured by the model
        ``names`` gives it (``real``, a model name)."""
        data = {"k": positive(k)}
        for column, line in self.lines.items():
            power = spectra.get(column)
            data[column] = positive(power) if power is not None else np.full(len(k), np.nan)
            line.visible = power is not None
            self._items[column].visible = power is not None
            found = model_identity(names.get(column, column))
            self._items[column].label = value(found.label)
            line.glyph.update(line_color=found.colour, line_dash=found.dash)
        self.source.data = data
        self.figure.title.text = title


class MorphologyPlots:
    """Translated against real, one point per test galaxy, for flux, peak flux, size and
    the probe's photo-z; the 1:1 line; the chosen galaxy starred."""

    def __init__(self) -> None:
        columns = ["id"] + [f"{key}_{axis}" for key, *_ in MORPHOLOGY for axis in "xy"]
        self.points = ColumnDataSource({name: [] for name in columns})
        self.chosen = ColumnDataSource({name: [] for name in columns})
        self.figures = {}
        # The real and translated tables (the store's, shared and never modified) and
        # the band the points show.
        self._drawn: tuple[Any, Any, str | None] = (None, None, None)
        for key, _title, _column, log in MORPHOLOGY:
            axis = "log" if log else "linear"
            fig = figure(
                width=290,
                height=290,
                x_axis_type=axis,
                y_axis_type=axis,
                x_axis_label="real",
                tools=TOOLS,
            )
            points = fig.scatter(
                f"{key}_x", f"{key}_y", source=self.points, size=5, alpha=0.6, name="points"
            )
            fig.scatter(
                f"{key}_x",
                f"{key}_y",
                source=self.chosen,
                marker="star",
                size=18,
                fill_color="gold",
                line_color="black",
                name="chosen",
            )
            if log:
                # Decades only, a few of them: mantissas 1 and 5 over several decades
                # piled their labels on top of each other on a plot this narrow.
                for axis in (fig.xaxis, fig.yaxis):
                    axis.ticker = LogTicker(desired_num_ticks=LOG_TICKS, mantissas=[1])
            fig.add_layout(Slope(gradient=1, y_intercept=0, line_color="gray", line_dash="dashed"))
            fig.add_tools(
                HoverTool(
                    renderers=[points],
                    tooltips=[("id", "@id"), ("real", f"@{key}_x"), ("translated", f"@{key}_y")],
                )
            )
            self.figures[key] = fig

    def update(self, real: Any, translated: Any, band: str, model: str, row: int | None) -> None:
        """Show ``translated`` against ``real`` (morphology tables, one row per galaxy,
        same order) of ``band``; star row ``row``.

        Above :data:`~clapkit_app.scatter.MAX_SCATTER_POINTS` galaxies the same fixed
        subset is drawn for every model (:func:`~clapkit_app.scatter.shown_rows`) and the
        titles say so."""
        n = len(real["id"])
        shown = shown_rows(n)
        # What the drawn points show: a new galaxy moves only the star, and a new model
        # changes only the translated (y) columns, so only those travel to the browser.
        same_real = self._drawn[0] is real and self._drawn[2] == band
        if not (same_real and self._drawn[1] is translated):
            columns = ("y",) if same_real else ("x", "y")
            new = {"id": np.asarray(real["id"])[shown]} if "x" in columns else {}
            for key, _title, column, _log in MORPHOLOGY:
                for axis in columns:
                    table = real if axis == "x" else translated
                    new[f"{key}_{axis}"] = self._values(
                        table, key, column.format(b=band), band, n, shown
                    )
            if "x" in columns:
                self.points.data = new
            else:
                self.points.data.update(new)
            self._drawn = (real, translated, band)
        # Bokeh sends a property only when its value changes.
        for key, title, _column, _log in MORPHOLOGY:
            self.figures[key].title.text = title.format(b=band) + shown_note(n)
            self.figures[key].yaxis.axis_label = f"translated ({model})"
        rows = [row] if row is not None and 0 <= row < n else []
        chosen = {"id": np.asarray(real["id"])[rows]}
        for key, _title, column, _log in MORPHOLOGY:
            for axis, table in (("x", real), ("y", translated)):
                chosen[f"{key}_{axis}"] = self._values(
                    table, key, column.format(b=band), band, n, rows
                )
        self.chosen.data = chosen

    @staticmethod
    def _values(table: Any, key: str, name: str, band: str, n: int, rows: Any) -> np.ndarray:
        """Column ``name`` of one morphology table at ``rows``, as plotted: sizes where
        HSM failed are NaN, and log-scaled quantities keep positive values only."""
        values = _column(table, name, n)[rows]
        if key == "size":  # HSM's failures are not sizes
            ok = _column(table, f"hsm_ok_{band}", n)[rows]
            values = np.where(ok > 0, values, np.nan)
        return positive(values) if MORPHOLOGY_LOG[key] else values


def _column(table: Any, name: str, n: int) -> np.ndarray:
    """A column of a morphology table as floats (NaN when the table or column is absent)."""
    if table is None or name not in table:
        return np.full(n, np.nan)
    return np.asarray(table[name], dtype=float)
