"""Sample-level summaries: one dict of metrics, and the same metrics in bins of a column."""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.metrics.calibration import _pit, coverage_from_pit, pit_uniformity
from clapkit.metrics.estimates import _point_estimate
from clapkit.metrics.pdf import check_inputs
from clapkit.metrics.point import bias, outlier_fraction, sigma_mad
from clapkit.metrics.scores import _crps

#: The metrics of :func:`summarize`, in display order.
SUMMARY_METRICS = (
    "n",
    "sigma_mad",
    "bias",
    "outlier_fraction",
    "crps",
    "pit_ks",
    "pit_w1",
    "coverage_68",
    "coverage_95",
)


def _metrics_from_parts(z_phot, z_true, pit_values, crps_values, outlier_threshold):
    """The summary metrics from per-galaxy parts, so bins reuse one pass over the PDFs."""
    n = z_true.size
    if n == 0:
        return {name: (0 if name == "n" else np.nan) for name in SUMMARY_METRICS}
    uniformity = pit_uniformity(pit_values) if n >= 2 else {"ks": np.nan, "w1": np.nan}
    cov68, cov95 = coverage_from_pit(pit_values, [0.68, 0.95])
    return {
        "n": int(n),
        "sigma_mad": sigma_mad(z_phot, z_true),
        "bias": bias(z_phot, z_true),
        "outlier_fraction": outlier_fraction(z_phot, z_true, outlier_threshold),
        "crps": float(np.mean(crps_values)),
        "pit_ks": uniformity["ks"],
        "pit_w1": uniformity["w1"],
        "coverage_68": float(cov68),
        "coverage_95": float(cov95),
    }


def _parts(p, edges, z_true, point):
    """Validate once, then compute the per-galaxy point estimate, PIT and CRPS."""
    p, edges, z = check_inputs(p, edges, z_true)
    return _point_estimate(p, edges, point), z, _pit(p, edges, z), _crps(p, edges, z)


def summarize(
    p: ArrayLike,
    edges: ArrayLike,
    z_true: ArrayLike,
    *,
    point: str = "mean",
    outlier_threshold: float = 0.05,
) -> dict[str, float]:
    """Accuracy and calibration of a set of PDFs, one dict per sample.

    Keys (see :data:`SUMMARY_METRICS`): ``n``; ``sigma_mad``, ``bias`` (mean δz) and
    ``outlier_fraction`` of the point estimate; mean ``crps``; ``pit_ks`` (KS statistic)
    and ``pit_w1`` (1-Wasserstein to uniform) of the PIT; ``coverage_68`` and
    ``coverage_95`` of central intervals.

    Parameters
    ----------
    p : array, shape (N, B)
        Bin probabilities, rows summing to 1.
    edges : array, shape (B + 1,)
        The redshift grid.
    z_true : array, shape (N,)
        True redshifts.
    point : {"mean", "median", "mode"}
        The point estimate scored by ``sigma_mad``, ``bias`` and ``outlier_fraction``.
    outlier_threshold : float
        |δz| above which a galaxy is an outlier.

    Returns
    -------
    dict

    Examples
    --------
    >>> from clapkit.metrics import gaussian_pdfs
    >>> edges = np.linspace(0, 1, 201)
    >>> rng = np.random.default_rng(0)
    >>> mu = rng.uniform(0.3, 0.7, 2000)
    >>> z = rng.normal(mu, 0.05)
    >>> s = summarize(gaussian_pdfs(mu, np.full(2000, 0.05), edges), edges, z)
    >>> abs(s["coverage_68"] - 0.68) < 0.03, s["pit_ks"] < 0.05
    (True, True)
    """
    z_phot, z, pit_values, crps_values = _parts(p, edges, z_true, point)
    return _metrics_from_parts(z_phot, z, pit_values, crps_values, outlier_threshold)


def calibration_table(
    p: ArrayLike,
    edges: ArrayLike,
    z_true: ArrayLike,
    by: ArrayLike,
    bins: int | ArrayLike = 5,
    *,
    point: str = "mean",
    outlier_threshold: float = 0.05,
) -> Table:
    """The :func:`summarize` metrics in bins of any per-galaxy quantity.

    Parameters
    ----------
    p, edges, z_true
        PDFs, bin edges and truths as for :func:`summarize`.
    by : array_like, shape (N,)
        The quantity to bin on: true or photometric redshift, a magnitude, a colour...
    bins : int or array_like
        Number of equal-count (quantile) bins, or explicit increasing bin edges. Values
        outside the edges or non-finite are not binned; their number is in
        ``table.meta["n_unbinned"]``. The last bin includes its upper edge.

    Returns
    -------
    astropy.table.Table
        One row per bin: ``lo``, ``hi``, then the columns of :data:`SUMMARY_METRICS`
        (``n`` is the count; metrics of empty bins are NaN).

    Examples
    --------
    >>> from clapkit.metrics import gaussian_pdfs
    >>> edges = np.linspace(0, 1, 101)
    >>> mu = np.linspace(0.2, 0.8, 400)
    >>> t = calibration_table(gaussian_pdfs(mu, np.full(400, 0.05), edges), edges, mu, mu, bins=4)
    >>> t["n"].tolist()
    [100, 100, 100, 100]
    """
    z_phot, z, pit_values, crps_values = _parts(p, edges, z_true, point)
    by = np.asarray(by, dtype=np.float64)
    if by.shape != z.shape:
        raise ValidationError(
            f"by must have shape {z.shape} (one value per galaxy), got {by.shape}"
        )
    finite = np.isfinite(by)
    if np.ndim(bins) == 0:
        n_bins = check_int(bins, "bins")
        if not np.any(finite):
            raise ValidationError("by has no finite value to bin on")
        bin_edges = np.quantile(by[finite], np.linspace(0, 1, n_bins + 1))
    else:
        bin_edges = np.asarray(bins, dtype=np.float64)
        if bin_edges.ndim != 1 or bin_edges.size < 2 or np.any(np.diff(bin_edges) <= 0):
            raise ValidationError("explicit bins must be at least 2 strictly increasing edges")
    n_bins = bin_edges.size - 1
    index = np.full(by.shape, -1)
    inside = finite & (by >= bin_edges[0]) & (by <= bin_edges[-1])
    index[inside] = np.clip(np.searchsorted(bin_edges, by[inside], side="right") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        sel = index == b
        metrics = _metrics_from_parts(
            z_phot[sel], z[sel], pit_values[sel], crps_values[sel], outlier_threshold
        )
        rows.append({"lo": bin_edges[b], "hi": bin_edges[b + 1], **metrics})
    table = Table(rows=rows, names=["lo", "hi", *SUMMARY_METRICS])
    table.meta["n_unbinned"] = int(np.sum(index < 0))
    return table


def per_galaxy_parts(
    p: ArrayLike, edges: ArrayLike, z_true: ArrayLike, point: str = "mean"
) -> dict[str, NDArray[np.float64]]:
    """Per-galaxy point estimate, PIT and CRPS in one validated pass.

    Parameters
    ----------
    p : array, shape (N, B)
        Bin probabilities, rows summing to 1.
    edges : array, shape (B + 1,)
        The redshift grid.
    z_true : array, shape (N,)
        True redshifts.
    point : {"mean", "median", "mode"}
        The point estimate.

    Returns
    -------
    dict
        ``z_phot``, ``pit`` and ``crps``, each of shape (N,).

    Examples
    --------
    >>> sorted(per_galaxy_parts([[0.5, 0.5]], [0.0, 1.0, 2.0], [1.0]))
    ['crps', 'pit', 'z_phot']
    """
    z_phot, _, pit_values, crps_values = _parts(p, edges, z_true, point)
    return {"z_phot": z_phot, "pit": pit_values, "crps": crps_values}
