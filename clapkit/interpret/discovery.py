"""Global causal discovery over catalog columns with the PC algorithm, scored against the truth.

The local tests ask whether one external variable carries information that the latent
space lacks. The PC algorithm (Spirtes, Glymour & Scheines 2000) asks the global
question: which catalog-level variables still depend on each other whatever subset of
the others is held fixed, and which way the arrows point where the data can tell. On the
mock survey the generative DAG is known (:func:`clapkit.sim.graph.true_graph`), so the
answer can be scored. The mock is also a selected sample (Petrosian r < 17.77), which
the references here ignore; :mod:`clapkit.interpret.fci` has the reference with the
selection conditioned on, and FCI, which allows for it.

The search is causal-learn's ``pc``. By default it runs the order-independent
("stable") variant of Colombo & Maathuis (2014, JMLR 15, 3741) with Fisher's z test of
partial correlation. PC assumes that no hidden variable is a common cause of two tested
columns (causal sufficiency) and that every independence in the data comes from the
graph (faithfulness). Fisher's z also assumes linear relations. The mock survey breaks
all three in places, and :func:`default_columns` explains where. PC returns a pattern
(CPDAG): it orients an edge only where the data fix its direction (colliders and Meek's
rules) and leaves the rest undirected.

An adjacency matrix here encodes edges as ``A[i, j] = 1, A[j, i] = 0`` for ``i -> j``
and ``A[i, j] = A[j, i] = 1`` for an undirected edge ``i - j``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from astropy.table import Table
from numpy.typing import NDArray
from tqdm.auto import tqdm

from clapkit.checks import check_int
from clapkit.errors import ValidationError

#: Independence tests of causal-learn for continuous data that :func:`pc_discovery` runs.
#: ``"kci"`` (kernel test) sees non-linear dependence but costs O(N³) per test.
TESTS = ("fisherz", "kci")
#: Rows needed beyond one per column. Fisher's z has N - |S| - 3 degrees of freedom, and a
#: test conditioned on every other column needs some to spare to have any power.
MIN_EXTRA_ROWS = 20
#: Catalog-level variables of the default stellar-mass graph, in the order they are tested
#: (see :func:`default_columns` for why these).
DEFAULT_COLUMNS = (
    "z",
    "log_mstar",
    "restframe_u_r",
    "bulge_fraction",
    "bulge_hlr_kpc",
    "disk_hlr_kpc",
    "bulge_hlr",
    "disk_hlr",
    "hlr",
    "disk_q",
    "disk_av",
    "ebv",
    "true_mag_r",
    "position_angle",
)


@dataclass(eq=False)
class EdgeFrequencies:
    """How often bootstrap resamples found each adjacency and each orientation.

    Attributes
    ----------
    columns : tuple of str
        The tested columns, in the order of the matrix rows.
    adjacency : numpy.ndarray, shape (n, n)
        Symmetric: the fraction of resamples in which ``i`` and ``j`` were adjacent,
        however the edge was oriented.
    orientation : numpy.ndarray, shape (n, n)
        The fraction of resamples that found the arrow ``i -> j``. The fraction that left
        the edge undirected is ``adjacency - orientation - orientation.T``.
    n_bootstrap : int
        The number of resamples.

    Examples
    --------
    >>> freq = EdgeFrequencies(("a", "b"), [[0, 1], [1, 0]], [[0, 0.75], [0, 0]], 4)
    >>> float(freq.unoriented[0, 1])
    0.25
    """

    columns: tuple[str, ...]
    adjacency: NDArray[np.float64]
    orientation: NDArray[np.float64]
    n_bootstrap: int

    def __post_init__(self) -> None:
        self.columns = tuple(self.columns)
        n = len(self.columns)
        self.adjacency = np.asarray(self.adjacency, dtype=float)
        self.orientation = np.asarray(self.orientation, dtype=float)
        for name in ("adjacency", "orientation"):
            matrix = getattr(self, name)
            if matrix.shape != (n, n):
                raise ValidationError(
                    f"edge frequencies: {name} has shape {matrix.shape}, expected ({n}, {n}) "
                    f"for the columns {list(self.columns)}"
                )
            if not np.all((matrix >= 0) & (matrix <= 1)):
                raise ValidationError(f"edge frequencies: {name} must lie in [0, 1]")

    @property
    def unoriented(self) -> NDArray[np.float64]:
        """The fraction of resamples that found ``i - j`` adjacent but undirected."""
        return self.adjacency - self.orientation - self.orientation.T

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` reads it back."""
        return {
            "columns": list(self.columns),
            "adjacency": self.adjacency.tolist(),
            "orientation": self.orientation.tolist(),
            "n_bootstrap": int(self.n_bootstrap),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EdgeFrequencies:
        """Inverse of :meth:`to_dict`."""
        _require_keys(data, ("columns", "adjacency", "orientation", "n_bootstrap"), "frequencies")
        return cls(data["columns"], data["adjacency"], data["orientation"], data["n_bootstrap"])


@dataclass(eq=False)
class DiscoveryResult:
    """A graph found by PC over catalog columns, with the parameters it was found with.

    Attributes
    ----------
    columns : tuple of str
        The tested columns, in the order of the matrix rows.
    adjacency : numpy.ndarray of int, shape (n, n)
        ``A[i, j] = 1, A[j, i] = 0`` for ``i -> j``; ``A[i, j] = A[j, i] = 1`` for an
        edge PC left undirected.
    alpha : float
        Significance level of the independence tests.
    depth : int or None
        Largest conditioning set tried (``None``: no limit).
    stable : bool
        Whether the order-independent skeleton search was used.
    test : str
        The independence test (``"d_separation"`` for :func:`reference_graph`).
    n_rows : int
        Rows the point estimate used (after any subsampling; 0 for a reference graph).
    edge_confidence : EdgeFrequencies or None
        Bootstrap frequencies, if they were computed.

    Examples
    --------
    >>> result = DiscoveryResult(("a", "b", "c"), [[0, 1, 0], [0, 0, 1], [0, 1, 0]])
    >>> result.edges()
    [('a', 'b', True, None), ('b', 'c', False, None)]
    >>> graph = result.to_networkx()
    >>> sorted(graph.edges(data="oriented"))
    [('a', 'b', True), ('b', 'c', False), ('c', 'b', False)]
    """

    columns: tuple[str, ...]
    adjacency: NDArray[np.int64]
    alpha: float = math.nan
    depth: int | None = None
    stable: bool = True
    test: str = "fisherz"
    n_rows: int = 0
    edge_confidence: EdgeFrequencies | None = None

    def __post_init__(self) -> None:
        self.columns = tuple(self.columns)
        n = len(self.columns)
        if len(set(self.columns)) != n:
            raise ValidationError(f"discovery result: repeated column names in {self.columns}")
        adjacency = np.asarray(self.adjacency)
        if adjacency.shape != (n, n):
            raise ValidationError(
                f"discovery result: adjacency has shape {adjacency.shape}, expected ({n}, {n}) "
                f"for the columns {list(self.columns)}"
            )
        if not np.isin(adjacency, (0, 1)).all() or np.diagonal(adjacency).any():
            raise ValidationError(
                "discovery result: adjacency must hold only 0 and 1, with a zero diagonal"
            )
        self.adjacency = adjacency.astype(np.int64)
        if self.edge_confidence is not None and self.edge_confidence.columns != self.columns:
            raise ValidationError(
                f"discovery result: edge frequencies are over {list(self.edge_confidence.columns)}"
                f", the graph over {list(self.columns)}"
            )

    def with_confidence(self, frequencies: EdgeFrequencies) -> DiscoveryResult:
        """A copy with bootstrap frequencies attached (from :func:`bootstrap_edge_frequencies`)."""
        return dataclasses.replace(self, edge_confidence=frequencies)

    def edges(self) -> list[tuple[str, str, bool, float | None]]:
        """Every edge once, as ``(a, b, oriented, confidence)``.

        An oriented edge reads ``a -> b``; an undirected one is listed in column order.
        ``confidence`` is the bootstrap frequency of the adjacency (``None`` without a
        bootstrap).
        """
        found = []
        for i, j in zip(*np.nonzero(self.adjacency), strict=True):
            oriented = not self.adjacency[j, i]
            if oriented or i < j:
                confidence = None
                if self.edge_confidence is not None:
                    confidence = float(self.edge_confidence.adjacency[i, j])
                found.append((self.columns[i], self.columns[j], oriented, confidence))
        return found

    def to_networkx(self) -> nx.DiGraph:
        """The graph as a ``networkx.DiGraph`` over every tested column.

        An undirected edge becomes two opposite arcs. Every arc carries ``oriented``;
        with a bootstrap it also carries ``confidence`` (frequency of the adjacency) and
        ``orientation_confidence`` (frequency of the arc as drawn, or of the edge being
        left undirected). The parameters are graph attributes.
        """
        graph = nx.DiGraph(
            alpha=self.alpha,
            depth=self.depth,
            stable=self.stable,
            test=self.test,
            n_rows=self.n_rows,
        )
        graph.add_nodes_from(self.columns)
        index = {name: i for i, name in enumerate(self.columns)}
        for a, b, oriented, confidence in self.edges():
            attributes: dict[str, Any] = {"oriented": oriented}
            if self.edge_confidence is not None:
                i, j = index[a], index[b]
                freq = self.edge_confidence
                attributes["confidence"] = confidence
                attributes["orientation_confidence"] = float(
                    freq.orientation[i, j] if oriented else freq.unoriented[i, j]
                )
            graph.add_edge(a, b, **attributes)
            if not oriented:
                graph.add_edge(b, a, **attributes)
        return graph

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` reads it back.

        Examples
        --------
        >>> import json
        >>> result = DiscoveryResult(("a", "b"), [[0, 1], [1, 0]], alpha=0.01, n_rows=50)
        >>> back = DiscoveryResult.from_dict(json.loads(json.dumps(result.to_dict())))
        >>> back.edges(), back.alpha, back.n_rows
        ([('a', 'b', False, None)], 0.01, 50)
        """
        return {
            "columns": list(self.columns),
            "adjacency": self.adjacency.tolist(),
            "alpha": float(self.alpha),
            "depth": self.depth,
            "stable": bool(self.stable),
            "test": self.test,
            "n_rows": int(self.n_rows),
            "edge_confidence": (
                None if self.edge_confidence is None else self.edge_confidence.to_dict()
            ),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscoveryResult:
        """Inverse of :meth:`to_dict`."""
        keys = ("columns", "adjacency", "alpha", "depth", "stable", "test", "n_rows")
        _require_keys(data, keys, "discovery result")
        confidence = data.get("edge_confidence")
        return cls(
            **{key: data[key] for key in keys},
            edge_confidence=None if confidence is None else EdgeFrequencies.from_dict(confidence),
        )


def default_columns(catalog: Table) -> tuple[str, ...]:
    """The catalog-level variables of the default stellar-mass graph present in ``catalog``.

    The set follows the published interpretation of stellar mass: mass, redshift, the
    SED type (rest-frame u − r), morphology (bulge fraction, bulge and disk sizes, axis
    ratio, the disk's dust) and photometry (E(B−V), the r magnitude).

    The truth that PC can be scored against is the true DAG restricted to the tested
    columns (:func:`reference_graph`). Leaving out a variable through which one tested
    column acts on another (a mediator) or that causes two of them (a common cause)
    makes that restriction differ from what PC can find. The dependence remains in the
    data, so PC draws an edge that the restricted truth lacks. Keeping two columns that
    nearly determine each other fails the other way: conditioning on one separates the
    other from everything, so PC drops true edges. The choices follow from that:

    - The physical and on-sky sizes of both components (``bulge_hlr_kpc``,
      ``disk_hlr_kpc``, ``bulge_hlr``, ``disk_hlr``) carry the size–mass relation from
      ``log_mstar`` to ``hlr``: mass sets the physical size, and redshift turns it into
      arcsec. Without them the restricted truth has no path from ``log_mstar`` to ``hlr``.
    - ``true_mag_r`` (noiseless) is the magnitude that redshift, mass, SED and
      morphology act on. The observed ``mag_r`` is that plus 0.01–0.05 mag of noise. With
      both present PC removed every edge into the magnitude. Without ``true_mag_r``,
      ``mag_r``'s parents would be hidden. Pass ``mag_r`` instead to study the observed
      magnitude, and score with ``marginalize=True``.
    - ``disk_q -> disk_av`` is the dust chain. ``inclination`` is left out because the
      disks' fixed thickness makes ``disk_q`` a deterministic function of it.
      ``disk_gamma_v`` is left out because it is a clipped linear function of
      ``log_mstar``. The mass-dependent dust law therefore hides a
      ``log_mstar -> disk_av`` path. It is multiplicative and invisible to Fisher's z
      anyway.
    - ``position_angle`` is independent of everything by construction. A found edge to
      it is a false positive whatever the truth is restricted to.
    - The SED coefficients sum to one (an exactly collinear set, which Fisher's z cannot
      invert), so ``restframe_u_r`` stands in for the SED.

    Some confounding cannot be removed. ``source_index``, the real galaxy each mock
    galaxy was resampled from, is the common cause of ``z``, ``log_mstar``, ``ebv`` and
    the SED. It is an arbitrary row number, not a quantity that a test can condition on,
    so PC finds edges among those columns that the restricted truth lacks. Score with
    ``marginalize=True`` (see :func:`reference_graph`) to compare against what a perfect
    test over these columns would find instead. Most mock relations are also non-linear
    (sizes are log-linear in mass, magnitudes logarithmic in flux), so Fisher's z on the
    raw columns misses and misorients edges. On 3,000 mock galaxies the skeleton's
    precision was about 0.6 and its recall about 0.5 against the restricted truth.

    Parameters
    ----------
    catalog : astropy.table.Table
        A catalog of the mock survey (or any catalog using its column names).

    Returns
    -------
    tuple of str
        The columns of :data:`DEFAULT_COLUMNS` that ``catalog`` has, in that order.

    Raises
    ------
    ValidationError
        If fewer than two of them are present.

    Examples
    --------
    >>> default_columns(Table({"z": [0.1], "log_mstar": [10.0], "mag_g": [17.0]}))
    ('z', 'log_mstar')
    """
    present = tuple(name for name in DEFAULT_COLUMNS if name in catalog.colnames)
    if len(present) < 2:
        raise ValidationError(
            f"the catalog has {len(present)} of the default discovery columns "
            f"({', '.join(DEFAULT_COLUMNS)}); pass the columns to test explicitly"
        )
    return present


def pc_discovery(
    catalog: Table,
    columns: Sequence[str] | None = None,
    *,
    alpha: float = 0.01,
    depth: int | None = None,
    stable: bool = True,
    test: str = "fisherz",
    max_rows: int | None = None,
    n_bootstrap: int = 0,
    seed: int = 0,
    progress: bool = False,
) -> DiscoveryResult:
    """Find the causal pattern (CPDAG) over catalog columns with the PC algorithm.

    The columns are standardised (which changes no partial correlation but keeps the
    correlation matrix well conditioned) and passed to causal-learn's ``pc``. Colliders
    are oriented from the separating sets, with conflicts resolved in favour of the
    colliders found first (causal-learn's ``uc_rule=0, uc_priority=2``), and then Meek's
    rules are applied.

    Parameters
    ----------
    catalog : astropy.table.Table
        One row per galaxy.
    columns : sequence of str, optional
        The variables to relate; :func:`default_columns` if not given. Each must be a
        numeric, finite, non-constant 1-d column.
    alpha : float
        Significance level of each independence test. A pair is separated when a test
        has p > alpha, so a smaller alpha keeps more edges.
    depth : int, optional
        Largest conditioning set tried (causal-learn's ``max_k``). ``0`` tests only
        marginal independence; ``None`` goes as deep as the graph allows.
    stable : bool
        Use the order-independent skeleton search: edges are removed only after every
        pair has been tested at a given depth, so the skeleton does not depend on the
        column order. Orientation conflicts can still depend on it.
    test : {"fisherz", "kci"}
        Fisher's z of partial correlation (linear, fast) or the kernel test (slow).
    max_rows : int, optional
        Run on a random subsample of this many rows, for speed. PC's tests gain power
        with rows, so fewer rows mean fewer edges.
    n_bootstrap : int
        If positive, also run :func:`bootstrap_edge_frequencies` with this many resamples
        (of ``max_rows`` rows each, drawn from the whole catalog) and the same seed, and
        attach the result as ``edge_confidence``.
    seed : int
        Seeds the subsample and the bootstrap.
    progress : bool
        Show a progress bar over the bootstrap resamples.

    Returns
    -------
    DiscoveryResult

    Raises
    ------
    ValidationError
        If a column is missing, not numeric, not finite or constant, if the columns are
        linearly dependent, if there are too few rows, or if a parameter is out of range.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a, c = rng.normal(size=(2, 500))
    >>> catalog = Table({"a": a, "c": c, "b": a + c + rng.normal(size=500)})
    >>> pc_discovery(catalog, ["a", "b", "c"]).edges()
    [('a', 'b', True, None), ('c', 'b', True, None)]
    """
    columns = default_columns(catalog) if columns is None else tuple(columns)
    _check_parameters(alpha, depth, test, n_bootstrap)
    data = _data_matrix(catalog, columns)
    size = _sample_size(len(data), len(columns), max_rows)
    if size < len(data):
        data = data[np.sort(np.random.default_rng(seed).permutation(len(data))[:size])]
    adjacency = _run_pc(data, columns, alpha, depth, stable, test)
    result = DiscoveryResult(columns, adjacency, alpha, depth, stable, test, size)
    if n_bootstrap:
        frequencies = bootstrap_edge_frequencies(
            catalog,
            columns,
            n_bootstrap=n_bootstrap,
            seed=seed,
            max_rows=max_rows,
            alpha=alpha,
            depth=depth,
            stable=stable,
            test=test,
            progress=progress,
        )
        result = result.with_confidence(frequencies)
    return result


def bootstrap_edge_frequencies(
    catalog: Table,
    columns: Sequence[str] | None = None,
    *,
    n_bootstrap: int = 100,
    seed: int = 0,
    max_rows: int | None = None,
    alpha: float = 0.01,
    depth: int | None = None,
    stable: bool = True,
    test: str = "fisherz",
    progress: bool = False,
) -> EdgeFrequencies:
    """Run PC on bootstrap resamples and count how often each edge and arrow appears.

    A frequency near one marks an edge that does not hinge on a few galaxies. It is not
    a probability that the edge is causal: a confounded pair is adjacent in every
    resample.

    Parameters
    ----------
    catalog : astropy.table.Table
        One row per galaxy.
    columns : sequence of str, optional
        The variables to relate; :func:`default_columns` if not given.
    n_bootstrap : int
        Number of resamples.
    seed : int
        Seeds the resampling.
    max_rows : int, optional
        Rows per resample (drawn with replacement from the whole catalog); the
        catalog's length if not given.
    alpha, depth, stable, test
        As for :func:`pc_discovery`.
    progress : bool
        Show a progress bar.

    Returns
    -------
    EdgeFrequencies

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=300)
    >>> catalog = Table({"a": a, "b": a + rng.normal(size=300), "c": rng.normal(size=300)})
    >>> freq = bootstrap_edge_frequencies(catalog, ["a", "b", "c"], n_bootstrap=5)
    >>> float(freq.adjacency[0, 1]), bool(freq.adjacency[0, 2] < 0.5)
    (1.0, True)
    """
    columns = default_columns(catalog) if columns is None else tuple(columns)
    _check_parameters(alpha, depth, test, n_bootstrap)
    check_int(n_bootstrap, "n_bootstrap")
    data = _data_matrix(catalog, columns)
    size = _sample_size(len(data), len(columns), max_rows)
    rng = np.random.default_rng(seed)
    n = len(columns)
    adjacent = np.zeros((n, n))
    arrows = np.zeros((n, n))
    for _ in tqdm(range(n_bootstrap), desc="PC bootstrap", unit="resample", disable=not progress):
        adjacency = _run_pc(
            data[rng.integers(0, len(data), size)], columns, alpha, depth, stable, test
        )
        adjacent += adjacency | adjacency.T
        arrows += adjacency & (1 - adjacency.T)
    return EdgeFrequencies(columns, adjacent / n_bootstrap, arrows / n_bootstrap, n_bootstrap)


def reference_graph(
    truth: nx.DiGraph, columns: Sequence[str], *, marginalize: bool = False
) -> DiscoveryResult:
    """What PC would find over ``columns`` with a perfect independence test.

    PC runs with d-separation in a DAG (causal-learn's ``"d_separation"`` test) in place
    of a statistical test. PC with such an oracle is sound and complete, so the result is
    the pattern (CPDAG) of the DAG. This is the target to score against, because no
    method can orient an edge that is reversible within the Markov equivalence class.

    Parameters
    ----------
    truth : networkx.DiGraph
        The true DAG, over at least ``columns`` (e.g. :func:`clapkit.sim.graph.true_graph`).
    columns : sequence of str
        The tested columns.
    marginalize : bool
        ``False``: the truth restricted to ``columns`` (the induced subgraph). Paths
        through left-out variables are dropped, so a left-out mediator or common cause
        removes an edge that data still support. ``True``: d-separation in the whole DAG,
        with the left-out variables hidden, which is what PC over ``columns`` could find
        with a perfect test. Hidden confounders then yield adjacencies, and possibly
        orientations that no DAG over ``columns`` explains.

    Returns
    -------
    DiscoveryResult
        With ``test="d_separation"`` and ``n_rows=0``.

    Examples
    --------
    >>> truth = nx.DiGraph([("a", "m"), ("m", "b")])
    >>> reference_graph(truth, ["a", "b"]).edges()
    []
    >>> reference_graph(truth, ["a", "b"], marginalize=True).edges()
    [('a', 'b', False, None)]
    """
    columns = tuple(columns)
    _check_truth(truth, columns)
    if marginalize:
        # d-separation among the columns depends only on their ancestors: dropping the
        # rest (other bands' magnitudes and errors) makes every oracle query cheaper.
        keep = set(columns).union(*(nx.ancestors(truth, name) for name in columns))
        graph = truth.subgraph(keep)
    else:
        graph = truth.subgraph(columns)
    # causal-learn's oracle names nodes by column index; hidden nodes take the indices after.
    hidden = [node for node in graph if node not in columns]
    labels = {name: i for i, name in enumerate((*columns, *hidden))}
    dag = nx.relabel_nodes(graph, labels)
    n = len(columns)
    # The data are never read by the oracle; the array only gives the number of variables.
    placeholder = np.zeros((n, n))
    cg = _pc_function()(
        placeholder,
        0.5,
        "d_separation",
        True,
        uc_rule=0,
        uc_priority=2,
        show_progress=False,
        true_dag=dag,
    )
    return DiscoveryResult(columns, _adjacency(cg.G.graph), math.nan, None, True, "d_separation")


def compare_adjacency(found: NDArray[np.integer], reference: NDArray[np.integer]) -> dict[str, Any]:
    """Compare two patterns given as adjacency matrices over the same columns.

    Each unordered pair of columns is in one of four states: no edge, ``i -> j``,
    ``j -> i``, or undirected. The structural Hamming distance (SHD) is the number of
    pairs whose state differs, so a missing or extra adjacency counts 1, and so does an
    adjacency in both whose marks differ (reversed, or directed in one and undirected in
    the other). This is Tsamardinos et al. (2006)'s SHD on patterns, the same count as
    causal-learn's ``SHD``. Comparing against the true DAG's pattern rather than the DAG
    means PC is not charged for leaving undirected an edge that the data cannot orient.

    Parameters
    ----------
    found, reference : array-like of int, shape (n, n)
        Adjacency matrices in the encoding of :class:`DiscoveryResult`.

    Returns
    -------
    dict
        ``shd``; its parts ``n_missing``, ``n_extra`` and ``n_misoriented``; skeleton
        ``precision`` (the share of found adjacencies that are in the reference) and
        ``recall`` (the share of reference adjacencies found); ``orientation_precision``
        (the share of found arrows on true adjacencies that the reference has the same
        way) and ``orientation_recall`` (the share of reference arrows found);
        ``n_true_edges`` and ``n_found_edges`` (adjacencies). A ratio with nothing to
        count is NaN.

    Examples
    --------
    >>> reference = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]])  # a -> b <- c
    >>> found = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]])  # b - a - c
    >>> score = compare_adjacency(found, reference)
    >>> score["shd"], score["n_missing"], score["n_extra"], score["n_misoriented"]
    (3, 1, 1, 1)
    >>> score["precision"], score["recall"]
    (0.5, 0.5)
    """
    found, reference, upper = _square_pair(found, reference, "adjacency")
    found_adjacent = (found | found.T).astype(bool) & upper
    true_adjacent = (reference | reference.T).astype(bool) & upper
    both = found_adjacent & true_adjacent
    same_marks = (found == reference) & (found.T == reference.T)
    n_missing = int((true_adjacent & ~found_adjacent).sum())
    n_extra = int((found_adjacent & ~true_adjacent).sum())
    n_misoriented = int((both & ~same_marks).sum())
    # Arrows: i -> j with the reverse mark absent.
    found_arrows = (found == 1) & (found.T == 0)
    true_arrows = (reference == 1) & (reference.T == 0)
    found_arrows_on_truth = found_arrows & (reference | reference.T).astype(bool)
    return {
        "shd": n_missing + n_extra + n_misoriented,
        "n_missing": n_missing,
        "n_extra": n_extra,
        "n_misoriented": n_misoriented,
        "precision": _ratio(both.sum(), found_adjacent.sum()),
        "recall": _ratio(both.sum(), true_adjacent.sum()),
        "orientation_precision": _ratio(
            (found_arrows_on_truth & true_arrows).sum(), found_arrows_on_truth.sum()
        ),
        "orientation_recall": _ratio((found_arrows & true_arrows).sum(), true_arrows.sum()),
        "n_true_edges": int(true_adjacent.sum()),
        "n_found_edges": int(found_adjacent.sum()),
    }


def score_graph(
    result: DiscoveryResult, truth: nx.DiGraph, *, marginalize: bool = False
) -> dict[str, Any]:
    """Score a found graph against the true DAG over the same columns.

    The reference is the pattern of the truth restricted to ``result.columns``
    (:func:`reference_graph`), and the scores are those of :func:`compare_adjacency`.
    With the default ``marginalize=False`` the restriction is the induced subgraph, so
    a mediator or common cause left out of the columns turns a dependence that PC
    rightly finds into an "extra" edge (see :func:`default_columns`).
    ``marginalize=True`` scores against what a perfect test could find over these
    columns instead.

    Parameters
    ----------
    result : DiscoveryResult
        From :func:`pc_discovery`.
    truth : networkx.DiGraph
        The true DAG, e.g. ``clapkit.sim.graph.true_graph(("sdss",))``.
    marginalize : bool
        See :func:`reference_graph`.

    Returns
    -------
    dict
        See :func:`compare_adjacency`.

    Examples
    --------
    >>> truth = nx.DiGraph([("a", "b"), ("c", "b"), ("b", "d")])
    >>> found = DiscoveryResult(("a", "b", "c"), [[0, 1, 0], [0, 0, 0], [0, 1, 0]])
    >>> score = score_graph(found, truth)
    >>> score["shd"], score["precision"], score["recall"], score["orientation_precision"]
    (0, 1.0, 1.0, 1.0)
    """
    reference = reference_graph(truth, result.columns, marginalize=marginalize)
    return compare_adjacency(result.adjacency, reference.adjacency)


def _square_pair(
    found: NDArray[np.integer], reference: NDArray[np.integer], what: str
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """Two (n, n) matrices of one graph each, as int64, and the mask of their upper
    triangle (each pair of nodes once); refused unless square and alike."""
    found = np.asarray(found, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    if found.shape != reference.shape or found.ndim != 2 or found.shape[0] != found.shape[1]:
        raise ValidationError(
            f"{what} matrices must be square and alike, got {found.shape} and {reference.shape}"
        )
    return found, reference, np.triu(np.ones(found.shape, dtype=bool), k=1)


def _ratio(numerator: int, denominator: int) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _pc_function() -> Callable[..., Any]:
    # Imported on first use: causal-learn is an optional extra and takes seconds to import.
    try:
        from causallearn.search.ConstraintBased.PC import pc
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError(
            "causal discovery needs causal-learn: pip install 'clapkit[interpret]'"
        ) from err
    return pc


def _run_pc(
    data: NDArray[np.float64],
    columns: tuple[str, ...],
    alpha: float,
    depth: int | None,
    stable: bool,
    test: str,
) -> NDArray[np.int64]:
    try:
        cg = _pc_function()(
            data,
            alpha,
            test,
            stable,
            uc_rule=0,
            uc_priority=2,
            show_progress=False,
            max_k=depth,
        )
    except ValueError as err:
        # causal-learn raises a bare ValueError when a conditioning set's correlation matrix
        # is singular, which a resample of a nearly collinear catalog can produce.
        raise ValidationError(
            f"PC failed on the columns {list(columns)}: {err} Leave out columns that are "
            "functions of the others."
        ) from err
    return _adjacency(cg.G.graph)


def _adjacency(marks: NDArray[np.integer]) -> NDArray[np.int64]:
    """Convert causal-learn's endpoint matrix to the adjacency encoding of this module."""
    # causal-learn stores the mark at node i of the edge i - j in G.graph[i, j]: -1 a tail,
    # 1 an arrowhead, 0 no edge. So i -> j is graph[i, j] = -1, graph[j, i] = 1.
    marks = np.asarray(marks)
    adjacent = marks != 0
    arrow = (marks == -1) & (marks.T == 1)
    # A bidirected edge (both arrowheads, from conflicting colliders) has no single
    # orientation and is kept as an undirected adjacency.
    return (adjacent & ~arrow.T).astype(np.int64)


def _check_parameters(alpha: float, depth: int | None, test: str, n_bootstrap: int) -> None:
    if not 0 < alpha < 1:
        raise ValidationError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if depth is not None:
        check_int(depth, "depth (or None)", minimum=0)
    if test not in TESTS:
        raise ValidationError(f"test must be one of {TESTS}, got {test!r}")
    check_int(n_bootstrap, "n_bootstrap", minimum=0)


def _sample_size(n_rows: int, n_columns: int, max_rows: int | None) -> int:
    needed = n_columns + MIN_EXTRA_ROWS
    if max_rows is None:
        return n_rows
    max_rows = check_int(max_rows, "max_rows")
    if max_rows < needed:
        raise ValidationError(
            f"max_rows must be at least {needed} for {n_columns} columns, got {max_rows}"
        )
    return min(n_rows, max_rows)


def _data_matrix(catalog: Table, columns: tuple[str, ...]) -> NDArray[np.float64]:
    """The standardised (N, n) matrix of the columns, after checking everything PC needs."""
    if not isinstance(catalog, Table):
        raise ValidationError(f"catalog must be an astropy Table, got {type(catalog).__name__}")
    if len(columns) < 2:
        raise ValidationError(f"causal discovery needs at least two columns, got {list(columns)}")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise ValidationError(f"columns are repeated: {repeated}")
    for name in columns:
        if name not in catalog.colnames:
            raise ValidationError(
                f"the catalog has no column {name!r}; available: {', '.join(catalog.colnames)}"
            )
        column = catalog[name]
        if column.dtype.kind not in "biuf" or column.ndim != 1:
            raise ValidationError(
                f"column {name!r} must be a 1-d numeric column, got dtype {column.dtype} "
                f"and shape {column.shape}"
            )
    needed = len(columns) + MIN_EXTRA_ROWS
    if len(catalog) < needed:
        raise ValidationError(
            f"PC on {len(columns)} columns needs at least {needed} rows, the catalog has "
            f"{len(catalog)}"
        )
    data = np.empty((len(catalog), len(columns)))
    for k, name in enumerate(columns):
        # Masked entries become NaN so that they are reported with the non-finite ones.
        values = np.ma.filled(np.ma.asarray(catalog[name], dtype=float), np.nan)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValidationError(
                f"column {name!r} is not finite (NaN, inf or masked) in {bad.size} rows, "
                f"first at rows {bad[:5].tolist()}; drop or fill them first"
            )
        scale = values.std()
        if scale == 0:
            raise ValidationError(f"column {name!r} is constant; it cannot depend on anything")
        data[:, k] = (values - values.mean()) / scale
    _check_not_collinear(data, columns)
    return data


def _check_not_collinear(data: NDArray[np.float64], columns: tuple[str, ...]) -> None:
    # Fisher's z inverts correlation submatrices; an exact linear relation makes them
    # singular, and it also breaks faithfulness for any test.
    eigenvalues, eigenvectors = np.linalg.eigh(np.corrcoef(data, rowvar=False))
    if eigenvalues[0] > 1e-10 * len(columns):
        return
    involved = [columns[k] for k in np.flatnonzero(np.abs(eigenvectors[:, 0]) > 0.05)]
    raise ValidationError(
        f"columns {involved} are linearly dependent (e.g. fractions that sum to one); "
        "leave one of them out"
    )


def _check_truth(truth: nx.DiGraph, columns: tuple[str, ...]) -> None:
    if not isinstance(truth, nx.DiGraph) or not nx.is_directed_acyclic_graph(truth):
        raise ValidationError("truth must be a networkx.DiGraph without cycles (a DAG)")
    missing = [name for name in columns if name not in truth]
    if missing:
        raise ValidationError(
            f"the true graph has no node for the columns {missing}; for magnitudes, build "
            "it with their band sets, e.g. true_graph(('sdss',))"
        )


def _require_keys(data: dict[str, Any], keys: Sequence[str], what: str) -> None:
    missing = [key for key in keys if key not in data]
    if missing:
        raise ValidationError(f"{what}: the dictionary lacks the keys {missing}")
