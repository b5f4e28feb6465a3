"""CLAP's adaptive k-nearest-neighbour step: raw redshift PDFs with a k chosen per galaxy.

As in the published code (CLAP-I, ``CLAP_knn_recalibration.py``): every training galaxy
gets, for each k on a grid (:func:`published_k_grid`: 120 values from 5 to 2000), the
PIT of its own spec-z among the spec-z of its k nearest training galaxies (itself
included, ties counting one half; ``pit_includes_self=False`` leaves it out). For a
target galaxy and each k, the PITs (at that k) of its k nearest training galaxies are
histogrammed (100 bins on [0, 1]); the k whose histogram is closest to uniform in
1-Wasserstein distance wins (the first on ties), and the raw PDF is the normalised
histogram of those k neighbours' spec-z on the output bins.

For the published recalibration option 2 the index also keeps a second PIT table: the
spec-z of each training galaxy's nearest *validation* galaxy, ranked among the training
galaxy's k neighbours. The recalibration of a target averages the histograms of both
tables at its chosen k (``valid_pit_hist``).

How it stays fast and exact:

- A PIT is a rational number ``m / (2k)`` (``m`` counts half-units), so its PIT bin
  ``min(m * n_bins // (2k), n_bins - 1)`` is computed in integers at fit time and stored
  as a small integer table ``(N_train, n_k)``: a PIT on a bin edge always falls in the bin
  above it (``np.histogram`` on ``linspace(0, 1, 101)`` puts a PIT of exactly 0.7 in bin
  69, as that edge rounds to 0.7000000000000001), and the per-target loop reads bytes.
- Per target, one walk along its sorted neighbour list reads each neighbour's row of PIT
  bins once (contiguous, one cache miss) and adds it to every k column that still counts
  that neighbour: the exact published histograms for all k in ``Σ_k k`` increments.
- The 1-Wasserstein distance on equal bins is ``S / (n_bins² k)`` with the integer
  ``S = Σ_b |n_bins C_b − b k|`` (``C_b`` the cumulative count), so k values are compared
  exactly by cross-multiplication and ties are genuine ties.
- Neighbours come from :class:`clapkit.photoz.neighbours.NeighbourIndex`: an exact
  brute-force search (float64 distances between the float32 latents, ties to the lower
  training index) built for k in the thousands. Training neighbours are searched in
  batches and reduced at once to the PIT table, so the ``(N_train, k_max)`` neighbour
  array never exists in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray
from tqdm.auto import tqdm

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.metrics import check_edges
from clapkit.photoz.inputs import check_matrix, check_training_redshifts
from clapkit.photoz.neighbours import NeighbourIndex, check_neighbour_search

_JIT = {"cache": True, "nogil": True}
_JIT_ROWS = {**_JIT, "parallel": True}
#: Targets per parallel task: each task allocates its (n_k, n_bins) scratch histogram once.
_ROWS_PER_TASK = 256
#: Neighbours of the latent distance that says how well the training set covers a galaxy
#: (:meth:`AdaptiveKNN.neighbour_distance`).
DISTANCE_NEIGHBOURS = 10
#: Most PIT bins: their indices are stored as uint16.
MAX_PIT_BINS = 65536


#: The published k grid (``klist`` of ``CLAP_knn_recalibration.py``): steps of 5 up to
#: 200, of 10 up to 600, of 20 up to 1000 and of 50 up to 2000; 120 values.
PUBLISHED_K_GRID = np.concatenate(
    [
        np.arange(5, 201, 5),
        np.arange(210, 601, 10),
        np.arange(620, 1001, 20),
        np.arange(1050, 2001, 50),
    ]
).astype(np.int64)
#: The names of the k grids :func:`k_grid` builds.
K_GRIDS = ("published", "log")


def published_k_grid(k_min: int = 5, k_max: int = 2000) -> NDArray[np.int64]:
    """The published k grid, keeping its values from ``k_min`` to ``k_max``.

    Examples
    --------
    >>> grid = published_k_grid()
    >>> grid.size, grid[:3].tolist(), grid[-3:].tolist()
    (120, [5, 10, 15], [1900, 1950, 2000])
    >>> published_k_grid(5, 42).tolist()
    [5, 10, 15, 20, 25, 30, 35, 40]
    """
    k_min = check_int(k_min, "k_min")
    k_max = check_int(k_max, "k_max", minimum=k_min)
    full = PUBLISHED_K_GRID
    grid = full[(full >= k_min) & (full <= k_max)]
    if grid.size == 0:
        raise ValidationError(
            f"the published k grid (5, 10, ..., 2000) has no value in {k_min}..{k_max}"
        )
    return grid.copy()


def log_k_grid(k_min: int = 5, k_max: int = 2000, n: int = 120) -> NDArray[np.int64]:
    """``n`` distinct integers from ``k_min`` to ``k_max``, as close to log-spaced as can be.

    This project's alternative to :func:`published_k_grid`: it spends as many values on
    k ≤ 40 as on 400 ≤ k ≤ 2000, where the published grid has 8 below 40. Rounding a
    geometric sequence repeats the small values (5, 5, 5, 6, …); each repeat is pushed
    up by one and the tail capped so that exactly ``n`` sorted values remain.

    Examples
    --------
    >>> grid = log_k_grid()
    >>> grid.size, int(grid[0]), int(grid[-1]), bool(np.all(np.diff(grid) > 0))
    (120, 5, 2000, True)
    >>> log_k_grid(5, 100, 6).tolist()
    [5, 9, 17, 30, 55, 100]
    """
    k_min = check_int(k_min, "k_min")
    k_max = check_int(k_max, "k_max", minimum=k_min)
    n = check_int(n, "n")
    if n > k_max - k_min + 1:
        raise ValidationError(
            f"cannot pick n={n} distinct integers between k_min={k_min} and k_max={k_max}"
        )
    if n == 1:
        return np.array([k_max], dtype=np.int64)
    grid = np.rint(np.geomspace(k_min, k_max, n)).astype(np.int64)
    for i in range(1, n):
        grid[i] = max(grid[i], grid[i - 1] + 1)
    return np.minimum(grid, k_max - (n - 1 - np.arange(n)))


def k_grid(kind: str, k_min: int, k_max: int, n: int = 120) -> NDArray[np.int64]:
    """The ``published`` or ``log`` grid between ``k_min`` and ``k_max`` (``n`` values for
    the log grid, at most as many as there are integers).

    Parameters
    ----------
    kind : {"published", "log"}
        Steps of 5 as published, or ``n`` values evenly spaced in log k.
    k_min, k_max : int
        The grid's ends, both included.
    n : int
        Values of the log grid.

    Returns
    -------
    numpy.ndarray of int

    Examples
    --------
    >>> k_grid("published", 5, 30).tolist(), k_grid("log", 5, 30, 4).tolist()
    ([5, 10, 15, 20, 25, 30], [5, 9, 17, 30])
    """
    if kind not in K_GRIDS:
        raise ValidationError(f"k grid must be one of {K_GRIDS}, got {kind!r}")
    if kind == "published":
        return published_k_grid(k_min, k_max)
    n = check_int(n, "n")
    # log_k_grid checks k_min and k_max; int() only sizes the range here
    return log_k_grid(k_min, k_max, min(n, int(k_max) - int(k_min) + 1))


def check_k_grid(k_grid: ArrayLike, n_train: int | None = None) -> NDArray[np.int64]:
    """Validate a k grid: 1-D, integers >= 1, strictly increasing, k_max < ``n_train``.

    Examples
    --------
    >>> check_k_grid([5, 10, 20], n_train=100)
    array([ 5, 10, 20])
    """
    grid = np.asarray(k_grid)
    if grid.ndim != 1 or grid.size < 1:
        raise ValidationError(f"k_grid must be 1-D and non-empty, got shape {grid.shape}")
    if not np.issubdtype(grid.dtype, np.number) or (
        not np.issubdtype(grid.dtype, np.integer)
        and (not np.all(np.isfinite(grid)) or np.any(grid != np.rint(grid)))
    ):
        raise ValidationError(f"k_grid must hold integers, got {grid.tolist()}")
    grid = grid.astype(np.int64)
    if grid[0] < 1 or np.any(np.diff(grid) <= 0):
        raise ValidationError(f"k_grid must be >= 1 and strictly increasing, got {grid.tolist()}")
    if n_train is not None and grid[-1] > n_train - 1:
        raise ValidationError(
            f"k_max={int(grid[-1])} needs at least {int(grid[-1]) + 1} training galaxies "
            f"(neighbours exclude the galaxy itself), got {n_train}"
        )
    return grid


def _check_latent(latent: ArrayLike, name: str, dim: int | None = None) -> NDArray[np.float32]:
    # float32 halves the memory of the distance search; latents carry no more precision.
    return check_matrix(latent, name, dim, dtype=np.float32)


def _check_neighbours(neighbours: ArrayLike, n_rows: int, n_ref: int, k_max: int) -> NDArray:
    nb = np.asarray(neighbours)
    if nb.ndim != 2 or nb.shape[0] != n_rows or nb.shape[1] < k_max:
        raise ValidationError(f"neighbours must have shape ({n_rows}, >= {k_max}), got {nb.shape}")
    if not np.issubdtype(nb.dtype, np.integer):
        raise ValidationError(f"neighbours must be integer indices, got {nb.dtype}")
    nb = nb[:, :k_max]
    if nb.size and (nb.min() < 0 or nb.max() >= n_ref):
        row = int(np.flatnonzero(((nb < 0) | (nb >= n_ref)).any(axis=1))[0])
        raise ValidationError(f"neighbours of row {row} index outside 0..{n_ref - 1}")
    return np.ascontiguousarray(nb, dtype=np.int32)


# ----------------------------------------------------------------------------- kernels


@numba.njit(**_JIT_ROWS)
def _pit_from_neighbours_kernel(neighbours, z_all, z, k_grid, n_bins, pit, pit_bin):
    """Half-unit counts along each sorted neighbour list, read at the k grid; the
    neighbours' redshifts are read through their indices into ``z_all``."""
    n, _ = neighbours.shape
    n_k = k_grid.shape[0]
    for j in numba.prange(n):
        zj = z[j]
        halves = 0  # 2·(number below) + (number equal): the PIT is halves / (2k)
        c = 0
        for i in range(k_grid[n_k - 1]):
            v = z_all[neighbours[j, i]]
            halves += 2 * np.int64(v < zj) + np.int64(v == zj)
            if i + 1 == k_grid[c]:
                k = k_grid[c]
                pit[j, c] = halves / (2.0 * k)
                pit_bin[j, c] = min(halves * n_bins // (2 * k), n_bins - 1)
                c += 1


@numba.njit(**_JIT_ROWS)
def _choose_k_kernel(neighbours, pit_bin, k_grid, n_bins, chosen, w1, local_hist):
    """Per target: PIT histograms for every k in one walk, then the exact W1 argmin."""
    n = neighbours.shape[0]
    n_k = k_grid.shape[0]
    k_max = k_grid[n_k - 1]
    n_tasks = (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(n_tasks):
        hist = np.empty((n_k, n_bins), dtype=np.int32)  # (n_k, n_bins)
        for t in range(task * _ROWS_PER_TASK, min((task + 1) * _ROWS_PER_TASK, n)):
            hist[:] = 0
            first = 0  # first k column that still counts neighbour i
            for i in range(k_max):
                while k_grid[first] <= i:
                    first += 1
                row = pit_bin[neighbours[t, i]]
                for c in range(first, n_k):
                    hist[c, row[c]] += 1
            best = 0
            best_s = -1
            for c in range(n_k):
                k = k_grid[c]
                cum = 0
                s = 0
                for b in range(n_bins):
                    cum += hist[c, b]
                    s += abs(n_bins * cum - (b + 1) * k)
                # s / k < best_s / k_best, exactly; strict so the first k wins ties.
                if best_s < 0 or s * k_grid[best] < best_s * k:
                    best = c
                    best_s = s
            chosen[t] = best
            k = k_grid[best]
            w1[t] = best_s / (n_bins * n_bins * k)
            for b in range(n_bins):
                local_hist[t, b] = hist[best, b] / k


@numba.njit(**_JIT_ROWS)
def _hist_at_k_kernel(neighbours, pit_bin, k_index, k_grid, n_bins, out):
    """Fraction of each target's first k neighbours in each PIT bin, at its chosen k."""
    n = neighbours.shape[0]
    for t in numba.prange(n):
        c = k_index[t]
        k = k_grid[c]
        for b in range(n_bins):
            out[t, b] = 0.0
        for i in range(k):
            out[t, pit_bin[neighbours[t, i], c]] += 1.0
        for b in range(n_bins):
            out[t, b] = out[t, b] / k


@numba.njit(**_JIT_ROWS)
def _pdf_kernel(neighbours, z_bin, k_chosen, n_bins, out):
    """Normalised histogram of the first k neighbours' redshift bins."""
    n = neighbours.shape[0]
    for t in numba.prange(n):
        k = k_chosen[t]
        for b in range(n_bins):
            out[t, b] = 0.0
        for i in range(k):
            out[t, z_bin[neighbours[t, i]]] += 1.0
        for b in range(n_bins):
            out[t, b] = out[t, b] / k


# ----------------------------------------------------------------------------- pure functions


def _check_n_pit_bins(n_pit_bins: int) -> int:
    n_pit_bins = check_int(n_pit_bins, "n_pit_bins")
    if n_pit_bins > MAX_PIT_BINS:
        raise ValidationError(
            f"n_pit_bins must be at most {MAX_PIT_BINS} (PIT bins are stored as uint16), "
            f"got {n_pit_bins}"
        )
    return n_pit_bins


def _pit_bin_dtype(n_pit_bins: int) -> type:
    return np.uint8 if n_pit_bins <= 256 else np.uint16


def training_pit_table(
    neighbour_z: ArrayLike, z: ArrayLike, k_grid: ArrayLike, n_pit_bins: int = 100
) -> tuple[NDArray[np.float32], NDArray[np.unsignedinteger]]:
    """PIT of each training galaxy among its k nearest other galaxies, for every k.

    Parameters
    ----------
    neighbour_z : array_like, shape (N, >= k_max)
        Spec-z of each galaxy's nearest *other* training galaxies, nearest first.
    z : array_like, shape (N,)
        Each galaxy's own spec-z.
    k_grid : array_like, shape (n_k,)
        Strictly increasing numbers of neighbours.
    n_pit_bins : int
        Bins on [0, 1] of the PIT histograms; PIT 1 falls in the last bin.

    Returns
    -------
    pit : ndarray, shape (N, n_k), float32
        Fraction of the k neighbours with a lower spec-z, ties counting one half.
    pit_bin : ndarray, shape (N, n_k), uint8 (uint16 above 256 bins)
        The PIT histogram bin, computed exactly from the rational PIT.

    Examples
    --------
    >>> pit, pit_bin = training_pit_table([[0.1, 0.2, 0.3, 0.2]], [0.2], [2, 4])
    >>> pit.tolist(), pit_bin.tolist()
    ([[0.75, 0.5]], [[75, 50]])
    """
    k_grid = check_k_grid(k_grid)
    z = np.ascontiguousarray(z, dtype=np.float64)
    nz = np.asarray(neighbour_z, dtype=np.float64)
    if z.ndim != 1 or nz.ndim != 2 or nz.shape[0] != z.size:
        raise ValidationError(
            f"neighbour_z must have shape (N, k) and z shape (N,), got {nz.shape} and {z.shape}"
        )
    if nz.shape[1] < k_grid[-1]:
        raise ValidationError(f"neighbour_z has {nz.shape[1]} columns, k_max={int(k_grid[-1])}")
    for name, values in (("z", z), ("neighbour_z", nz)):
        if not np.all(np.isfinite(values)):
            raise ValidationError(f"{name} is not finite at {np.argwhere(~np.isfinite(values))[0]}")
    n_pit_bins = _check_n_pit_bins(n_pit_bins)
    pit = np.empty((z.size, k_grid.size), dtype=np.float32)
    pit_bin = np.empty((z.size, k_grid.size), dtype=_pit_bin_dtype(n_pit_bins))
    # One kernel serves both tables: here each galaxy's neighbours are its own row of nz.
    rows = np.arange(nz.size, dtype=np.int64).reshape(nz.shape)
    _pit_from_neighbours_kernel(rows, nz.ravel(), z, k_grid, n_pit_bins, pit, pit_bin)
    return pit, pit_bin


def choose_k(
    neighbours: ArrayLike, pit_bin: ArrayLike, k_grid: ArrayLike, n_pit_bins: int = 100
) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float32]]:
    """For each target, the k whose neighbours' PIT histogram is closest to uniform.

    Parameters
    ----------
    neighbours : array_like of int, shape (N_target, >= k_max)
        Indices of each target's nearest training galaxies, nearest first.
    pit_bin : array_like, shape (N_train, n_k)
        PIT bins of the training galaxies (from :func:`training_pit_table`).
    k_grid : array_like, shape (n_k,)
    n_pit_bins : int

    Returns
    -------
    k_index : ndarray, shape (N_target,)
        Position in ``k_grid`` of the chosen k (the smallest k on ties).
    w1 : ndarray, shape (N_target,)
        1-Wasserstein distance of the chosen histogram to uniform.
    local_pit_hist : ndarray, shape (N_target, n_pit_bins), float32
        Fraction of the chosen k neighbours in each PIT bin.

    Examples
    --------
    >>> pit_bin = np.array([[0, 0], [1, 1], [0, 1]], dtype=np.uint8)
    >>> k_index, w1, hist = choose_k([[0, 1, 2]], pit_bin, [1, 2], n_pit_bins=2)
    >>> k_index.tolist(), w1.tolist(), hist.tolist()
    ([1], [0.0], [[0.5, 0.5]])
    """
    k_grid = check_k_grid(k_grid)
    pit_bin = np.asarray(pit_bin)
    if pit_bin.ndim != 2 or pit_bin.shape[1] != k_grid.size:
        raise ValidationError(
            f"pit_bin must have shape (N_train, {k_grid.size}), got {pit_bin.shape}"
        )
    if pit_bin.size and (pit_bin.min() < 0 or pit_bin.max() >= n_pit_bins):
        raise ValidationError(f"pit_bin values must lie in 0..{n_pit_bins - 1}")
    pit_bin = np.ascontiguousarray(pit_bin, dtype=_pit_bin_dtype(n_pit_bins))
    nb = np.asarray(neighbours)
    nb = _check_neighbours(nb, nb.shape[0] if nb.ndim else 0, pit_bin.shape[0], int(k_grid[-1]))
    n = nb.shape[0]
    k_index = np.empty(n, dtype=np.int64)
    w1 = np.empty(n, dtype=np.float64)
    hist = np.empty((n, n_pit_bins), dtype=np.float32)
    _choose_k_kernel(nb, pit_bin, k_grid, int(n_pit_bins), k_index, w1, hist)
    return k_index, w1, hist


def neighbour_pdfs(
    neighbours: ArrayLike, k: ArrayLike, train_z: ArrayLike, edges: ArrayLike
) -> NDArray[np.float64]:
    """Normalised histograms of the first ``k[t]`` neighbours' spec-z of each target.

    The same bins as :func:`clapkit.metrics.histogram_pdfs` (the last bin holds its upper
    edge); every training redshift must lie on the grid.

    Parameters
    ----------
    neighbours : array of int, shape (T, K)
        Each target's training neighbours, nearest first.
    k : array of int, shape (T,)
        How many of them each target's PDF uses (at most K).
    train_z : array, shape (N,)
        Spectroscopic redshifts of the training galaxies.
    edges : array, shape (B + 1,)
        The redshift grid.

    Returns
    -------
    numpy.ndarray, shape (T, B)

    Examples
    --------
    >>> neighbour_pdfs([[0, 1, 2], [2, 1, 0]], [2, 1], [0.05, 0.15, 0.15], [0.0, 0.1, 0.2])
    array([[0.5, 0.5],
           [0. , 1. ]])
    """
    edges = check_edges(edges)
    z = np.asarray(train_z, dtype=np.float64)
    z = check_training_redshifts(z, z.size, edges, "train_z")
    k = np.asarray(k, dtype=np.int64)
    nb = np.asarray(neighbours)
    if k.ndim != 1 or nb.ndim != 2 or k.size != nb.shape[0]:
        raise ValidationError(f"k must have shape ({nb.shape[0]},), got {k.shape}")
    if k.size and (k.min() < 1 or k.max() > nb.shape[1]):
        raise ValidationError(f"k must lie in 1..{nb.shape[1]}")
    nb = _check_neighbours(nb, nb.shape[0], z.size, nb.shape[1])
    n_bins = edges.size - 1
    z_bin = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, n_bins - 1).astype(np.int32)
    out = np.empty((nb.shape[0], n_bins), dtype=np.float64)
    _pdf_kernel(nb, z_bin, k, n_bins, out)
    return out


def _mean_distance(x: NDArray, reference: NDArray, neighbours: NDArray) -> NDArray[np.float64]:
    """Mean Euclidean distance (float64) of each row of ``x`` to its first
    :data:`DISTANCE_NEIGHBOURS` neighbours among ``reference`` (NaN without neighbours)."""
    m = min(DISTANCE_NEIGHBOURS, neighbours.shape[1])
    if m == 0:
        return np.full(x.shape[0], np.nan)
    near = reference[neighbours[:, :m]].astype(np.float64)  # (N, m, D)
    return np.sqrt(((near - x[:, None, :].astype(np.float64)) ** 2).sum(-1)).mean(1)


# ----------------------------------------------------------------------------- the estimator


@dataclass
class AdaptiveKNNResult:
    """What :meth:`AdaptiveKNN.predict` returns, one row per target.

    Attributes
    ----------
    k : ndarray, shape (N,)
        Chosen number of neighbours.
    neighbours : ndarray, shape (N, k_max), int32
        Training indices of the k_max nearest neighbours, nearest first; the chosen
        neighbours of target ``t`` are ``neighbours[t, :k[t]]``.
    local_pit_hist : ndarray, shape (N, n_pit_bins), float32
        Fraction of the chosen neighbours' PITs (at the chosen k) in each bin on [0, 1]:
        the histogram that chose k.
    w1 : ndarray, shape (N,)
        1-Wasserstein distance of that histogram to uniform.
    p : ndarray, shape (N, B)
        Raw PDFs: normalised histograms of the chosen neighbours' spec-z.
    k_grid : ndarray, shape (n_k,)
        The candidate k values.
    valid_pit_hist : ndarray, shape (N, n_pit_bins), or None
        The same histogram from the validation PIT table (the spec-z of each neighbour's
        nearest validation galaxy), when the index has one.
    """

    k: NDArray[np.int64]
    neighbours: NDArray[np.int32]
    local_pit_hist: NDArray[np.float32]
    w1: NDArray[np.float64]
    p: NDArray[np.float64]
    k_grid: NDArray[np.int64]
    valid_pit_hist: NDArray[np.float64] | None = None

    def recalibration_hist(self, source: str) -> NDArray[np.float64]:
        """The PIT histogram a recalibration reads: ``train`` (the local histogram, the
        published option 1) or ``train_valid`` (its average with the validation one,
        option 2).

        Examples
        --------
        >>> r = AdaptiveKNNResult(np.array([2]), np.zeros((1, 2), np.int32),
        ...     np.array([[1.0, 0.0]]), np.zeros(1), np.ones((1, 3)) / 3, np.array([1, 2]),
        ...     valid_pit_hist=np.array([[0.0, 1.0]]))
        >>> r.recalibration_hist("train_valid").tolist()
        [[0.5, 0.5]]
        """
        if source == "train":
            return np.asarray(self.local_pit_hist, dtype=np.float64)
        if source == "train_valid":
            if self.valid_pit_hist is None:
                raise ValidationError(
                    "recalibration 'train_valid' needs an index fitted with validation "
                    "galaxies (AdaptiveKNN.fit(..., valid_latent=, valid_z=))"
                )
            return 0.5 * (np.asarray(self.local_pit_hist, np.float64) + self.valid_pit_hist)
        raise ValidationError(
            f"PIT histogram source must be 'train' or 'train_valid', got {source!r}"
        )


#: Keys of :meth:`AdaptiveKNN.state` (``pit_valid`` and ``pit_bin_valid`` join them when the
#: index has a validation PIT table).
STATE_KEYS = (
    "train_latent",
    "train_z",
    "k_grid",
    "edges",
    "n_pit_bins",
    "pit",
    "pit_bin",
    "pit_includes_self",
    "train_distance",
)
VALID_STATE_KEYS = ("pit_valid", "pit_bin_valid")


class AdaptiveKNN:
    """CLAP's adaptive-k KNN PDFs from latent vectors and training spec-z.

    Parameters
    ----------
    edges : array_like, shape (B + 1,)
        Output redshift bin edges; every training redshift must lie on them.
    k_grid : array_like, optional
        Candidate k values; :func:`published_k_grid` (5…2000, 120 values) when omitted.
    n_pit_bins : int
        Bins of the local PIT histograms.
    batch_size : int
        Galaxies per neighbour-search batch: bounds memory to about
        ``batch_size * k_max * 4`` bytes (training neighbours) beyond the results.
    pit_includes_self : bool
        A training galaxy's PIT counts the galaxy itself among its k neighbours (a tie,
        one half), as the published code does, whose neighbour search runs over the whole
        training set. False: its k nearest *other* galaxies (leave one out).
    neighbour_search : {"exact", "pynndescent"}
        The neighbour search (:class:`~clapkit.photoz.neighbours.NeighbourIndex`): exact,
        as published, or approximate through pynndescent.
    neighbour_options : dict, optional
        pynndescent's settings
        (:class:`~clapkit.photoz.approximate_neighbours.PynndescentOptions`).

    Notes
    -----
    Neighbours are exact by default (:class:`~clapkit.photoz.neighbours.NeighbourIndex`):
    ordered by the float64 distance between the float32 latents, equal distances by the
    lower training index. The search and the per-galaxy kernels run on numba's threads.
    With pynndescent the neighbours found are ordered the same way, but some true ones
    may be missing; the PIT table, chosen k and PDFs are then built on those.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.uniform(0.0, 0.4, 400)
    >>> latent = np.column_stack([z, rng.normal(0, 0.01, 400)])
    >>> model = AdaptiveKNN(np.linspace(0, 0.4, 41), k_grid=[5, 10, 20, 50]).fit(latent, z)
    >>> result = model.predict(latent[:3] + 0.001)
    >>> result.p.shape, result.neighbours.shape, bool(np.isin(result.k, [5, 10, 20, 50]).all())
    ((3, 40), (3, 50), True)
    >>> again = AdaptiveKNN.from_state(model.state()).predict(latent[:3] + 0.001)
    >>> bool(np.array_equal(again.p, result.p))
    True
    """

    def __init__(
        self,
        edges: ArrayLike,
        k_grid: ArrayLike | None = None,
        n_pit_bins: int = 100,
        batch_size: int = 10_000,
        pit_includes_self: bool = True,
        neighbour_search: str = "exact",
        neighbour_options: dict | None = None,
    ) -> None:
        self.neighbour_options = check_neighbour_search(neighbour_search, neighbour_options)
        self.neighbour_search = neighbour_search
        self.edges = check_edges(edges)
        self.k_grid = check_k_grid(published_k_grid() if k_grid is None else k_grid)
        self.n_pit_bins = _check_n_pit_bins(n_pit_bins)
        self.batch_size = check_int(batch_size, "batch_size")
        if not isinstance(pit_includes_self, bool | np.bool_):
            raise ValidationError(
                f"pit_includes_self must be true or false, got {pit_includes_self!r}"
            )
        self.pit_includes_self = bool(pit_includes_self)
        self._index: NeighbourIndex | None = None
        self.pit_valid_: NDArray[np.float32] | None = None
        self.pit_bin_valid_: NDArray | None = None

    @property
    def k_max(self) -> int:
        """Largest k on the grid."""
        return int(self.k_grid[-1])

    def fit(
        self,
        train_latent: ArrayLike,
        train_z: ArrayLike,
        valid_latent: ArrayLike | None = None,
        valid_z: ArrayLike | None = None,
        progress: bool = False,
    ) -> AdaptiveKNN:
        """Index the training latents and compute their PIT table (``pit_``, ``pit_bin_``).

        With ``valid_latent`` and ``valid_z``, also the validation PIT table of the
        published recalibration option 2 (``pit_valid_``, ``pit_bin_valid_``): for each
        training galaxy, the spec-z of its nearest validation galaxy in the latent space,
        ranked among the training galaxy's k neighbours.

        Parameters
        ----------
        train_latent : array, shape (N, D)
            Latent vectors of the training galaxies.
        train_z : array, shape (N,)
            Their spectroscopic redshifts.
        valid_latent : array, shape (M, D), optional
            Latent vectors of the validation galaxies.
        valid_z : array, shape (M,), optional
            Their spectroscopic redshifts.
        progress : bool
            Show a progress bar.

        Returns
        -------
        AdaptiveKNN
            ``self``.
        """
        x = _check_latent(train_latent, "train_latent")
        z = check_training_redshifts(train_z, x.shape[0], self.edges, "train_z")
        check_k_grid(self.k_grid, n_train=x.shape[0])
        nearest_valid_z = None
        if (valid_latent is None) != (valid_z is None):
            raise ValidationError("give both valid_latent and valid_z, or neither")
        if valid_latent is not None:
            xv = _check_latent(valid_latent, "valid_latent", x.shape[1])
            zv = check_training_redshifts(valid_z, xv.shape[0], self.edges, "valid_z")
            if xv.shape[0] == 0:
                raise ValidationError("the validation PIT table needs validation galaxies")
            nearest_valid_z = zv[self._new_index(xv).search(x, 1)[:, 0]]
        self._index = self._new_index(x)
        self.z_train_ = z
        self.dim_ = x.shape[1]
        n, n_k = x.shape[0], self.k_grid.size
        dtype = _pit_bin_dtype(self.n_pit_bins)
        self.pit_ = np.empty((n, n_k), dtype=np.float32)
        self.pit_bin_ = np.empty((n, n_k), dtype=dtype)
        if nearest_valid_z is not None:
            self.pit_valid_ = np.empty((n, n_k), dtype=np.float32)
            self.pit_bin_valid_ = np.empty((n, n_k), dtype=dtype)
        else:
            self.pit_valid_ = self.pit_bin_valid_ = None
        self.train_distance_ = np.empty(n, dtype=np.float64)
        starts = range(0, n, self.batch_size)
        for s in tqdm(starts, desc="adaptive knn fit", unit="batch", disable=not progress):
            rows = np.arange(s, min(s + self.batch_size, n))
            nb = self._pit_neighbours(x[rows], rows)
            others = nb[:, 1:] if self.pit_includes_self else nb
            self.train_distance_[rows] = _mean_distance(x[rows], x, others)
            _pit_from_neighbours_kernel(
                nb, z, z[rows], self.k_grid, self.n_pit_bins, self.pit_[s:], self.pit_bin_[s:]
            )
            if nearest_valid_z is not None:
                _pit_from_neighbours_kernel(
                    nb,
                    z,
                    nearest_valid_z[rows],
                    self.k_grid,
                    self.n_pit_bins,
                    self.pit_valid_[s:],
                    self.pit_bin_valid_[s:],
                )
        return self

    def _new_index(self, reference: NDArray[np.float32]) -> NeighbourIndex:
        return NeighbourIndex(reference, self.neighbour_search, **self.neighbour_options)

    def _pit_neighbours(self, x: NDArray[np.float32], rows: NDArray[np.intp]) -> NDArray:
        """The k_max neighbours a training galaxy's PIT counts, nearest first: the galaxy
        itself and its k_max − 1 nearest others (``pit_includes_self``), or its k_max
        nearest others.

        Only the galaxy's own row is left out of the search: a duplicate of its latent is a
        neighbour.
        """
        if not self.pit_includes_self:
            return self._index.search(x, self.k_max, exclude=rows)
        if self.k_max == 1:
            return np.ascontiguousarray(rows.astype(np.int32)[:, None])
        others = self._index.search(x, self.k_max - 1, exclude=rows)
        return np.ascontiguousarray(np.column_stack([rows.astype(np.int32), others]))

    def kneighbors(
        self, target_latent: ArrayLike, exclude: ArrayLike | None = None
    ) -> NDArray[np.int32]:
        """Indices of the k_max nearest training galaxies of each target, nearest first
        (``exclude``: a training row to leave out per target, see
        :meth:`NeighbourIndex.search <clapkit.photoz.neighbours.NeighbourIndex.search>`)."""
        if self._index is None:
            raise ValidationError("call fit() before predict()")
        x = _check_latent(target_latent, "target_latent", self.dim_)
        return self._index.search(x, self.k_max, exclude=exclude)

    def predict(self, target_latent: ArrayLike, progress: bool = False) -> AdaptiveKNNResult:
        """Choose k per target and build its raw PDF, in batches of ``batch_size``."""
        if self._index is None:
            raise ValidationError("call fit() before predict()")
        x = _check_latent(target_latent, "target_latent", self.dim_)
        return self._predict(x, None, progress)

    def neighbour_distance(
        self, target_latent: ArrayLike, neighbours: ArrayLike
    ) -> NDArray[np.float64]:
        """Mean latent distance of each target to its nearest training galaxies (the first
        :data:`DISTANCE_NEIGHBOURS` columns of ``neighbours``, e.g.
        :attr:`AdaptiveKNNResult.neighbours`): the quantity ``train_distance_`` holds for
        the training galaxies themselves (to their nearest others)."""
        if self._index is None:
            raise ValidationError("call fit() before neighbour_distance()")
        x = _check_latent(target_latent, "target_latent", self.dim_)
        nb = np.asarray(neighbours)
        width = min(DISTANCE_NEIGHBOURS, nb.shape[1]) if nb.ndim == 2 else 1
        nb = _check_neighbours(nb, x.shape[0], self._index.n_reference, max(1, width))
        return _mean_distance(x, self._index.reference, nb)

    def predict_training(self, progress: bool = False) -> AdaptiveKNNResult:
        """The training galaxies' own PDFs, each from its nearest *other* training galaxies
        (leave one out): labels-free soft targets for a refit on the training set."""
        if self._index is None:
            raise ValidationError("call fit() before predict_training()")
        n = self._index.n_reference
        if self.k_max > n - 1:
            raise ValidationError(f"k_max={self.k_max} needs more than {n} training galaxies")
        return self._predict(self._index.reference, np.arange(n), progress)

    def _predict(
        self, x: NDArray[np.float32], exclude: NDArray[np.intp] | None, progress: bool
    ) -> AdaptiveKNNResult:
        n = x.shape[0]
        neighbours = np.empty((n, self.k_max), dtype=np.int32)
        k_index = np.empty(n, dtype=np.int64)
        w1 = np.empty(n, dtype=np.float64)
        hist = np.empty((n, self.n_pit_bins), dtype=np.float32)
        p = np.empty((n, self.edges.size - 1), dtype=np.float64)
        valid_hist = None
        if self.pit_bin_valid_ is not None:
            valid_hist = np.empty((n, self.n_pit_bins), dtype=np.float64)
        starts = range(0, n, self.batch_size)
        for s in tqdm(starts, desc="adaptive knn predict", unit="batch", disable=not progress):
            part = slice(s, min(s + self.batch_size, n))
            nb = self.kneighbors(x[part], None if exclude is None else exclude[part])
            neighbours[part] = nb
            k_index[part], w1[part], hist[part] = choose_k(
                nb, self.pit_bin_, self.k_grid, self.n_pit_bins
            )
            p[part] = neighbour_pdfs(nb, self.k_grid[k_index[part]], self.z_train_, self.edges)
            if valid_hist is not None:
                _hist_at_k_kernel(
                    nb,
                    self.pit_bin_valid_,
                    k_index[part],
                    self.k_grid,
                    self.n_pit_bins,
                    valid_hist[part],
                )
        return AdaptiveKNNResult(
            k=self.k_grid[k_index],
            neighbours=neighbours,
            local_pit_hist=hist,
            w1=w1,
            p=p,
            k_grid=self.k_grid.copy(),
            valid_pit_hist=valid_hist,
        )

    # ------------------------------------------------------------------------- persistence

    def state(self) -> dict[str, NDArray]:
        """Everything a fitted model needs, as arrays (keys :data:`STATE_KEYS`, plus
        :data:`VALID_STATE_KEYS` when it has a validation PIT table).

        ``train_latent`` (float32), ``train_z``, ``k_grid``, ``edges``, ``n_pit_bins``
        and ``pit_includes_self`` (0-d), ``pit`` and ``pit_bin`` (the training PIT table),
        ``train_distance`` (each training galaxy's mean distance to its nearest others).
        The arrays are the model's own, not copies. :meth:`from_state` rebuilds the model
        (re-indexing the latents takes a moment; the PIT tables are not recomputed).
        """
        if self._index is None:
            raise ValidationError("call fit() before state()")
        state = {
            "train_latent": self._index.reference,
            "train_z": self.z_train_,
            "k_grid": self.k_grid,
            "edges": self.edges,
            "n_pit_bins": np.array(self.n_pit_bins, dtype=np.int64),
            "pit": self.pit_,
            "pit_bin": self.pit_bin_,
            "pit_includes_self": np.array(self.pit_includes_self),
            "train_distance": self.train_distance_,
        }
        if self.pit_bin_valid_ is not None:
            state["pit_valid"] = self.pit_valid_
            state["pit_bin_valid"] = self.pit_bin_valid_
        return state

    @classmethod
    def from_state(
        cls,
        state: dict[str, ArrayLike],
        batch_size: int = 10_000,
        neighbour_search: str = "exact",
        neighbour_options: dict | None = None,
    ) -> AdaptiveKNN:
        """A fitted model from :meth:`state` (e.g. read back from a file), checked.

        Parameters
        ----------
        state : dict
            :meth:`state`'s arrays.
        batch_size : int
            See :class:`AdaptiveKNN`.
        neighbour_search : {"exact", "pynndescent"}
            How the targets' neighbours are searched. The state holds the training PIT
            tables, whichever search made them; a run records its search in its
            configuration.
        neighbour_options : dict, optional
            pynndescent's settings.

        Returns
        -------
        AdaptiveKNN
        """
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise ValidationError(f"adaptive-KNN state lacks {', '.join(missing)}")
        n_pit_bins = np.asarray(state["n_pit_bins"])
        if n_pit_bins.shape != () or not np.issubdtype(n_pit_bins.dtype, np.integer):
            raise ValidationError(f"n_pit_bins must be one integer, got {n_pit_bins!r}")
        includes_self = np.asarray(state["pit_includes_self"])
        if includes_self.shape != () or includes_self.dtype != np.bool_:
            raise ValidationError(f"pit_includes_self must be one boolean, got {includes_self!r}")
        model = cls(
            state["edges"],
            state["k_grid"],
            int(n_pit_bins),
            batch_size,
            bool(includes_self),
            neighbour_search,
            neighbour_options,
        )
        x = _check_latent(state["train_latent"], "train_latent")
        z = check_training_redshifts(state["train_z"], x.shape[0], model.edges, "train_z")
        check_k_grid(model.k_grid, n_train=x.shape[0])
        shape = (x.shape[0], model.k_grid.size)
        tables = [("pit", "pit_bin")]
        present = [key for key in VALID_STATE_KEYS if key in state]
        if present:
            if len(present) != len(VALID_STATE_KEYS):
                raise ValidationError("adaptive-KNN state has pit_valid or pit_bin_valid, not both")
            tables.append(VALID_STATE_KEYS)
        checked = []
        for pit_key, bin_key in tables:
            pit = np.asarray(state[pit_key])
            pit_bin = np.asarray(state[bin_key])
            if pit.shape != shape or pit_bin.shape != shape:
                raise ValidationError(
                    f"{pit_key} and {bin_key} must have shape {shape}, "
                    f"got {pit.shape} and {pit_bin.shape}"
                )
            if not np.issubdtype(pit_bin.dtype, np.integer) or (
                pit_bin.size and (pit_bin.min() < 0 or pit_bin.max() >= model.n_pit_bins)
            ):
                raise ValidationError(f"{bin_key} must hold integers in 0..{model.n_pit_bins - 1}")
            if not np.all((pit >= 0) & (pit <= 1)):
                raise ValidationError(f"{pit_key} must lie in [0, 1]")
            checked.append(
                (
                    np.ascontiguousarray(pit, dtype=np.float32),
                    np.ascontiguousarray(pit_bin, dtype=_pit_bin_dtype(model.n_pit_bins)),
                )
            )
        distance = np.asarray(state["train_distance"], dtype=np.float64)
        if distance.shape != (x.shape[0],):
            raise ValidationError(
                f"train_distance must have shape ({x.shape[0]},), got {distance.shape}"
            )
        model._index = model._new_index(x)
        model.z_train_ = z
        model.dim_ = x.shape[1]
        model.train_distance_ = distance
        model.pit_, model.pit_bin_ = checked[0]
        if len(checked) > 1:
            model.pit_valid_, model.pit_bin_valid_ = checked[1]
        return model
