"""Compiled per-row loops behind the PDF metrics.

Why hand-written: the metrics must run on a million PDFs within a few memory passes and
without temporary (N, B) arrays. Vectorised NumPy needs a cumulative sum or a mask of the
full array per metric (several passes and an extra copy); a compiled loop over each row
touches each probability once and allocates only the (N,) result. No well-kept library
computes PIT, CRPS and HPD levels for histogram PDFs this way (qp and properscoring work
on parametric or sample forms).

Conventions shared by all kernels (see ``docs/metrics.md``):

- bin ``b`` is ``[edges[b], edges[b+1])``; the last bin also holds ``edges[-1]``;
- the density is uniform within a bin, so the CDF is linear within it;
- rows are assumed already validated (finite, non-negative, summing to one).

``fastmath={"reassoc"}`` lets LLVM reorder the sums into SIMD lanes; it keeps IEEE
semantics for NaN and infinity, which the validation relies on. Rows are independent, so
the loops over galaxies run in parallel threads (``numba.prange``); the CRPS needs a
running CDF per row, a chain of dependent additions that one core cannot hide.
"""

import numba
import numpy as np

_JIT = {"cache": True, "nogil": True, "fastmath": {"reassoc"}}
_JIT_ROWS = {**_JIT, "parallel": True}
# A multiplication, not a division by 3: without "arcp" LLVM keeps the (slow) division.
_THIRD = 1.0 / 3.0


@numba.njit(**_JIT)
def _bin_index(edges, z):
    """Index of the bin holding ``z`` or -1 below the grid, B above it."""
    n_bins = edges.shape[0] - 1
    if z < edges[0]:
        return -1
    if z > edges[n_bins]:
        return n_bins
    if z == edges[n_bins]:
        return n_bins - 1
    return np.searchsorted(edges, z, side="right") - 1


@numba.njit(**_JIT_ROWS)
def row_checks(p, sums, negatives):
    """Sum (float64) and number of negative entries of each row.

    A non-finite value makes the sum non-finite, so one pass of two reductions that
    vectorise (a sum and an integer count) checks finiteness, sign and normalisation.
    """
    n, n_bins = p.shape
    for i in numba.prange(n):
        total = 0.0
        count = 0
        for b in range(n_bins):
            v = p[i, b]
            total += v
            count += v < 0
        sums[i] = total
        negatives[i] = count


@numba.njit(**_JIT_ROWS)
def pit(p, edges, z_true, out):
    """CDF at the true redshift, linear inside the bin that holds it."""
    n, n_bins = p.shape
    for i in numba.prange(n):
        j = _bin_index(edges, z_true[i])
        if j < 0:
            out[i] = 0.0
            continue
        if j >= n_bins:
            out[i] = 1.0
            continue
        cdf = 0.0
        for b in range(j):
            cdf += p[i, b]
        cdf += p[i, j] * (z_true[i] - edges[j]) / (edges[j + 1] - edges[j])
        out[i] = min(max(cdf, 0.0), 1.0)


#: Rows per parallel task in kernels that need a scratch buffer (allocated once per task).
_ROWS_PER_TASK = 1024


@numba.njit(**_JIT_ROWS)
def crps(p, edges, z_true, out):
    """Exact CRPS, integral of (F(z) - H(z - z_true))^2, for a piecewise-uniform density.

    Written as ∫ F² over the grid - 2 ∫ F above the truth + (length above the truth), so
    that after one sequential pass building the CDF at the edges (a chain of dependent
    additions) the remaining sums have no chain and vectorise. On a bin where the CDF
    rises linearly from a to e, ∫ F² = w (a² + ae + e²) / 3 and 2 ∫ F = w (a + e).
    """
    n, n_bins = p.shape
    lo = edges[0]
    hi = edges[n_bins]
    widths = edges[1:] - edges[:-1]
    n_tasks = (n + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(n_tasks):
        cdf = np.empty(n_bins + 1)
        for i in range(task * _ROWS_PER_TASK, min((task + 1) * _ROWS_PER_TASK, n)):
            running = 0.0
            cdf[0] = 0.0
            for b in range(n_bins):
                running += p[i, b]
                cdf[b + 1] = running
            z = z_true[i]
            j = _bin_index(edges, z)
            squared = 0.0
            twice_linear = 0.0
            for b in range(n_bins):
                a = cdf[b]
                e = cdf[b + 1]
                squared += widths[b] * (a * a + a * e + e * e)
                twice_linear += widths[b] * (a + e) if b > j else 0.0
            total = squared * _THIRD
            if j >= n_bins:
                # Above the grid up to the truth the CDF is the row total and the step 0.
                total += (z - hi) * running * running
            elif j < 0:
                # Below the grid from the truth the CDF is 0 and the step 1.
                total += (lo - z) + (hi - lo) - twice_linear
            else:
                at_truth = cdf[j] + p[i, j] * (z - edges[j]) / widths[j]
                twice_linear += (edges[j + 1] - z) * (at_truth + cdf[j + 1])
                total += (hi - z) - twice_linear
            out[i] = total


@numba.njit(**_JIT_ROWS)
def hpd_masses(p, edges, z_true, denser, equal):
    """Mass of the bins denser than the truth's bin, and of those exactly as dense.

    The smallest highest-density region holding the truth has a credibility between
    ``denser`` and ``denser + equal``: bins of equal density enter the region in no
    defined order. A truth off the grid or in an empty bin gets ``(1, 0)``.
    """
    n, n_bins = p.shape
    inverse_widths = 1.0 / (edges[1:] - edges[:-1])
    for i in numba.prange(n):
        j = _bin_index(edges, z_true[i])
        density_true = p[i, j] * inverse_widths[j] if 0 <= j < n_bins else 0.0
        if density_true <= 0.0:
            denser[i] = 1.0
            equal[i] = 0.0
            continue
        above = 0.0
        same = 0.0
        for b in range(n_bins):
            mass = p[i, b]
            density = mass * inverse_widths[b]
            above += mass if density > density_true else 0.0
            same += mass if density == density_true else 0.0
        denser[i] = above
        equal[i] = same


@numba.njit(**_JIT_ROWS)
def quantiles(p, edges, q, out):
    """Inverse CDF at each level of ``q`` (sorted ascending), linear inside bins."""
    n, n_bins = p.shape
    n_q = q.shape[0]
    for i in numba.prange(n):
        cdf = 0.0
        k = 0
        for b in range(n_bins):
            mass = p[i, b]
            nxt = cdf + mass
            while k < n_q and mass > 0.0 and q[k] <= nxt:
                fraction = (q[k] - cdf) / mass
                fraction = min(max(fraction, 0.0), 1.0)
                out[i, k] = edges[b] + fraction * (edges[b + 1] - edges[b])
                k += 1
            cdf = nxt
        # Levels above the (rounded) total mass fall on the last edge with mass.
        last = n_bins
        while last > 0 and p[i, last - 1] <= 0.0:
            last -= 1
        while k < n_q:
            out[i, k] = edges[last]
            k += 1
