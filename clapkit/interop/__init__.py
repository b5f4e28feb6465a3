"""clapkit inside the field's pipelines: qp ensembles and RAIL stages.

qp (``qp-prob``) and RAIL (``pz-rail-base``) are the LSST DESC tools through which
photo-z PDFs travel; both come with the optional ``rail`` extra and are imported only by
the modules that need them.
"""

from clapkit.interop.qp_ensembles import from_qp, to_qp

__all__ = ["from_qp", "to_qp"]
