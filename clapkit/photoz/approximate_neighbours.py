"""Approximate k nearest neighbours through pynndescent, under the exact search's contract.

pynndescent builds a k-nearest-neighbour graph (random-projection trees, then NN-descent)
and answers a query by a greedy walk on it. Its answers are approximate, its graph is
shallow (``n_neighbors`` ≈ 30 edges per point) while CLAP asks for k in the thousands,
and it knows nothing of "every neighbour but the query's own row". So
:class:`PynndescentSearch` asks pynndescent for ``k + 1`` candidates where a row is to be
left out, drops that row if found (else the farthest candidate), and re-ranks the
candidates by the float64 distance between the float32 points, ties by lower index: the
order the exact search returns, on whatever set pynndescent found. A query for which
pynndescent returns fewer than the needed distinct candidates (a disconnected graph
component) is answered by the exact search instead, so every row holds k valid
neighbours. Results are reproducible for a fixed ``random_state``: the build and the
search draw their random numbers from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from clapkit.checks import check_int, check_number
from clapkit.errors import ValidationError

_JIT = {"cache": True, "nogil": True}


@dataclass(frozen=True)
class PynndescentOptions:
    """Settings of the pynndescent graph and its queries.

    Attributes
    ----------
    n_neighbors : int
        Edges per point of the graph (pynndescent's default 30); capped at N − 1.
        More edges: better recall, slower build, more memory.
    n_trees : int or None
        Random-projection trees that seed the graph (None: pynndescent's choice).
    n_iters : int or None
        NN-descent iterations (None: pynndescent's choice).
    diversify_prob : float
        Probability, in [0, 1], of pruning a redundant edge from the search graph.
    pruning_degree_multiplier : float
        The search graph keeps at most this many times ``n_neighbors`` edges per point.
    epsilon : float
        Search breadth of a query, >= 0 (pynndescent's default 0.1; 0.2–0.3 for high
        recall): candidates up to ``1 + epsilon`` times the current k-th distance are
        explored.
    random_state : int
        Seed of the build and the queries.
    n_jobs : int or None
        pynndescent's build threads (None: all).

    Examples
    --------
    >>> PynndescentOptions.from_dict({"epsilon": 0.2}).epsilon
    0.2
    >>> PynndescentOptions.from_dict({"epsilon": -1})
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: pynndescent option epsilon must be a number > -1e-12, got -1
    """

    n_neighbors: int = 30
    n_trees: int | None = None
    n_iters: int | None = None
    diversify_prob: float = 1.0
    pruning_degree_multiplier: float = 1.5
    epsilon: float = 0.1
    random_state: int = 0
    n_jobs: int | None = None

    def __post_init__(self) -> None:
        name = "pynndescent option {}".format
        check_int(self.n_neighbors, name("n_neighbors"), minimum=2)
        for key in ("n_trees", "n_iters", "n_jobs"):
            if getattr(self, key) is not None:
                check_int(getattr(self, key), name(key))
        check_int(self.random_state, name("random_state"), minimum=0)
        prob = check_number(self.diversify_prob, name("diversify_prob"), above=-1e-12)
        if prob > 1:
            raise ValidationError(f"{name('diversify_prob')} must lie in [0, 1], got {prob}")
        check_number(self.pruning_degree_multiplier, name("pruning_degree_multiplier"), above=0)
        check_number(self.epsilon, name("epsilon"), above=-1e-12)

    @classmethod
    def from_dict(cls, options: dict[str, Any] | None) -> PynndescentOptions:
        """Options from a mapping (e.g. a run configuration), unknown keys refused."""
        options = dict(options or {})
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise ValidationError(f"unknown pynndescent options {unknown}; known: {known}")
        return cls(**options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@numba.njit(parallel=True, **_JIT)
def _rerank_kernel(ref, query, candidates, skip, k, out, short):
    """Per query: distinct valid candidates other than ``skip``, by (float64 distance,
    index); ``short`` flags a query with fewer than k of them."""
    n_query, width = candidates.shape
    dim = ref.shape[1]
    for i in numba.prange(n_query):
        row = np.sort(candidates[i])  # by index: the stable sort below breaks ties by it
        dist = np.empty(width, dtype=np.float64)
        kept = np.empty(width, dtype=np.int64)
        n = 0
        previous = -1
        for r in row:
            if r < 0 or r == previous or r == skip[i]:
                continue
            previous = r
            s = 0.0
            for d in range(dim):
                diff = np.float64(ref[r, d]) - np.float64(query[i, d])
                s += diff * diff
            dist[n] = s
            kept[n] = r
            n += 1
        if n < k:
            short[i] = True
            continue
        order = np.argsort(dist[:n], kind="mergesort")
        for j in range(k):
            out[i, j] = kept[order[j]]


class PynndescentSearch:
    """A pynndescent graph over fixed float32 reference points.

    Parameters
    ----------
    reference : ndarray, shape (N, D), float32
        Checked, finite reference points (:class:`~clapkit.photoz.neighbours.NeighbourIndex`
        checks them).
    options : PynndescentOptions
    """

    def __init__(self, reference: NDArray[np.float32], options: PynndescentOptions) -> None:
        try:
            from pynndescent import NNDescent
        except ImportError as err:  # a core dependency, but say so if the install lacks it
            raise ValidationError(
                "neighbour search 'pynndescent' needs the pynndescent package"
            ) from err
        self.reference = reference
        self.options = options
        self.n_neighbors = min(options.n_neighbors, max(reference.shape[0] - 1, 1))
        self._graph = NNDescent(
            reference,
            metric="euclidean",
            n_neighbors=self.n_neighbors,
            n_trees=options.n_trees,
            n_iters=options.n_iters,
            diversify_prob=options.diversify_prob,
            pruning_degree_multiplier=options.pruning_degree_multiplier,
            random_state=options.random_state,
            n_jobs=options.n_jobs,
        )

    def search(
        self, query: NDArray[np.float32], k: int, exclude: NDArray[np.int64]
    ) -> tuple[NDArray[np.int32], NDArray[np.bool_]]:
        """The k nearest references found per query (``exclude``: a row per query to leave
        out, −1 none; empty: none), and which queries fell short of k (their rows of the
        first array are undefined)."""
        width = min(k + (exclude.size > 0), self.reference.shape[0])
        candidates, _ = self._graph.query(query, k=width, epsilon=self.options.epsilon)
        skip = exclude if exclude.size else np.full(query.shape[0], -1, dtype=np.int64)
        out = np.empty((query.shape[0], k), dtype=np.int32)
        short = np.zeros(query.shape[0], dtype=np.bool_)
        _rerank_kernel(
            self.reference, query, np.asarray(candidates, dtype=np.int64), skip, k, out, short
        )
        return out, short
