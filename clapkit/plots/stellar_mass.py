"""Stellar-mass figures: estimates against truth, the causal graph, the MI decomposition.

What ``clapkit interpret`` leaves in ``RUN/interpret/`` (see
:mod:`clapkit.interpret.pipeline`), drawn for print: the PDF means of each input set's
model against the catalog masses, the graph of the local conditional-dependence tests in
the latent space (:class:`~clapkit.interpret.causal_graph.CausalGraph`, drawn with
matplotlib from its networkx form), the graph PC found over catalog columns, and the
redundant, unique and synergistic information
of each input pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np
from astropy.table import Table
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from clapkit.errors import ValidationError
from clapkit.interpret.causal_graph import CausalGraph
from clapkit.interpret.discovery import DiscoveryResult
from clapkit.interpret.mass_metric_names import upgrade_mass_metrics
from clapkit.plots.style import finish, label_panels, new_figure, print_style

#: Terms of the MI decomposition, in the order of the bars.
MI_TERMS = ("redundancy", "unique_1", "unique_2", "synergy")
#: Legend labels of the MI terms (the pair's inputs are named under each group of bars).
_MI_LABELS = {
    "redundancy": "redundant",
    "unique_1": "unique to first",
    "unique_2": "unique to second",
    "synergy": "synergistic",
}
_ROLE_COLOURS = {"X_in": "#9ecae1", "S": "#c6dbef", "Y": "#fdd0a2", "X_ex": "#e5e5e5"}


def plot_mass_vs_truth(
    estimates: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    width: str | float = "double",
) -> tuple[Figure, Table]:
    """Estimated against true log stellar mass, one panel per input set.

    Parameters
    ----------
    estimates : mapping of str to (true, estimated)
        Per input set the catalog log M* and the estimate (PDF mean) of the same galaxies.
    metrics : mapping, optional
        Per input set ``sigma`` and ``median_offset`` (dex; ``mass/metrics.json``, whose
        older files call the offset ``bias``), written in the panel.
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        Square panels sharing both axes, each with the 1:1 line.
    table : Table
        ``input_set``, ``true``, ``estimated``: every plotted point.

    Examples
    --------
    >>> fig, table = plot_mass_vs_truth({"photometry": ([10.0, 11.0], [10.1, 10.9])})
    >>> len(table), fig.axes[0].get_xlabel()
    (2, 'true $\\\\log M_*/M_\\\\odot$')
    """
    if not estimates:
        raise ValidationError("no stellar-mass estimates to plot; give at least one input set")
    pairs = {}
    for name, (true, estimated) in estimates.items():
        true, estimated = np.asarray(true, float), np.asarray(estimated, float)
        if true.shape != estimated.shape or true.ndim != 1 or true.size == 0:
            raise ValidationError(
                f"estimates of {name!r}: true {true.shape} and estimated {estimated.shape} "
                "must be equal non-empty 1-d arrays"
            )
        pairs[name] = (true, estimated)
    values = np.concatenate([np.concatenate(p) for p in pairs.values()])
    lo, hi = np.nanmin(values), np.nanmax(values)
    pad = 0.05 * (hi - lo or 1.0)
    limits = (lo - pad, hi + pad)
    rows: list[dict[str, Any]] = []
    with print_style():
        ncols = min(len(pairs), 2 if width == "single" else 3)
        nrows = -(-len(pairs) // ncols)
        fig = new_figure(width, aspect=(nrows + 0.2) / ncols)
        axes = fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False).ravel()
        for ax in axes[len(pairs) :]:
            ax.set_visible(False)
        for ax, (name, (true, estimated)) in zip(axes, pairs.items(), strict=False):
            ax.plot(limits, limits, color="k", lw=0.6)
            ax.scatter(
                true, estimated, s=3, lw=0, color="C0", alpha=0.7, rasterized=true.size > 5000
            )
            ax.set(xlim=limits, ylim=limits, aspect="equal")
            ax.set_title(name)
            stats = upgrade_mass_metrics((metrics or {}).get(name) or {})
            if "sigma" in stats and "median_offset" in stats:
                ax.text(
                    0.04,
                    0.96,
                    f"$\\sigma$ = {stats['sigma']:.3f} dex\n"
                    f"median offset = {stats['median_offset']:+.3f} dex",
                    transform=ax.transAxes,
                    va="top",
                    fontsize="small",
                )
            rows += [
                {"input_set": name, "true": t, "estimated": e}
                for t, e in zip(true, estimated, strict=True)
            ]
        label_panels(
            axes[: len(pairs)], ncols, r"true $\log M_*/M_\odot$", r"estimated $\log M_*/M_\odot$"
        )
        finish(fig)
    return fig, Table(rows=rows)


def graph_layout(nodes: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Positions of a causal graph's nodes: X_in → S → Y from left to right, the external
    variables on an arc to the right of Y.

    Examples
    --------
    >>> xy = graph_layout({"X_in": "images", "S": "latent", "Y": "m", "X_ex": ["z"]})
    >>> xy["images"], xy["m"], xy["z"]
    ((-2.0, 0.0), (0.0, 0.0), (1.5, 0.0))
    """
    out = {nodes["X_in"]: (-2.0, 0.0), nodes["S"]: (-1.0, 0.0), nodes["Y"]: (0.0, 0.0)}
    external = list(nodes.get("X_ex", []))
    for i, name in enumerate(external):
        angle = 0.0 if len(external) == 1 else math.radians(70 - 140 * i / (len(external) - 1))
        out[name] = (round(1.5 * math.cos(angle), 12), round(1.5 * math.sin(angle), 12))
    return out


def plot_causal_graph(graph: CausalGraph, *, width: str | float = "single") -> tuple[Figure, Table]:
    """The causal graph of the local tests: X_in → S → Y, and each external variable's
    tested edge to Y, solid and red where its dependence survives conditioning on the
    latent space, thin and grey where it does not; line width grows with the effect.

    Parameters
    ----------
    graph : CausalGraph
        From :meth:`CausalGraph.load` (``interpret/causal/local_tests.json``).
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        One panel without axes.
    table : Table
        One row per drawn edge: ``source``, ``target``, ``kind`` (``structural`` or
        ``tested``), ``effect``, ``effect_err``, ``p_value``, ``significant`` (the test
        with the most conditioning variables, as :meth:`CausalGraph.to_networkx`), and
        the node positions ``x_source``, ``y_source``, ``x_target``, ``y_target``.
    """
    if not isinstance(graph, CausalGraph):
        raise ValidationError(f"expected a CausalGraph, got {type(graph).__name__}")
    network = graph.to_networkx()
    xy = graph_layout(graph.nodes)
    strengths = [d.get("strength", 0.0) for _, _, d in network.edges(data=True)]
    strongest = max([s for s in strengths if np.isfinite(s)] + [1e-12])
    rows: list[dict[str, Any]] = []
    with print_style():
        fig = new_figure(width, aspect=0.75)
        ax = fig.subplots()
        for source, target, data in network.edges(data=True):
            (x0, y0), (x1, y1) = xy[source], xy[target]
            tested = data["kind"] == "tested"
            significant = bool(data.get("significant", False))
            if tested:
                colour = "C3" if significant else "0.6"
                lw = 0.5 + 1.5 * float(np.nan_to_num(data["strength"])) / strongest
                ls = "-" if significant else "--"
            else:
                colour, lw, ls = "k", 1.0, "-"
            ax.annotate(
                "",
                xy=(x1, y1),
                xytext=(x0, y0),
                arrowprops={
                    "arrowstyle": "-|>" if not tested else "-",
                    "color": colour,
                    "lw": lw,
                    "ls": ls,
                    "shrinkA": 12,
                    "shrinkB": 12,
                },
            )
            rows.append(
                {
                    "source": source,
                    "target": target,
                    "kind": data["kind"],
                    "effect": float(data.get("effect", np.nan)),
                    "effect_err": float(data.get("effect_err", np.nan)),
                    "p_value": float(data.get("p_value", np.nan)),
                    "significant": significant,
                    "x_source": x0,
                    "y_source": y0,
                    "x_target": x1,
                    "y_target": y1,
                }
            )
        for name, role in network.nodes(data="role"):
            x, y = xy[name]
            ax.text(
                x,
                y,
                name.replace("_", " "),
                ha="center",
                va="center",
                fontsize="small",
                bbox={
                    "boxstyle": "round,pad=0.3",
                    "fc": _ROLE_COLOURS[role],
                    "ec": "0.3",
                    "lw": 0.5,
                },
            )
        ax.set(xlim=(-2.5, 2.2), ylim=(-1.7, 1.7))
        ax.set_axis_off()
        ax.plot([], [], color="C3", lw=1.5, label="dependent given S")
        ax.plot([], [], color="0.6", lw=1.0, ls="--", label="independent given S")
        ax.legend(loc="lower left", fontsize="small")
    return fig, Table(rows=rows)


def plot_pc_graph(
    found: DiscoveryResult,
    reference: DiscoveryResult | None = None,
    *,
    width: str | float = "single",
) -> tuple[Figure, Table]:
    """The graph PC found over catalog columns, on a circle: arrows for oriented edges,
    plain lines for undirected ones, line width growing with the bootstrap confidence.
    Against a ``reference`` (what PC finds with a perfect test, on the mock survey) the
    edges it shares are black, extra ones red, and missed ones grey and dotted.

    Parameters
    ----------
    found : DiscoveryResult
        ``interpret/causal/pc.json``'s ``graph``.
    reference : DiscoveryResult, optional
        ``pc.json``'s ``reference``, over the same columns.
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        One panel without axes.
    table : Table
        One row per drawn edge: ``a``, ``b``, ``oriented`` (``a -> b``), ``confidence``
        (NaN without a bootstrap), ``status`` (``found``, ``shared``, ``extra`` or
        ``missed``).

    Examples
    --------
    >>> found = DiscoveryResult(("a", "b", "c"), [[0, 1, 0], [0, 0, 1], [0, 1, 0]])
    >>> fig, table = plot_pc_graph(found)
    >>> table["status"].tolist()
    ['found', 'found']
    """
    if reference is not None and tuple(reference.columns) != tuple(found.columns):
        raise ValidationError(
            f"the reference graph is over {list(reference.columns)}, the found one over "
            f"{list(found.columns)}"
        )
    xy = {name: (float(x), float(y)) for name, (x, y) in nx.circular_layout(found.columns).items()}
    adjacent = None if reference is None else reference.adjacency + reference.adjacency.T > 0
    index = {name: i for i, name in enumerate(found.columns)}
    rows: list[dict[str, Any]] = []
    for a, b, oriented, confidence in found.edges():
        status = "found"
        if adjacent is not None:
            status = "shared" if adjacent[index[a], index[b]] else "extra"
        rows.append(
            {
                "a": a,
                "b": b,
                "oriented": oriented,
                "confidence": np.nan if confidence is None else confidence,
                "status": status,
            }
        )
    if reference is not None:
        have = found.adjacency + found.adjacency.T > 0
        for a, b, oriented, _ in reference.edges():
            if not have[index[a], index[b]]:
                rows.append(
                    {"a": a, "b": b, "oriented": oriented, "confidence": np.nan, "status": "missed"}
                )
    colours = {"found": "k", "shared": "k", "extra": "C3", "missed": "0.6"}
    with print_style():
        fig = new_figure(width, aspect=0.9 if width == "single" else 0.6)
        ax = fig.subplots()
        for row in rows:
            confidence = row["confidence"]
            lw = 0.8 if not np.isfinite(confidence) else 0.3 + 1.2 * confidence
            ax.annotate(
                "",
                xy=xy[row["b"]],
                xytext=xy[row["a"]],
                arrowprops={
                    "arrowstyle": "-|>" if row["oriented"] else "-",
                    "color": colours[row["status"]],
                    "lw": lw,
                    "ls": ":" if row["status"] == "missed" else "-",
                    "shrinkA": 14,
                    "shrinkB": 14,
                },
            )
        for name, (x, y) in xy.items():
            ax.text(
                x,
                y,
                name.replace("_", " "),
                ha="center",
                va="center",
                fontsize="small",
                bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "0.3", "lw": 0.5},
            )
        ax.set(xlim=(-1.45, 1.45), ylim=(-1.25, 1.25), aspect="equal")
        ax.set_axis_off()
        if reference is not None:
            for status, label in (
                ("shared", "in reference"),
                ("extra", "extra"),
                ("missed", "missed"),
            ):
                ls = ":" if status == "missed" else "-"
                ax.plot([], [], color=colours[status], ls=ls, label=label)
            ax.legend(loc="lower left", fontsize="small")
    return fig, Table(rows=rows, names=["a", "b", "oriented", "confidence", "status"])


def plot_mi_bars(
    pairs: Mapping[str, Mapping[str, Any]], *, width: str | float = "single"
) -> tuple[Figure, Table]:
    """Redundant, unique and synergistic information of each input pair (nats), as
    grouped bars.

    Parameters
    ----------
    pairs : mapping of str to mapping
        ``pid/pid.json``'s ``pairs``: per pair its ``inputs`` (two names) and the mean
        ``redundancy``, ``unique_1``, ``unique_2`` and ``synergy``.
    width : "single", "double" or float

    Returns
    -------
    fig : Figure
        One group of four bars per pair.
    table : Table
        ``pair``, ``input_1``, ``input_2``, ``term``, ``value`` (the bar heights).

    Examples
    --------
    >>> terms = {"redundancy": 0.2, "unique_1": 0.1, "unique_2": 0.0, "synergy": 0.05}
    >>> fig, table = plot_mi_bars({"a_b": {"inputs": ["a", "b"], **terms}})
    >>> table["value"].tolist()
    [0.2, 0.1, 0.0, 0.05]
    """
    if not pairs:
        raise ValidationError("no input pairs to plot")
    rows: list[dict[str, Any]] = []
    for pair, result in pairs.items():
        missing = [key for key in ("inputs", *MI_TERMS) if key not in result]
        if missing:
            raise ValidationError(f"MI decomposition of {pair!r} lacks {missing}")
        first, second = result["inputs"]
        rows += [
            {
                "pair": pair,
                "input_1": first,
                "input_2": second,
                "term": t,
                "value": float(result[t]),
            }
            for t in MI_TERMS
        ]
    table = Table(rows=rows)
    with print_style():
        fig = new_figure(width, aspect=0.7 if width == "single" else 0.4)
        ax = fig.subplots()
        centres = np.arange(len(pairs))
        bar = 0.8 / len(MI_TERMS)
        for t, term in enumerate(MI_TERMS):
            heights = table["value"][table["term"] == term]
            ax.bar(
                centres + (t - 1.5) * bar,
                heights,
                width=bar,
                color=f"C{t}",
                label=_MI_LABELS[term],
            )
        ax.axhline(0.0, color="k", lw=0.5)
        ax.set_xticks(centres)
        ax.set_xticklabels(
            [f"{r['inputs'][0]}\nvs {r['inputs'][1]}" for r in pairs.values()], fontsize="small"
        )
        ax.set_ylabel("information [nats]")
        ax.legend(ncols=2, fontsize="small")
        finish(fig)
    return fig, table
