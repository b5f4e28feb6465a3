"""What the true graph implies for the local tests, and how their verdicts score against it.

On the mock survey the generative DAG is known (:func:`clapkit.sim.graph.true_graph`),
and so is the selection the data went through: a galaxy is kept only if its Petrosian r
magnitude is bright enough, so every row is conditioned on the selection node. Whether
an external variable should come out "dependent" on the target in a local test is then
a d-separation question (:func:`implied_dependence`), with the selection node always in
the conditioning set.

The local tests condition on the *latent space* of a network that reads the images. The
latent is not a catalog quantity, so the graph needs a stand-in for it
(:func:`add_latent_proxy`): a node whose parents are the quantities that shape the
rendered images (the bulge and disk fluxes, made from the magnitudes' parents and the
Milky Way reddening; the sizes, axis ratios, position angle and centroid offsets;
:data:`clapkit.sim.graph.IMAGE_PARENTS`). Conditioning on it asks what the graph implies
once "what the images show" is held fixed. Two limits of that reading:

- Conditioning on a descendant of many variables is not the same as knowing them. It
  opens every collider at the proxy: any two of its parents become dependent, so every
  rendered quantity is implied dependent on the mass given the proxy, however little of
  it the latent actually keeps. The implied truth says which dependences *may* remain,
  not how strong they are.
- A latent that ignores a quantity is not a descendant of it. The network is trained
  with random quarter turns and flips and a term that pulls the latent vectors of such
  views together, and the mass does not depend on orientation, so by default the proxy
  leaves out the ``position_angle`` (``invariant``). Quarter turns and flips fix the
  orientation only modulo 90° and a reflection, so this is an idealisation; with
  ``invariant=()`` the position angle is implied dependent too, through the collider
  ``position_angle -> latent <- log_mstar``.

:func:`score_local_tests` compares the verdicts of a
:class:`~clapkit.interpret.causal_graph.CausalGraph` (after Benjamini–Hochberg, where
the tests were adjusted) with the implied truth, with and without the selection, in a
confusion table per conditioning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import networkx as nx

from clapkit.errors import ValidationError

__all__ = [
    "CELLS",
    "LATENT_PROXY",
    "add_latent_proxy",
    "check_selection_node",
    "confusion",
    "implied_dependence",
    "score_local_tests",
]

#: The proxy node for the latent space added by :func:`add_latent_proxy`.
LATENT_PROXY = "latent"
#: Cells of a confusion table: found dependent and implied dependent (TP), found
#: dependent but implied independent (FP), and so on.
CELLS = ("TP", "FP", "TN", "FN")
#: Quantities the latent is taken to ignore by default (see the module docstring).
DEFAULT_INVARIANT = ("position_angle",)


def check_selection_node(graph: nx.DiGraph, selection: str) -> None:
    """Refuse a selection node the graph does not have, naming it.

    Examples
    --------
    >>> check_selection_node(nx.DiGraph([("a", "s")]), "s")
    """
    if selection not in graph:
        raise ValidationError(
            f"the graph has no selection node {selection!r}; pass selection=None for data "
            "that were not selected"
        )


def implied_dependence(
    graph: nx.DiGraph,
    target: str,
    variable: str,
    given: Iterable[str] = (),
    selection: str | None = "selected",
) -> bool:
    """Whether the graph implies ``target`` and ``variable`` dependent given ``given``.

    True unless ``given`` together with the selection node d-separates them (networkx's
    ``is_d_separator``). The selection node is in every conditioning set because every
    row of the data passed the selection.

    Parameters
    ----------
    graph : networkx.DiGraph
        A DAG, e.g. :func:`clapkit.sim.graph.true_graph`, possibly with a latent proxy
        (:func:`add_latent_proxy`).
    target, variable : str
        The two nodes.
    given : iterable of str
        Nodes conditioned on (the latent proxy, redshift...).
    selection : str or None
        The selection node; None for data that were not selected.

    Returns
    -------
    bool

    Raises
    ------
    ValidationError
        If a node is not in the graph, ``target`` and ``variable`` coincide or are
        conditioned on, or the graph is not a DAG.

    Examples
    --------
    >>> collider = nx.DiGraph([("a", "s"), ("b", "s")])
    >>> implied_dependence(collider, "a", "b", selection="s")
    True
    >>> implied_dependence(collider, "a", "b", selection=None)
    False
    """
    if not isinstance(graph, nx.DiGraph) or not nx.is_directed_acyclic_graph(graph):
        raise ValidationError("graph must be a networkx.DiGraph without cycles (a DAG)")
    given = {given} if isinstance(given, str) else set(given)
    conditioning = set(given)
    if selection is not None:
        check_selection_node(graph, selection)
        conditioning.add(selection)
    missing = sorted(name for name in (target, variable, *given) if name not in graph)
    if missing:
        raise ValidationError(f"the graph has no nodes {missing}")
    if target == variable:
        raise ValidationError(f"target and variable are the same node {target!r}")
    if target in conditioning or variable in conditioning:
        raise ValidationError(
            f"{target!r} and {variable!r} cannot be conditioned on (given {sorted(conditioning)})"
        )
    return not nx.is_d_separator(graph, {target}, {variable}, conditioning)


def add_latent_proxy(
    graph: nx.DiGraph,
    parents: Sequence[str] | None = None,
    *,
    invariant: Sequence[str] = DEFAULT_INVARIANT,
    name: str = LATENT_PROXY,
) -> nx.DiGraph:
    """A copy of ``graph`` with a node standing for the latent space of an image model.

    Parameters
    ----------
    graph : networkx.DiGraph
        The true graph.
    parents : sequence of str, optional
        What shapes the images; :data:`clapkit.sim.graph.IMAGE_PARENTS` when None
        (for a survey with varying observing conditions pass
        ``clapkit.sim.graph.image_parents("varying")``, which adds the seeing and sky).
    invariant : sequence of str
        Parents the latent is taken to ignore, left out (see the module docstring);
        names that are not among the parents change nothing.
    name : str
        The proxy's node name.

    Returns
    -------
    networkx.DiGraph
        With ``graph.graph["latent_proxy"]`` naming the proxy.

    Examples
    --------
    >>> truth = nx.DiGraph([("m", "flux"), ("pa", "flux")])
    >>> g = add_latent_proxy(truth, ["m", "pa"], invariant=["pa"])
    >>> sorted(g.predecessors("latent")), g.graph["latent_proxy"]
    (['m'], 'latent')
    """
    if parents is None:
        # Imported here: the simulator's graph is what knows the rendering.
        from clapkit.sim.graph import IMAGE_PARENTS

        parents = IMAGE_PARENTS
    if name in graph:
        raise ValidationError(f"the graph already has a node {name!r}; name the proxy otherwise")
    missing = sorted(set(parents) - set(graph))
    if missing:
        raise ValidationError(f"the latent proxy's parents {missing} are not nodes of the graph")
    out = graph.copy()
    out.add_node(name)
    out.add_edges_from((parent, name) for parent in parents if parent not in invariant)
    out.graph["latent_proxy"] = name
    return out


def confusion(found: dict[str, bool], implied: dict[str, bool]) -> dict[str, list[str]]:
    """Confusion table of found against implied dependence, the variable names per cell.

    Examples
    --------
    >>> confusion({"a": True, "b": False, "c": True}, {"a": True, "b": True, "c": False})
    {'TP': ['a'], 'FP': ['c'], 'TN': [], 'FN': ['b']}
    """
    if set(found) != set(implied):
        raise ValidationError(
            f"found and implied verdicts are over different variables: {sorted(found)} and "
            f"{sorted(implied)}"
        )
    table: dict[str, list[str]] = {cell: [] for cell in CELLS}
    for name in found:
        cell = ("T" if found[name] == implied[name] else "F") + ("P" if found[name] else "N")
        table[cell].append(name)
    return table


def score_local_tests(
    tests: Any,
    truth: nx.DiGraph,
    *,
    target: str | None = None,
    selection: str | None = "selected",
    parents: Sequence[str] | None = None,
    invariant: Sequence[str] = DEFAULT_INVARIANT,
) -> dict[str, Any]:
    """Score local-test verdicts against what the true graph implies given the latent.

    Each test of variable X conditioned on C is "implied dependent" when the target and
    X are d-connected given the latent proxy (:func:`add_latent_proxy`), C and the
    selection node. The verdict scored is the stored one, which comes from the
    Benjamini–Hochberg adjusted p-value where the tests were adjusted.

    Parameters
    ----------
    tests : CausalGraph or sequence of (str, LocalTestResult)
        The local tests (a CausalGraph's target is used unless ``target`` is given).
    truth : networkx.DiGraph
        The true graph.
    target : str, optional
        The target node; required with a sequence of results.
    selection : str or None
        The selection node of ``truth``; None for a graph without one (the tables
        "with selection" then equal those without).
    parents, invariant
        The latent proxy's parents and the ones it ignores (:func:`add_latent_proxy`).

    Returns
    -------
    dict
        ``target``, ``selection``, ``latent_proxy`` (``{"parents", "invariant"}``),
        ``rows`` (per test: ``source``, ``conditioned_on``, ``found_dependent``,
        ``implied_with_selection``, ``implied_without_selection``), ``unscored``
        (sources not in the graph) and ``tables``: ``{"with_selection": {label:
        table}, "without_selection": {...}}`` with one :func:`confusion` table per
        conditioning, labelled ``"unconditional"`` or ``"given z"``.

    Examples
    --------
    >>> from clapkit.interpret.causal_graph import LocalTestResult
    >>> truth = nx.DiGraph([("m", "s"), ("x", "s"), ("m", "img"), ("pa", "img")])
    >>> found = LocalTestResult(0.2, 0.05, 0.001, "dependent", 0.05, (), False, 50, 1,
    ...                         999, 0, [4], [0.2], [0.01])
    >>> score = score_local_tests([("x", found)], truth, target="m", selection="s",
    ...                           parents=["m", "pa"])
    >>> score["tables"]["with_selection"]["unconditional"]["TP"]
    ['x']
    >>> score["tables"]["without_selection"]["unconditional"]["FP"]
    ['x']
    """
    target, rows_in = _rows(tests, target)
    if selection is not None and selection not in truth:
        raise ValidationError(
            f"the true graph has no selection node {selection!r}; pass selection=None for "
            "a graph without one"
        )
    proxy = add_latent_proxy(truth, parents, invariant=invariant)
    name = proxy.graph["latent_proxy"]
    rows: list[dict[str, Any]] = []
    unscored: list[str] = []
    tables: dict[str, dict[str, dict[str, list[str]]]] = {
        "with_selection": {},
        "without_selection": {},
    }
    grouped: dict[str, tuple[dict[str, bool], dict[str, bool], dict[str, bool]]] = {}
    for source, conditioned_on, verdict in rows_in:
        if source not in truth or any(c not in truth for c in conditioned_on):
            unscored.append(source)
            continue
        given = (name, *conditioned_on)
        with_sel = implied_dependence(proxy, target, source, given, selection)
        without = implied_dependence(proxy, target, source, given, None)
        found = verdict == "dependent"
        rows.append(
            {
                "source": source,
                "conditioned_on": list(conditioned_on),
                "found_dependent": found,
                "implied_with_selection": with_sel,
                "implied_without_selection": without,
            }
        )
        label = "given " + ", ".join(conditioned_on) if conditioned_on else "unconditional"
        group = grouped.setdefault(label, ({}, {}, {}))
        group[0][source], group[1][source], group[2][source] = found, with_sel, without
    for label, (found, with_sel, without) in grouped.items():
        tables["with_selection"][label] = confusion(found, with_sel)
        tables["without_selection"][label] = confusion(found, without)
    return {
        "target": target,
        "selection": selection,
        "latent_proxy": {
            "name": name,
            "parents": sorted(proxy.predecessors(name)),
            "invariant": list(invariant),
        },
        "rows": rows,
        "unscored": sorted(set(unscored)),
        "tables": tables,
    }


def _rows(tests: Any, target: str | None) -> tuple[str, list[tuple[str, tuple[str, ...], str]]]:
    """The target, and ``(source, conditioned_on, verdict)`` of every test."""
    from clapkit.interpret.causal_graph import CausalGraph, LocalTestResult

    if isinstance(tests, CausalGraph):
        target = tests.target if target is None else target
        return target, [
            (row["source"], tuple(row["conditioned_on"]), row["verdict"]) for row in tests.edges
        ]
    if target is None:
        raise ValidationError("target must be given when the tests are not a CausalGraph")
    rows = []
    for item in tests:
        if (
            not isinstance(item, tuple)
            or len(item) != 2
            or not isinstance(item[1], LocalTestResult)
        ):
            raise ValidationError(
                f"tests must be a CausalGraph or (source, LocalTestResult) pairs, got {item!r}"
            )
        source, result = item
        rows.append((str(source), result.conditioned_on, result.verdict))
    return target, rows
