"""The :class:`PDFs` convenience class: bin probabilities with their edges and truths."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.table import Table
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError
from clapkit.metrics.calibration import coverage, hpd_level, pit
from clapkit.metrics.estimates import point_estimate, quantile
from clapkit.metrics.pdf import check_edges, check_pdfs, check_truth, gaussian_pdfs, histogram_pdfs
from clapkit.metrics.scores import crps
from clapkit.metrics.summary import calibration_table, summarize


@dataclass(frozen=True)
class PDFs:
    """Redshift PDFs of N galaxies on B bins, valid by construction.

    A thin layer over the pure-array functions of :mod:`clapkit.metrics` for notebooks:
    it validates once and remembers the edges, the truths and the ids.

    Parameters
    ----------
    p : array_like, shape (N, B)
        Bin probabilities; rows must sum to one unless ``normalize=True``.
    edges : array_like, shape (B + 1,)
    z_true : array_like, shape (N,), optional
        True redshifts; needed by the calibration metrics.
    ids : array_like, shape (N,), optional
        Galaxy ids; defaults to ``0..N-1``.
    normalize : bool
        Renormalise rows that do not sum to one (with a warning) instead of raising.

    Examples
    --------
    >>> edges = np.linspace(0, 1, 101)
    >>> pdfs = PDFs.from_gaussian([0.4, 0.6], [0.05, 0.05], edges, z_true=[0.42, 0.55])
    >>> pdfs.point_estimate().round(3)
    array([0.4, 0.6])
    >>> pdfs[1:].n
    1
    """

    p: NDArray[np.floating]
    edges: NDArray[np.float64]
    z_true: NDArray[np.float64] | None = None
    ids: NDArray = field(default=None)
    normalize: bool = False

    def __post_init__(self) -> None:
        p = check_pdfs(self.p, self.edges, normalize=self.normalize)
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "edges", check_edges(self.edges, p.shape[1]))
        if self.z_true is not None:
            object.__setattr__(self, "z_true", check_truth(self.z_true, p.shape[0]))
        ids = np.arange(p.shape[0]) if self.ids is None else np.asarray(self.ids)
        if ids.shape != (p.shape[0],):
            raise ValidationError(f"ids must have shape ({p.shape[0]},), got {ids.shape}")
        object.__setattr__(self, "ids", ids)

    @classmethod
    def from_gaussian(cls, mean: ArrayLike, sigma: ArrayLike, edges: ArrayLike, **kwargs) -> PDFs:
        """Discretised Gaussians (see :func:`~clapkit.metrics.gaussian_pdfs`).

        Parameters
        ----------
        mean, sigma : array, shape (N,)
            Each galaxy's Gaussian.
        edges : array, shape (B + 1,)
            The redshift grid.
        **kwargs
            The other fields of :class:`PDFs` (``z_true``, ``ids``).

        Returns
        -------
        PDFs
        """
        return cls(gaussian_pdfs(mean, sigma, edges), edges, **kwargs)

    @classmethod
    def from_samples(cls, samples: ArrayLike, edges: ArrayLike, **kwargs) -> PDFs:
        """Histograms of redshift samples (see :func:`~clapkit.metrics.histogram_pdfs`)."""
        return cls(histogram_pdfs(samples, edges), edges, **kwargs)

    @property
    def n(self) -> int:
        """Number of galaxies."""
        return self.p.shape[0]

    @property
    def n_bins(self) -> int:
        """Number of redshift bins."""
        return self.p.shape[1]

    @property
    def centers(self) -> NDArray[np.float64]:
        """Bin centres, shape (B,)."""
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    def density(self) -> NDArray[np.float64]:
        """Probability density per bin (probability / width), shape (N, B)."""
        return self.p / np.diff(self.edges)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index) -> PDFs:
        index = np.arange(self.n)[index]
        index = np.atleast_1d(index)
        return PDFs(
            self.p[index],
            self.edges,
            z_true=None if self.z_true is None else self.z_true[index],
            ids=self.ids[index],
        )

    def _truth(self) -> NDArray[np.float64]:
        if self.z_true is None:
            raise ValidationError(
                "these PDFs have no z_true; pass z_true= to compute calibration metrics"
            )
        return self.z_true

    def point_estimate(self, kind: str = "mean") -> NDArray[np.float64]:
        """Point estimate per galaxy (see :func:`~clapkit.metrics.point_estimate`)."""
        return point_estimate(self.p, self.edges, kind)

    def quantile(self, q: ArrayLike) -> NDArray[np.float64]:
        """Quantiles per galaxy (see :func:`~clapkit.metrics.quantile`)."""
        return quantile(self.p, self.edges, q)

    def pit(self) -> NDArray[np.float64]:
        """PIT per galaxy (see :func:`~clapkit.metrics.pit`)."""
        return pit(self.p, self.edges, self._truth())

    def hpd_level(self) -> NDArray[np.float64]:
        """HPD level of the truth per galaxy (see :func:`~clapkit.metrics.hpd_level`)."""
        return hpd_level(self.p, self.edges, self._truth())

    def crps(self) -> NDArray[np.float64]:
        """CRPS per galaxy (see :func:`~clapkit.metrics.crps`)."""
        return crps(self.p, self.edges, self._truth())

    def coverage(
        self, levels: ArrayLike = (0.68, 0.95), kind: str = "central"
    ) -> NDArray[np.float64]:
        """Coverage per level (see :func:`~clapkit.metrics.coverage`)."""
        return coverage(self.p, self.edges, self._truth(), levels, kind)

    def summary(self, **kwargs) -> dict[str, float]:
        """Sample metrics (see :func:`~clapkit.metrics.summarize`)."""
        return summarize(self.p, self.edges, self._truth(), **kwargs)

    def calibration_table(self, by: ArrayLike, bins: int | ArrayLike = 5, **kwargs) -> Table:
        """Metrics in bins of ``by`` (see :func:`~clapkit.metrics.calibration_table`)."""
        return calibration_table(self.p, self.edges, self._truth(), by, bins, **kwargs)
