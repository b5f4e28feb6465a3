"""The figures of the stellar-mass dashboard, each built once and updated in place.

As in the other dashboards, every figure is a plain Bokeh figure whose data sources get
new arrays when the input set, test conditioning, input pair or galaxy changes (one
document message). Display only: graphs are laid out here (by node role, or on a circle
with :func:`networkx.circular_layout`), bars stacked and values binned for histograms;
every number drawn is one ``clapkit interpret`` stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import colorcet
import networkx as nx
import numpy as np
from bokeh.models import (
    ColumnDataSource,
    FactorRange,
    HoverTool,
    LinearColorMapper,
    Range1d,
    Slope,
    Span,
)
from bokeh.palettes import Greys256
from bokeh.plotting import figure

from clapkit_app.images import stretch_band
from clapkit_app.legends import outside_legend
from clapkit_app.methods import IDEAL_COLOUR
from clapkit_app.scatter import shown_note, shown_rows
from clapkit_app.translation_plots import (
    TOOLS,
    TileGrid,
    add_label,
    blank_tile,
    robust_limit,
)

#: Node colours by role in the causal graph (input, latent space, target, external).
ROLE_COLOURS = {"X_in": "#1f77b4", "S": "#9467bd", "Y": "#2ca02c", "X_ex": "#ff7f0e"}
#: Edge colours: a dependent (significant) local test, an independent one, the
#: structural edges X_in → S → Y.
DEPENDENT, INDEPENDENT, STRUCTURAL = "#d62728", "#9e9e9e", "#404040"
#: PC edges against the true graph: in it, not in it (or a true edge PC missed), no truth.
AGREES, DISAGREES, UNSCORED = "#2ca02c", "#ff7f0e", "#1f77b4"
#: The MI terms stacked in a bar, with their colours.
TERMS = ("redundancy", "unique_1", "unique_2", "synergy")
TERM_COLOURS = {
    "redundancy": "#7f7f7f",
    "unique_1": "#1f77b4",
    "unique_2": "#ff7f0e",
    "synergy": "#9467bd",
}
#: Colours of the galaxy types (early: red and bulge-dominated; late: blue disks).
TYPE_COLOURS = {"early": "#d62728", "late": "#1f77b4"}
#: Line colours of the bands in the radial profiles.
BAND_COLOURS = {"u": "#7b3294", "g": "#1a9641", "r": "#d7191c", "i": "#a6611a", "z": "#000000"}
#: Height of the attribution grid's column titles (two lines), in tiles.
HEADER = 0.5
#: Node marker size in screen pixels (its diameter).
NODE_SIZE = 20


#: How figures name the MI sources whose key does not read well.
SOURCE_LABELS = {"images_normalised": "flux-normalised images", "wise": "WISE"}


def source_label(source: str) -> str:
    """How a figure names an MI source.

    Examples
    --------
    >>> source_label("images_normalised"), source_label("other_bands")
    ('flux-normalised images', 'other bands')
    """
    return SOURCE_LABELS.get(source, source.replace("_", " "))


def term_label(term: str, inputs: Sequence[str]) -> str:
    """How a figure names an MI term of the pair ``inputs``.

    Examples
    --------
    >>> term_label("unique_2", ["photometry", "images"]), term_label("synergy", ["a", "b"])
    ('unique to images', 'synergy')
    """
    if term in ("unique_1", "unique_2"):
        return f"unique to {source_label(inputs[int(term[-1]) - 1])}"
    return term


def stacked(values: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Bottom and top of each segment of one bar: positive values stack up from 0,
    negative ones down from 0 (an estimated MI term can be negative).

    Examples
    --------
    >>> bottom, top = stacked([0.5, -0.2, 0.25, -0.1])
    >>> bottom.tolist(), top.tolist()
    ([0.0, 0.0, 0.5, -0.2], [0.5, -0.2, 0.75, -0.30000000000000004])
    """
    bottom, top = np.zeros(len(values)), np.zeros(len(values))
    up = down = 0.0
    for i, value in enumerate(values):
        value = float(value) if np.isfinite(value) else 0.0
        if value >= 0:
            bottom[i], top[i], up = up, up + value, up + value
        else:
            bottom[i], top[i], down = down, down + value, down + value
    return bottom, top


def role_layout(nodes: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Positions of a causal graph's nodes: X_in → S → Y from left to right, the
    external variables on an arc to the right of Y.

    Examples
    --------
    >>> xy = role_layout({"X_in": "images", "S": "latent", "Y": "m", "X_ex": ["z"]})
    >>> xy["images"], xy["latent"], xy["m"], xy["z"]
    ((-2.0, 0.0), (-1.0, 0.0), (0.0, 0.0), (1.5, 0.0))
    """
    out = {nodes["X_in"]: (-2.0, 0.0), nodes["S"]: (-1.0, 0.0), nodes["Y"]: (0.0, 0.0)}
    external = list(nodes.get("X_ex", []))
    n = len(external)
    for i, name in enumerate(external):
        angle = 0.0 if n == 1 else math.radians(70 - 140 * i / (n - 1))
        out[name] = (round(1.5 * math.cos(angle), 12), round(1.5 * math.sin(angle), 12))
    return out


def circle_layout(names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Positions of ``names`` on the unit circle, in order (networkx's circular layout):
    the PC graph and the true graph share them, so their edges compare at a glance."""
    if not names:
        return {}
    positions = nx.circular_layout(list(names))
    return {name: (float(x), float(y)) for name, (x, y) in positions.items()}


class GraphPlot:
    """Nodes with labels, edges as segments (width and colour per edge, hover text) and
    arrowheads on the directed ones."""

    def __init__(
        self, title: str, x_range: tuple[float, float], y_range: tuple[float, float], width: int
    ) -> None:
        # One data unit is as many pixels across as up: the arrowheads stay on the nodes.
        height = round(width * (y_range[1] - y_range[0]) / (x_range[1] - x_range[0]))
        self.figure = figure(
            title=title,
            width=width,
            height=height,
            tools="pan,wheel_zoom,reset,save",
            x_range=Range1d(*x_range),
            y_range=Range1d(*y_range),
            min_border=0,
        )
        self.figure.axis.visible = False
        self.figure.grid.visible = False
        self._pixels = width / (x_range[1] - x_range[0])
        self.edges = ColumnDataSource(
            {k: [] for k in ("x0", "y0", "x1", "y1", "width", "colour", "info")}
        )
        self.heads = ColumnDataSource({"x": [], "y": [], "angle": [], "colour": []})
        self.nodes = ColumnDataSource({"x": [], "y": [], "name": [], "colour": []})
        self.labels = ColumnDataSource({"x": [], "y": [], "text": [], "align": []})
        segments = self.figure.segment(
            "x0",
            "y0",
            "x1",
            "y1",
            source=self.edges,
            line_width="width",
            line_color="colour",
            line_alpha=0.85,
            name="edges",
        )
        self.figure.scatter(
            "x",
            "y",
            source=self.heads,
            marker="triangle",
            angle="angle",
            size=11,
            fill_color="colour",
            line_color="colour",
            name="heads",
        )
        self.figure.scatter(
            "x",
            "y",
            source=self.nodes,
            size=NODE_SIZE,
            fill_color="colour",
            line_color="black",
            name="nodes",
        )
        self.figure.text(
            "x",
            "y",
            text="text",
            text_align="align",
            text_baseline="middle",
            text_font_size="9pt",
            source=self.labels,
            name="labels",
        )
        self.figure.add_tools(HoverTool(renderers=[segments], tooltips=[("", "@info")]))

    def update(
        self,
        positions: Mapping[str, tuple[float, float]],
        colours: Mapping[str, str],
        edges: Sequence[Mapping[str, Any]],
        title: str | None = None,
        placement: Mapping[str, str] | None = None,
    ) -> None:
        """Draw nodes at ``positions`` in ``colours`` and ``edges``: each a mapping with
        ``source``, ``target``, ``width``, ``colour``, ``directed`` and ``info``.
        ``placement`` puts a node's label ``"right"``, ``"left"``, ``"above"``,
        ``"below"`` or ``"below_left"`` of it (default: away from the middle)."""
        names = list(positions)
        xy = np.array([positions[n] for n in names], dtype=float).reshape(-1, 2)
        self.nodes.data = {
            "x": xy[:, 0],
            "y": xy[:, 1],
            "name": names,
            "colour": [colours.get(n, "white") for n in names],
        }
        labels: dict[str, list] = {"x": [], "y": [], "text": [], "align": []}
        offset = (NODE_SIZE / 2 + 4) / self._pixels
        for name, (x, y) in zip(names, xy, strict=True):
            # By default beside the node, away from the middle of the figure; above or
            # below it on the vertical axis.
            side = (placement or {}).get(name)
            if side is None:
                side = ("right" if x > 0 else "left") if abs(x) > 0.05 else "above"
                side = side if abs(x) > 0.05 or y >= 0 else "below"
            align, dx, dy = {
                "right": ("left", offset, 0.0),
                "left": ("right", -offset, 0.0),
                "above": ("center", 0.0, 1.6 * offset),
                "below": ("center", 0.0, -1.6 * offset),
                "below_left": ("right", 0.3 * offset, -1.6 * offset),
            }[side]
            labels["x"].append(x + dx)
            labels["y"].append(y + dy)
            labels["text"].append(name)
            labels["align"].append(align)
        self.labels.data = labels
        data: dict[str, list] = {k: [] for k in self.edges.data}
        heads: dict[str, list] = {"x": [], "y": [], "angle": [], "colour": []}
        back = (NODE_SIZE / 2 + 5) / self._pixels  # arrowhead just outside the target node
        for edge in edges:
            (x0, y0), (x1, y1) = positions[edge["source"]], positions[edge["target"]]
            for key, value in (("x0", x0), ("y0", y0), ("x1", x1), ("y1", y1)):
                data[key].append(value)
            for key in ("width", "colour", "info"):
                data[key].append(edge[key])
            if edge["directed"]:
                length = math.hypot(x1 - x0, y1 - y0) or 1.0
                heads["x"].append(x1 - back * (x1 - x0) / length)
                heads["y"].append(y1 - back * (y1 - y0) / length)
                heads["angle"].append(math.atan2(y1 - y0, x1 - x0) - math.pi / 2)
                heads["colour"].append(edge["colour"])
        self.edges.data, self.heads.data = data, heads
        if title is not None:
            self.figure.title.text = title


class MassScatter:
    """Estimated against true log M*, one point per galaxy; the 1:1 line; one galaxy
    starred."""

    def __init__(self) -> None:
        self.figure = figure(
            width=460,
            height=420,
            x_axis_label="true log₁₀(M*/M☉) (dex)",
            y_axis_label="estimated log₁₀(M*/M☉), PDF mean (dex)",
            tools=TOOLS,
            match_aspect=True,
        )
        self.points = ColumnDataSource({"id": [], "true": [], "point": []})
        self.chosen = ColumnDataSource({"id": [], "true": [], "point": []})
        points = self.figure.scatter(
            "true", "point", source=self.points, size=5, alpha=0.6, name="points"
        )
        self.figure.scatter(
            "true",
            "point",
            source=self.chosen,
            marker="star",
            size=18,
            fill_color="gold",
            line_color="black",
            name="chosen",
        )
        self.figure.add_layout(
            Slope(gradient=1, y_intercept=0, line_color="gray", line_dash="dashed")
        )
        self.figure.add_tools(
            HoverTool(
                renderers=[points],
                tooltips=[("id", "@id"), ("true", "@true{0.00}"), ("estimate", "@point{0.00}")],
            )
        )

    def update(
        self, ids: np.ndarray, true: np.ndarray, point: np.ndarray, chosen: int | None, title: str
    ) -> None:
        """Show galaxies ``ids`` (``true`` and estimated masses); star index ``chosen``.

        Above :data:`~clapkit_app.scatter.MAX_SCATTER_POINTS` galaxies a fixed subset is
        drawn (:func:`~clapkit_app.scatter.shown_rows`) and the title says so."""
        data = {"id": np.asarray(ids), "true": np.asarray(true), "point": np.asarray(point)}
        shown = shown_rows(len(data["id"]))
        self.points.data = {key: values[shown] for key, values in data.items()}
        rows = [chosen] if chosen is not None else []
        self.chosen.data = {key: values[rows] for key, values in data.items()}
        self.figure.title.text = title + shown_note(len(data["id"]))


class PIDBars:
    """The sample-mean MI decomposition as stacked bars, one per input pair and galaxy
    type (all galaxies, then each type); a diamond marks the joint MI(1,2)."""

    def __init__(self) -> None:
        self.figure = figure(
            x_range=FactorRange(factors=[]),
            height=360,
            sizing_mode="stretch_width",
            y_axis_label="nats per galaxy",
            tools="save,reset",
            title="MI decomposition of the test galaxies' log M*, per input pair and galaxy type",
        )
        self.sources = {}
        for term in TERMS:
            self.sources[term] = ColumnDataSource(
                {"x": [], "bottom": [], "top": [], "value": [], "label": []}
            )
            bars = self.figure.vbar(
                x="x",
                bottom="bottom",
                top="top",
                width=0.8,
                source=self.sources[term],
                fill_color=TERM_COLOURS[term],
                line_color="white",
                legend_label=term.replace("_", " ") if term.startswith("unique") else term,
                name=term,
            )
            self.figure.add_tools(
                HoverTool(renderers=[bars], tooltips=[("", "@label"), ("nats", "@value{0.000}")])
            )
        self.total = ColumnDataSource({"x": [], "value": []})
        total = self.figure.scatter(
            "x",
            "value",
            source=self.total,
            marker="diamond",
            size=12,
            fill_color="black",
            line_color="white",
            legend_label="MI(1,2)",
            name="mi_12",
        )
        self.figure.add_tools(HoverTool(renderers=[total], tooltips=[("MI(1,2)", "@value{0.000}")]))
        self.figure.add_layout(Span(location=0, dimension="width", line_color=IDEAL_COLOUR))
        self.figure.xaxis.major_label_orientation = 0.0
        self.figure.xgrid.visible = False
        outside_legend(self.figure)

    def update(self, pairs: Mapping[str, Mapping[str, Any]]) -> None:
        """Draw ``pid.json``'s ``pairs``: per pair its means and ``by_type``."""
        factors: list[tuple[str, str]] = []
        data = {term: {k: [] for k in self.sources[term].data} for term in TERMS}
        total: dict[str, list] = {"x": [], "value": []}
        for pair, row in pairs.items():
            inputs = row.get("inputs", pair.split("_", 1))
            groups = [("all", row), *sorted(row.get("by_type", {}).items())]
            for group, values in groups:
                x = (" vs ".join(map(source_label, inputs)), group)
                factors.append(x)
                bottom, top = stacked([values[term] for term in TERMS])
                for i, term in enumerate(TERMS):
                    data[term]["x"].append(x)
                    data[term]["bottom"].append(bottom[i])
                    data[term]["top"].append(top[i])
                    data[term]["value"].append(values[term])
                    data[term]["label"].append(
                        f"{term_label(term, inputs)} · {' vs '.join(map(source_label, inputs))} · {group}"
                    )
                total["x"].append(x)
                total["value"].append(values["mi_12"])
        self.figure.x_range.factors = factors
        for term in TERMS:
            self.sources[term].data = data[term]
        self.total.data = total


class PIDHistograms:
    """Per-galaxy MI terms of one input pair: one histogram per term, galaxy types
    overlaid, on the same bins."""

    def __init__(self, n_bins: int = 20) -> None:
        self.n_bins = n_bins
        self.sources: dict[str, dict[str, ColumnDataSource]] = {}
        self.figures = {}
        for term in TERMS:
            fig = figure(width=300, height=240, x_axis_label="nats", tools=TOOLS)
            self.sources[term] = {}
            for group, colour in TYPE_COLOURS.items():
                source = ColumnDataSource({"left": [], "right": [], "count": []})
                fig.quad(
                    left="left",
                    right="right",
                    bottom=0,
                    top="count",
                    source=source,
                    fill_color=colour,
                    fill_alpha=0.45,
                    line_color=colour,
                    legend_label=group,
                    name=group,
                )
                self.sources[term][group] = source
            fig.add_layout(
                Span(location=0, dimension="height", line_dash="dashed", line_color=IDEAL_COLOUR)
            )
            outside_legend(fig, side="above", font_size="8pt")
            self.figures[term] = fig

    def update(
        self, terms: Mapping[str, np.ndarray], types: np.ndarray, inputs: Sequence[str]
    ) -> None:
        """Histograms of ``terms`` (per galaxy, nats), split by galaxy ``types``."""
        values = np.concatenate([np.asarray(terms[t], dtype=float) for t in TERMS])
        values = values[np.isfinite(values)]
        edges = np.histogram_bin_edges(values if values.size else [0.0, 1.0], bins=self.n_bins)
        for term in TERMS:
            column = np.asarray(terms[term], dtype=float)
            for group, source in self.sources[term].items():
                chosen = column[(types == group) & np.isfinite(column)]
                counts, _ = np.histogram(chosen, bins=edges)
                source.data = {"left": edges[:-1], "right": edges[1:], "count": counts}
            self.figures[term].title.text = term_label(term, inputs)


class AttributionGrid(TileGrid):
    """One galaxy per band: the network's input image, its attribution map and the map
    of the randomised model, each map on a symmetric colour scale of its own (blue
    negative, red positive; the scale in the column title)."""

    COLUMNS = 3
    HEADER = HEADER

    def __init__(self, n_bands: int) -> None:
        super().__init__()
        grey = LinearColorMapper(palette=Greys256, low=0.0, high=1.0, nan_color=(0, 0, 0, 0))
        self.mappers = {
            name: LinearColorMapper(
                palette=tuple(colorcet.coolwarm), low=-1.0, high=1.0, nan_color=(0, 0, 0, 0)
            )
            for name in ("maps", "randomised")
        }
        self.sources = {
            name: self._layer(name, mapper)
            for name, mapper in (("images", grey), *self.mappers.items())
        }
        self._finish(n_bands)

    def update(
        self,
        bands: Sequence[str],
        image: np.ndarray,
        maps: np.ndarray,
        randomised: np.ndarray,
        label: str = "attribution",
    ) -> dict[str, float]:
        """Show one galaxy: ``image``, ``maps``, ``randomised`` of shape (B, H, W), the
        maps titled ``label`` (the method). Returns the half-range of each map's colour
        scale."""
        self._shape(len(bands))
        data = {name: {"image": [], "x": [], "y": []} for name in self.sources}
        labels: dict[str, list] = {"x": [], "y": [], "text": [], "colour": []}
        limits = {"maps": robust_limit([maps]), "randomised": robust_limit([randomised])}
        for name, limit in limits.items():
            self.mappers[name].update(low=-limit, high=limit)
        for row, band in enumerate(bands):
            tiles = (
                ("images", stretch_band(image[row]), "yellow"),
                ("maps", maps[row], "black"),
                ("randomised", randomised[row], "black"),
            )
            for column, (name, tile, colour) in enumerate(tiles):
                x, y = self._corner(column, row)
                shown = np.asarray(tile, dtype=np.float32)
                data[name]["image"].append(shown[::-1] if shown.size else blank_tile())
                data[name]["x"].append(x)
                data[name]["y"].append(y)
                add_label(labels, x + 0.04, y + 0.96, band, colour)
        self._titles(
            labels,
            (
                "input\n(scaled)",
                f"{label}\n±{limits['maps']:.2g}",
                f"randomised\n±{limits['randomised']:.2g}",
            ),
        )
        for name, values in data.items():
            self.sources[name].data = values
        self.labels.data = labels
        return limits


class ProfilePlot:
    """Radial profiles of one galaxy's attribution maps: mean |attribution| per annulus
    around the stamp centre, one line per band."""

    def __init__(self, bands: Sequence[str]) -> None:
        self.figure = figure(
            width=380,
            height=320,
            x_axis_label="radius (pixels)",
            y_axis_label="mean |attribution|",
            tools=TOOLS,
            title="Radial profiles",
        )
        # "radius", not "r": the r band has a column of its own.
        self.source = ColumnDataSource({"radius": [], **{band: [] for band in bands}})
        for band in bands:
            self.figure.line(
                "radius",
                band,
                source=self.source,
                color=BAND_COLOURS.get(band, "gray"),
                line_width=2,
                legend_label=band,
                name=band,
            )
        outside_legend(self.figure)

    def update(self, bands: Sequence[str], profiles: np.ndarray, radii: np.ndarray) -> None:
        """Draw ``profiles`` (B, R) over the annuli with edges ``radii`` (R + 1,)."""
        radii = np.asarray(radii, dtype=float)
        data = {"radius": (radii[:-1] + radii[1:]) / 2}
        for b, band in enumerate(bands):
            data[band] = np.asarray(profiles[b], dtype=float)
        self.source.data = data
