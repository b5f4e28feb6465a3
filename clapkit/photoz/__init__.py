"""Photometric-redshift estimators: CLAP and the baselines it must beat.

Every estimator produces PDFs as bin probabilities on fixed edges (see
:mod:`clapkit.metrics`), so all methods are compared on the same footing.

The package's public names are imported on first use, so that the command line starts without
scikit-learn and SciPy.
"""

from clapkit.lazy import lazy_exports

#: Every public name and the module that defines it, imported on first use.
_EXPORTS = {
    "AdaptiveKNN": "adaptive_knn",
    "AdaptiveKNNResult": "adaptive_knn",
    "log_k_grid": "adaptive_knn",
    "published_k_grid": "adaptive_knn",
    "KNNPhotoZ": "baselines",
    "select_k": "baselines",
    "ensemble_pdfs": "ensemble",
    "smooth_pdfs": "ensemble",
    "smooth_pdfs_adaptive": "ensemble",
    "default_edges": "features",
    "photometry_features": "features",
    "fit_pit_polynomial": "recalibrate",
    "recalibrate": "recalibrate",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
