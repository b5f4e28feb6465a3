"""PDFs to and from qp ensembles, the form photo-z PDFs take in LSST DESC pipelines.

clapkit's PDFs are bin probabilities on edges, which is exactly qp's histogram
parameterisation: :func:`to_qp` loses nothing. :func:`from_qp` reads any
parameterisation (histogram, interpolated grid, quantiles, mixture models...) onto
clapkit's bins through the ensemble's own CDF, so a bin's probability is the ensemble's
exact mass between its edges, whatever qp's representation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from clapkit.errors import ValidationError
from clapkit.metrics.pdf import check_edges
from clapkit.metrics.pdfs import PDFs

#: Ancillary columns of an ensemble written by :func:`to_qp`.
ID_COLUMN = "id"
TRUTH_COLUMN = "z_true"


def _qp() -> Any:
    try:
        import qp
    except ImportError as err:  # an optional extra
        raise ValidationError(
            "qp is not installed: install clapkit with the 'rail' extra "
            "(pip install 'clapkit[rail]')"
        ) from err
    return qp


def to_qp(pdfs: PDFs) -> Any:
    """The PDFs as a ``qp.Ensemble`` of histograms on the same edges.

    Ancillary data: ``id`` and, when known, ``z_true``, one per galaxy.

    Parameters
    ----------
    pdfs : PDFs
        The PDFs to convert.

    Returns
    -------
    qp.Ensemble
        ``qp.hist`` with ``bins = pdfs.edges`` and densities ``pdfs.p / width``.

    Examples
    --------
    >>> edges = np.linspace(0, 1, 51)
    >>> pdfs = PDFs.from_gaussian([0.3, 0.5], [0.05, 0.1], edges, z_true=[0.31, 0.4])
    >>> ensemble = to_qp(pdfs)
    >>> int(ensemble.npdf), sorted(ensemble.ancil)
    (2, ['id', 'z_true'])
    >>> bool(np.allclose(from_qp(ensemble, edges).p, pdfs.p))
    True
    """
    qp = _qp()
    if not isinstance(pdfs, PDFs):
        raise ValidationError(f"to_qp expects clapkit PDFs, got {type(pdfs).__name__}")
    ensemble = qp.Ensemble(qp.hist, data={"bins": pdfs.edges, "pdfs": pdfs.density()})
    ancil = {ID_COLUMN: np.asarray(pdfs.ids)}
    if pdfs.z_true is not None:
        ancil[TRUTH_COLUMN] = pdfs.z_true
    ensemble.set_ancil(ancil)
    return ensemble


def from_qp(
    ensemble: Any,
    edges: ArrayLike,
    *,
    z_true: ArrayLike | None = None,
    ids: ArrayLike | None = None,
    normalize: bool = True,
) -> PDFs:
    """Any qp ensemble as clapkit PDFs on ``edges``.

    Each bin's probability is the ensemble's CDF difference across the bin. Mass outside
    ``[edges[0], edges[-1]]`` is dropped; a row whose mass on the grid then misses one by
    more than clapkit's tolerance is renormalised with a warning (``normalize=True``) or
    refused (``normalize=False``), and one within the tolerance is kept as it is.

    Parameters
    ----------
    ensemble : qp.Ensemble
        Any parameterisation.
    edges : array_like, shape (B + 1,)
        clapkit's redshift grid.
    z_true, ids : array_like, shape (N,), optional
        Override the ensemble's ancillary ``z_true`` / ``id`` (used when present).
    normalize : bool
        Renormalise rows whose mass on the grid is not one.

    Returns
    -------
    PDFs

    Examples
    --------
    >>> import qp
    >>> normal = {"loc": np.array([[0.4]]), "scale": np.array([[0.05]])}
    >>> ensemble = qp.Ensemble(qp.stats.norm, data=normal)
    >>> pdfs = from_qp(ensemble, np.linspace(0, 1, 101))
    >>> round(float(pdfs.point_estimate()[0]), 3)
    0.4
    """
    qp = _qp()
    if not isinstance(ensemble, qp.Ensemble):
        raise ValidationError(f"from_qp expects a qp.Ensemble, got {type(ensemble).__name__}")
    edges = np.asarray(edges, dtype=np.float64)
    edges = check_edges(edges, edges.size - 1)
    cdf = np.asarray(ensemble.cdf(edges), dtype=np.float64).reshape(ensemble.npdf, edges.size)
    if not np.all(np.isfinite(cdf)):
        bad = np.flatnonzero(~np.all(np.isfinite(cdf), axis=1))
        raise ValidationError(
            f"qp ensemble: CDF is not finite for PDF index {bad[:5].tolist()} ({bad.size} in all)"
        )
    # qp's interpolated CDFs can step back by rounding; a probability is never negative.
    p = np.clip(np.diff(cdf, axis=1), 0.0, None)
    ancil = ensemble.ancil or {}
    if z_true is None and TRUTH_COLUMN in ancil:
        z_true = np.asarray(ancil[TRUTH_COLUMN], dtype=np.float64)
    if ids is None and ID_COLUMN in ancil:
        ids = np.asarray(ancil[ID_COLUMN])
    return PDFs(p, edges, z_true=z_true, ids=ids, normalize=normalize)
