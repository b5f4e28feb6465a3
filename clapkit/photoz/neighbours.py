"""Exact k nearest neighbours by brute force, fast for large k in a few dimensions.

CLAP's adaptive KNN needs the ~2000 nearest training galaxies of every training and
target galaxy in a 16-d latent space. Space-partitioning trees cannot prune at such k in
so many dimensions, and general libraries spend most of their time keeping 2000-deep
heaps (scikit-learn's trees, or faiss' exact ``IndexFlatL2``, which took 6.7 s where this
takes 2 s for 20,000 × 20,000 galaxies and k = 2001 on two cores). So
:class:`NeighbourIndex` compares every query with every reference (numba, parallel over
queries) and keeps, per query, a buffer of candidates under a threshold:

- The references are scanned in tiles that stay in cache while a group of queries
  computes its float32 squared distances to them, two queries per pass so that each
  reference value is loaded once for both. A vectorised pass flags the distances at or
  below the query's threshold; the flags are read eight at a time, and the rare
  flagged distances go into the buffer.
- The references are scanned in a fixed pseudo-random order, so the references seen so
  far are a fair sample of all of them: each time their number doubles, the buffer is
  cut at about 1.25 times the rank the final k-th neighbour is expected to have among
  them, plus five standard deviations, and the threshold tightens accordingly. (A cut
  finds its threshold with a histogram of the distances' bit patterns, which order like
  the distances.) Whether the guess held is checked at the end, and a query for which
  it did not is searched again with cuts at k only: the guess speeds the search up, it
  never changes the result.
- The survivors are radix-sorted by float32 distance; wherever consecutive distances
  lie within a small relative slack their order is settled by the distance recomputed in
  float64 from the float32 coordinates, ties by the lower reference index: the same
  order as a stable ``argsort`` of the float64 distance matrix. The slack (four times
  the worst float32 rounding of a squared distance: 4.3e-6 in 16 dimensions) guarantees
  that no galaxy of the float64 top k was dropped and that float32 never misorders two
  galaxies, so the search is exact, not approximate.

Coordinates are stored as float32: neighbours are those of the float32-rounded points.

``NeighbourIndex(reference, method="pynndescent", **options)`` answers the same calls
approximately through a pynndescent graph
(:mod:`clapkit.photoz.approximate_neighbours`): the same shapes, dtype, exclusion and
order (by float64 distance, ties by lower index) over the neighbours it finds, which may
miss some of the true ones. ``benchmarks/knn_speed.py`` measures both side by side.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.photoz.approximate_neighbours import PynndescentOptions, PynndescentSearch
from clapkit.photoz.inputs import check_matrix

#: The neighbour searches :class:`NeighbourIndex` offers.
NEIGHBOUR_SEARCHES = ("exact", "pynndescent")

_JIT = {"cache": True, "nogil": True}
#: References per tile: 16 dims × 1024 float32 = 64 KiB, kept in L2 across a query group.
_TILE = 1024
#: Queries per parallel task: the references are streamed from memory once per task.
_CHUNK = 64
#: Histogram bins of a buffer cut.
_N_BINS = 1024
#: Absolute slack: a float32 square may underflow to 0 where float64 has ~1e-46.
_TINY = np.float32(1e-30)
#: Fixed seed of the scan order.
_SCAN_SEED = 20240531


# Only contraction into fused multiply-adds: no reassociation, and no assumption that
# values are finite (a threshold starts at infinity).
@numba.njit(fastmath={"contract"}, inline="always", **_JIT)
def _tile_distances(ref_t, t0, w, qa, qb, acc_a, acc_b):
    """Squared distances of queries ``qa`` and ``qb`` to references ``t0 .. t0 + w``."""
    dim = ref_t.shape[0]
    acc_a[:w] = 0.0
    acc_b[:w] = 0.0
    d = 0
    while d + 4 <= dim:
        a0, a1, a2, a3 = qa[d], qa[d + 1], qa[d + 2], qa[d + 3]
        b0, b1, b2, b3 = qb[d], qb[d + 1], qb[d + 2], qb[d + 3]
        r0 = ref_t[d, t0 : t0 + w]
        r1 = ref_t[d + 1, t0 : t0 + w]
        r2 = ref_t[d + 2, t0 : t0 + w]
        r3 = ref_t[d + 3, t0 : t0 + w]
        for j in range(w):
            x0, x1, x2, x3 = r0[j], r1[j], r2[j], r3[j]
            u0, u1, u2, u3 = x0 - a0, x1 - a1, x2 - a2, x3 - a3
            v0, v1, v2, v3 = x0 - b0, x1 - b1, x2 - b2, x3 - b3
            acc_a[j] += (u0 * u0 + u1 * u1) + (u2 * u2 + u3 * u3)
            acc_b[j] += (v0 * v0 + v1 * v1) + (v2 * v2 + v3 * v3)
        d += 4
    while d < dim:
        a0, b0 = qa[d], qb[d]
        r0 = ref_t[d, t0 : t0 + w]
        for j in range(w):
            u0, v0 = r0[j] - a0, r0[j] - b0
            acc_a[j] += u0 * u0
            acc_b[j] += v0 * v0
        d += 1


@numba.njit(inline="always", **_JIT)
def _flag(acc, w, threshold, flags):
    """``flags[j] = acc[j] <= threshold``, zero up to the next multiple of 8."""
    for j in range(w):
        flags[j] = acc[j] <= threshold
    for j in range(w, (w + 7) // 8 * 8):
        flags[j] = 0


@numba.njit(**_JIT)
def _shrink(dist, rows, n, rank, threshold, slack, counts):
    """Cut the buffer to about its ``rank`` smallest distances: (count, threshold).

    A histogram of the distances' bit patterns (which order like non-negative floats)
    finds the bin holding the rank-th smallest; the new threshold is that bin's top plus
    the slack, so at least ``rank`` entries stay. It never exceeds the old threshold, so
    the buffer still holds every distance seen up to it.
    """
    bits = dist[:n].view(np.uint32)
    lo = np.int64(bits[0])
    hi = lo
    for i in range(1, n):
        v = np.int64(bits[i])
        lo = min(lo, v)
        hi = max(hi, v)
    # Bins over the top two octaves (2**23 bit patterns each): fine where the distances
    # crowd; smaller ones (a zero distance, say) share the first bin.
    lo = max(lo, hi - (1 << 24))
    shift = 0
    while (hi - lo) >> shift >= counts.size:
        shift += 1
    counts[:] = 0
    for i in range(n):
        counts[max(np.int64(bits[i]) - lo, 0) >> shift] += 1
    below = 0
    b = 0
    while below + counts[b] < rank:
        below += counts[b]
        b += 1
    top = np.empty(1, dtype=np.uint32)
    top[0] = min(hi, lo + ((b + 1) << shift) - 1)
    threshold = min(threshold, top.view(np.float32)[0] * slack + _TINY)
    keep = 0
    for i in range(n):
        if dist[i] <= threshold:
            dist[keep] = dist[i]
            rows[keep] = rows[i]
            keep += 1
    return keep, threshold


@numba.njit(**_JIT)
def _cut_rank(kk, seen, n_ref):
    """Rank in the buffer at which to cut, after ``seen`` of ``n_ref`` references.

    The scan order is random, so the final kk-th neighbour is expected at rank
    ``e = kk * seen / n_ref`` among the references seen so far. Cutting at 1.25 times
    that, plus five standard deviations, keeps the buffer short and the threshold tight
    early on; :func:`_finish` checks that the guess held (else the query is redone).
    """
    e = kk * (seen / n_ref)
    r = int(1.25 * e + 5.0 * np.sqrt(e) + 16.0)
    return min(kk, r)


@numba.njit(**_JIT)
def _offer(acc, flags, w, t0, n_ref, order, dist, rows, n, threshold, kk, careful, slack, counts):
    """Add a tile's distances at or below the threshold; count -1 when the buffer overflows."""
    cap = dist.shape[0]
    _flag(acc, w, threshold, flags)
    words = flags.view(np.uint64)  # eight flags at a time: most words are zero
    for b in range((w + 7) // 8):
        if words[b] == 0:
            continue
        for j in range(8 * b, min(8 * b + 8, w)):
            if not flags[j]:
                continue
            v = acc[j]
            if n == cap:
                rank = kk if careful else _cut_rank(kk, t0 + j, n_ref)
                n, threshold = _shrink(dist, rows, n, rank, threshold, slack, counts)
                if n > cap - kk // 2:
                    return -1, threshold  # too many near-ties to cut: redo with room for all
            if v > threshold:
                continue
            dist[n] = v
            rows[n] = order[t0 + j]
            n += 1
    return n, threshold


@numba.njit(**_JIT)
def _sort_candidates(dist, rows, n, start):
    """The first n candidates sorted by distance: (distances, rows), new arrays.

    A radix sort on the distances' bit patterns (which order like non-negative floats),
    11 bits a pass, relative to their minimum so that a narrow range needs fewer passes;
    ``start`` is scratch of 2048 integers.
    """
    bits = dist[:n].view(np.uint32)
    lo = np.int64(bits[0])
    hi = lo
    for i in range(1, n):
        v = np.int64(bits[i])
        lo = min(lo, v)
        hi = max(hi, v)
    key = np.empty(n, dtype=np.uint32)
    for i in range(n):
        key[i] = np.int64(bits[i]) - lo
    row = rows[:n].copy()
    key_tmp = np.empty(n, dtype=np.uint32)
    row_tmp = np.empty(n, dtype=np.int32)
    shift = 0
    while shift == 0 or (hi - lo) >> shift > 0:
        start[:] = 0
        for i in range(n):
            start[(key[i] >> shift) & 2047] += 1
        total = 0
        for b in range(2048):
            c = start[b]
            start[b] = total
            total += c
        for i in range(n):
            b = (key[i] >> shift) & 2047
            at = start[b]
            start[b] = at + 1
            key_tmp[at] = key[i]
            row_tmp[at] = row[i]
        key, key_tmp = key_tmp, key
        row, row_tmp = row_tmp, row
        shift += 11
    for i in range(n):
        key[i] = np.int64(key[i]) + lo
    return key.view(np.float32), row


@numba.njit(**_JIT)
def _finish(ref, q, dist, rows, n, threshold, kk, k, skip, slack, out, scratch):
    """The k nearest candidates by float64 distance, then index, ``skip`` left out.

    The candidates are sorted by float32 distance; only runs of near-ties (consecutive
    float32 distances within the slack) can be out of float64 order, and only for those
    is the float64 distance computed. Returns False when the candidates cannot be
    trusted: fewer than kk, or an early cut (:func:`_cut_rank`) set a threshold below
    the slack of the final kk-th distance.
    """
    if n < kk:
        return False
    d32, r32 = _sort_candidates(dist, rows, n, scratch)
    final = d32[kk - 1] * slack + _TINY
    if final > threshold:
        return False
    m = kk  # candidates that may belong to the float64 top kk
    while m < n and d32[m] <= final:
        m += 1
    dim = ref.shape[1]
    d64 = np.empty(m, dtype=np.float64)
    idx = np.empty(m, dtype=np.int64)
    written = 0
    i = 0
    while i < m and written < k:
        j = i + 1
        while j < m and d32[j] <= d32[j - 1] * slack + _TINY:
            j += 1
        if j == i + 1:
            if r32[i] != skip:
                out[written] = r32[i]
                written += 1
        else:
            # A run of near-ties: insertion sort by (float64 distance, index).
            count = 0
            for t in range(i, j):
                r = np.int64(r32[t])
                if r == skip:
                    continue
                s = 0.0
                for d in range(dim):
                    diff = np.float64(ref[r, d]) - np.float64(q[d])
                    s += diff * diff
                c = count
                while c > 0 and (d64[c - 1] > s or (d64[c - 1] == s and idx[c - 1] > r)):
                    d64[c] = d64[c - 1]
                    idx[c] = idx[c - 1]
                    c -= 1
                d64[c] = s
                idx[c] = r
                count += 1
            for t in range(min(count, k - written)):
                out[written + t] = idx[t]
            written += min(count, k - written)
        i = j
    return True


@numba.njit(parallel=True, **_JIT)
def _search_kernel(ref, ref_t, order, query, k, exclude, cap, careful, slack, out, redo):
    n_ref = ref_t.shape[1]
    n_query = query.shape[0]
    kk = k + 1 if exclude.shape[0] > 0 else k
    n_tasks = (n_query + _CHUNK - 1) // _CHUNK
    for task in numba.prange(n_tasks):
        first = task * _CHUNK
        m = min(first + _CHUNK, n_query) - first
        dist = np.empty((m, cap), dtype=np.float32)
        rows = np.empty((m, cap), dtype=np.int32)
        count = np.zeros(m, dtype=np.int64)
        threshold = np.full(m, np.inf, dtype=np.float32)
        acc_a = np.empty(_TILE, dtype=np.float32)
        acc_b = np.empty(_TILE, dtype=np.float32)
        flags = np.zeros(_TILE, dtype=np.uint8)
        counts = np.empty(_N_BINS, dtype=np.int64)
        scratch = np.empty(2048, dtype=np.int64)
        for t0 in range(0, n_ref, _TILE):
            w = min(_TILE, n_ref - t0)
            tile = t0 // _TILE
            if tile > 0 and tile & (tile - 1) == 0:
                # Tighten the thresholds each time the references seen double.
                rank = kk if careful else _cut_rank(kk, t0, n_ref)
                for a in range(m):
                    if count[a] > rank:
                        count[a], threshold[a] = _shrink(
                            dist[a], rows[a], count[a], rank, threshold[a], slack, counts
                        )
            for a in range(0, m, 2):
                b = min(a + 1, m - 1)
                _tile_distances(ref_t, t0, w, query[first + a], query[first + b], acc_a, acc_b)
                if count[a] >= 0:
                    count[a], threshold[a] = _offer(
                        acc_a,
                        flags,
                        w,
                        t0,
                        n_ref,
                        order,
                        dist[a],
                        rows[a],
                        count[a],
                        threshold[a],
                        kk,
                        careful,
                        slack,
                        counts,
                    )
                if b != a and count[b] >= 0:
                    count[b], threshold[b] = _offer(
                        acc_b,
                        flags,
                        w,
                        t0,
                        n_ref,
                        order,
                        dist[b],
                        rows[b],
                        count[b],
                        threshold[b],
                        kk,
                        careful,
                        slack,
                        counts,
                    )
        for a in range(m):
            skip = exclude[first + a] if exclude.shape[0] > 0 else -1
            if count[a] < 0 or not _finish(
                ref,
                query[first + a],
                dist[a],
                rows[a],
                count[a],
                threshold[a],
                kk,
                k,
                skip,
                slack,
                out[first + a],
                scratch,
            ):
                redo[first + a] = True


def _slack(dim: int) -> np.float32:
    """Relative slack on float32 distances in ``dim`` dimensions.

    A float32 squared distance, summed in any order (fused multiply-adds allowed), is
    within ``(dim + 2) * 2**-24`` of the exact one, relatively; four times that keeps
    float32 from dropping or misordering a galaxy of the float64 top k.
    """
    return np.float32(1.0 + 4.0 * (dim + 2) * 2.0**-24)


def _buffer_size(kk: int, n_ref: int) -> int:
    return min(4 * kk + 256, n_ref)


def check_neighbour_search(method: str, options: dict | None = None) -> dict:
    """Validate a neighbour search and its options: the options as a plain dict.

    Parameters
    ----------
    method : {"exact", "pynndescent"}
    options : dict, optional
        :class:`~clapkit.photoz.approximate_neighbours.PynndescentOptions` fields; none
        for the exact search.

    Returns
    -------
    dict

    Examples
    --------
    >>> check_neighbour_search("pynndescent", {"epsilon": 0.2})["epsilon"]
    0.2
    >>> check_neighbour_search("exact", {"epsilon": 0.2})
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: the exact neighbour search takes no options, got ['epsilon']
    """
    if not isinstance(method, str) or method not in NEIGHBOUR_SEARCHES:
        raise ValidationError(
            f"neighbour search must be one of {list(NEIGHBOUR_SEARCHES)}, got {method!r}"
        )
    if options is not None and not isinstance(options, dict):
        raise ValidationError(f"neighbour search options must be a mapping, got {options!r}")
    if method == "exact":
        if options:
            raise ValidationError(
                f"the exact neighbour search takes no options, got {sorted(options)}"
            )
        return {}
    return PynndescentOptions.from_dict(options).to_dict()


class NeighbourIndex:
    """k nearest neighbours among fixed reference points (squared Euclidean distance):
    exact, or approximate through pynndescent.

    Parameters
    ----------
    reference : array_like, shape (N, D)
        Finite reference points, stored as float32.
    method : {"exact", "pynndescent"}
        The exact brute force of this module, or a pynndescent graph (approximate).
    **options
        pynndescent's settings
        (:class:`~clapkit.photoz.approximate_neighbours.PynndescentOptions`: ``n_neighbors``,
        ``n_trees``, ``n_iters``, ``diversify_prob``, ``pruning_degree_multiplier``,
        ``epsilon``, ``random_state``, ``n_jobs``); none for the exact search.

    Notes
    -----
    The exact search runs on numba's threads (``NUMBA_NUM_THREADS`` /
    :func:`numba.set_num_threads`). Memory beyond two float32 copies of the references is
    about ``threads * 64 * (4 k + 256) * 8`` bytes of candidate buffers plus the output.

    With ``method="pynndescent"`` a search asks the graph for ``k`` candidates (``k + 1``
    with ``exclude``, the excluded row dropped if found, else the farthest), re-ranked as
    the exact search orders them; a query the graph cannot give enough distinct
    candidates is searched exactly. The graph holds ``n_neighbors`` edges per point however
    large k is, so a large k walks far along it: measure before choosing it
    (``benchmarks/knn_speed.py``).

    Examples
    --------
    >>> index = NeighbourIndex([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]])
    >>> index.search([[0.1, 0.0]], 3).tolist()
    [[0, 1, 2]]
    >>> index.search([[0.0, 0.0], [1.0, 0.0]], 2, exclude=[0, 1]).tolist()
    [[1, 2], [0, 2]]
    """

    def __init__(self, reference: ArrayLike, method: str = "exact", **options: Any) -> None:
        self.options = check_neighbour_search(method, options)
        self.method = method
        ref = check_matrix(reference, "reference", dtype=np.float32)
        if ref.shape[0] < 1:
            raise ValidationError("reference must hold at least one point")
        if ref.shape[0] >= 2**31:
            raise ValidationError(f"at most 2**31 - 1 reference points, got {ref.shape[0]}")
        self.reference = ref
        self._ref_t = None
        self._approximate = None
        if method == "pynndescent":
            self._approximate = PynndescentSearch(ref, PynndescentOptions(**self.options))
        else:
            self._prepare_exact()

    def _prepare_exact(self) -> None:
        ref = self.reference
        # A fixed pseudo-random scan order: early tiles are a fair sample of the whole.
        order = np.random.default_rng(_SCAN_SEED).permutation(ref.shape[0]).astype(np.int32)
        self._order = order
        self._ref_t = np.ascontiguousarray(ref[order].T)
        self._slack = _slack(ref.shape[1])

    @property
    def n_reference(self) -> int:
        """Number of reference points."""
        return int(self.reference.shape[0])

    @property
    def dim(self) -> int:
        """Dimensions of the points."""
        return int(self.reference.shape[1])

    def search(
        self, query: ArrayLike, k: int, exclude: ArrayLike | None = None
    ) -> NDArray[np.int32]:
        """Indices of the ``k`` nearest reference points of each query, nearest first.

        Parameters
        ----------
        query : array_like, shape (M, D)
        k : int
            Neighbours per query, ``1 <= k <= N`` (``N - 1`` with ``exclude``).
        exclude : array_like of int, shape (M,), optional
            A reference row to leave out for each query (``-1``: none), e.g. the query's
            own row when the queries are the references themselves. Only that row is left
            out: duplicates of it at distance 0 remain neighbours.

        Returns
        -------
        ndarray, shape (M, k), int32
            Ordered by float64 distance between the float32 points, ties by lower index.
        """
        q = check_matrix(query, "query", self.dim, dtype=np.float32)
        k = check_int(k, "k", minimum=None)
        n_ref = self.n_reference
        if exclude is None:
            ex = np.empty(0, dtype=np.int64)
            k_limit = n_ref
        else:
            ex = np.asarray(exclude)
            if ex.shape != (q.shape[0],) or (ex.size and not np.issubdtype(ex.dtype, np.integer)):
                raise ValidationError(
                    f"exclude must be {q.shape[0]} integer rows, got {ex.dtype} {ex.shape}"
                )
            ex = ex.astype(np.int64)
            if ex.size and (ex.min() < -1 or ex.max() >= n_ref):
                raise ValidationError(f"exclude rows must lie in -1..{n_ref - 1}")
            k_limit = n_ref - 1
        if not 1 <= k <= k_limit:
            raise ValidationError(
                f"k must be in 1..{k_limit} for {n_ref} reference points"
                + (" with one excluded" if exclude is not None else "")
                + f", got {k}"
            )
        out = np.empty((q.shape[0], k), dtype=np.int32)
        if q.shape[0] == 0:
            return out
        if self._approximate is not None:
            out, short = self._approximate.search(q, k, ex)
            if not short.any():
                return out
            # Too few distinct candidates in the graph's reach: the exact answer instead.
            rows = np.flatnonzero(short)
            out[rows] = self._exact_search(q[rows], k, ex[rows] if ex.size else ex)
            return out
        return self._exact_search(q, k, ex, out)

    def _exact_search(self, q, k, ex, out=None) -> NDArray[np.int32]:
        if self._ref_t is None:
            self._prepare_exact()
        if out is None:
            out = np.empty((q.shape[0], k), dtype=np.int32)
        kk = k + (ex.size > 0)
        n_ref = self.n_reference
        redo = np.zeros(q.shape[0], dtype=np.bool_)
        self._run(q, k, ex, _buffer_size(kk, n_ref), False, out, redo)
        # Rare: an early cut was too tight (careful: cut at k only), or more than ~3k
        # near-ties at the k-th distance (room for every point).
        for cap in (_buffer_size(kk, n_ref), n_ref):
            rows = np.flatnonzero(redo)
            if rows.size == 0:
                break
            part = np.empty((rows.size, k), dtype=np.int32)
            again = np.zeros(rows.size, dtype=np.bool_)
            self._run(q[rows], k, ex[rows] if ex.size else ex, cap, True, part, again)
            out[rows] = part
            redo[:] = False
            redo[rows] = again
        return out

    def _run(self, q, k, ex, cap, careful, out, redo) -> None:
        _search_kernel(
            self.reference,
            self._ref_t,
            self._order,
            q,
            k,
            ex,
            cap,
            careful,
            self._slack,
            out,
            redo,
        )


def nearest_neighbours(
    reference: ArrayLike,
    query: ArrayLike,
    k: int,
    exclude: ArrayLike | None = None,
    method: str = "exact",
    **options: Any,
) -> NDArray[np.int32]:
    """One-off :meth:`NeighbourIndex.search` of ``query`` among ``reference``.

    Parameters
    ----------
    reference : array-like, shape (N, D)
        The points searched.
    query : array-like, shape (M, D)
        The points whose neighbours are wanted.
    k : int
        Neighbours per query.
    exclude : array-like of int, shape (M,), optional
        A reference row to leave out for each query (``-1``: none).
    method : {"exact", "pynndescent"}
        See :class:`NeighbourIndex`.
    **options
        pynndescent's settings.

    Returns
    -------
    numpy.ndarray of int32, shape (M, k)

    Examples
    --------
    >>> nearest_neighbours([[0.0], [1.0], [3.0]], [[0.9], [2.9]], 2).tolist()
    [[1, 0], [2, 1]]
    """
    return NeighbourIndex(reference, method, **options).search(query, k, exclude)
