"""Photometric-redshift estimators: CLAP and the baselines it must beat.

Every estimator produces PDFs as bin probabilities on fixed edges (see
:mod:`clapkit.metrics`), so all methods are compared on the same footing.
"""

from clapkit.photoz.adaptive_knn import (
    AdaptiveKNN,
    AdaptiveKNNResult,
    log_k_grid,
    published_k_grid,
)
from clapkit.photoz.baselines import KNNPhotoZ, select_k
from clapkit.photoz.ensemble import ensemble_pdfs, smooth_pdfs, smooth_pdfs_adaptive
from clapkit.photoz.features import default_edges, photometry_features
from clapkit.photoz.recalibrate import fit_pit_polynomial, recalibrate

__all__ = [
    "AdaptiveKNN",
    "AdaptiveKNNResult",
    "KNNPhotoZ",
    "default_edges",
    "ensemble_pdfs",
    "fit_pit_polynomial",
    "log_k_grid",
    "photometry_features",
    "published_k_grid",
    "recalibrate",
    "select_k",
    "smooth_pdfs",
    "smooth_pdfs_adaptive",
]
