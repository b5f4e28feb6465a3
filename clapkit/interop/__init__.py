"""clapkit inside the field's pipelines: qp ensembles and RAIL stages.

qp (``qp-prob``) and RAIL (``pz-rail-base``) are the LSST DESC tools through which
photo-z PDFs travel; both come with the optional ``rail`` extra and are imported only by
the modules that need them. :mod:`clapkit.interop.export` writes a run's PDFs for
catalog users too (FITS, CSV). Names are imported on first use, so ``clapkit --help``
does not load the metrics (see :mod:`clapkit.lazy`).
"""

from clapkit.lazy import lazy_exports

#: Every public name and the module that defines it, imported on first use.
_EXPORTS = {
    "export_pdfs": "export",
    "from_qp": "qp_ensembles",
    "to_qp": "qp_ensembles",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
