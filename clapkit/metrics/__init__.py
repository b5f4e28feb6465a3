"""Redshift PDFs on a grid and their calibration and accuracy metrics.

Pure-array functions first, all taking PDFs as bin probabilities ``p`` of shape ``(N, B)``
on bin edges ``edges`` of shape ``(B + 1,)`` and true redshifts ``z_true`` of shape
``(N,)``; the :class:`PDFs` class sits on top for convenience. No I/O happens here.
The glossary of every metric (formula, convention, good values) is ``docs/metrics.md``.
"""

from clapkit.metrics.calibration import (
    anderson_darling_uniform,
    coverage,
    coverage_from_pit,
    hpd_level,
    pit,
    pit_uniformity,
    wasserstein_to_uniform,
)
from clapkit.metrics.ensemble import combine
from clapkit.metrics.estimates import point_estimate, quantile
from clapkit.metrics.pdf import (
    NORM_TOLERANCE,
    bin_centers,
    check_edges,
    check_pdfs,
    check_truth,
    gaussian_pdfs,
    histogram_pdfs,
)
from clapkit.metrics.pdfs import PDFs
from clapkit.metrics.point import bias, delta_z, outlier_fraction, sigma_mad
from clapkit.metrics.scores import crps, crps_gaussian
from clapkit.metrics.summary import SUMMARY_METRICS, calibration_table, per_galaxy_parts, summarize

__all__ = [
    "NORM_TOLERANCE",
    "SUMMARY_METRICS",
    "PDFs",
    "anderson_darling_uniform",
    "bias",
    "bin_centers",
    "calibration_table",
    "check_edges",
    "check_pdfs",
    "check_truth",
    "combine",
    "coverage",
    "coverage_from_pit",
    "crps",
    "crps_gaussian",
    "delta_z",
    "gaussian_pdfs",
    "histogram_pdfs",
    "hpd_level",
    "outlier_fraction",
    "per_galaxy_parts",
    "pit",
    "pit_uniformity",
    "point_estimate",
    "quantile",
    "sigma_mad",
    "summarize",
    "wasserstein_to_uniform",
]
