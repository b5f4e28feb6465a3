"""Photometry k-nearest-neighbour baseline: PDFs from the redshifts of neighbours.

The first baseline every later method must beat: standardise the features, find the k
nearest training galaxies, and histogram their spectroscopic redshifts on the output
bins. Neighbour search is scikit-learn's exact tree search, right for the few features
of catalog photometry, or pynndescent's approximate graph search
(``neighbour_search="pynndescent"``, :class:`clapkit.photoz.neighbours.NeighbourIndex`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.neighbors import NearestNeighbors
from tqdm.auto import tqdm

from clapkit.checks import check_int
from clapkit.errors import ValidationError
from clapkit.metrics import check_edges, crps, histogram_pdfs
from clapkit.photoz.inputs import check_matrix, check_training_redshifts
from clapkit.photoz.neighbours import NeighbourIndex, check_neighbour_search


class KNNPhotoZ:
    """k-nearest-neighbour redshift PDFs from standardised catalog features.

    Parameters
    ----------
    edges : array_like, shape (B + 1,)
        Output bin edges; every training redshift must lie on them.
    k : int
        Number of neighbours whose redshifts make each histogram.
    neighbour_search : {"exact", "pynndescent"}
        scikit-learn's exact search, or pynndescent's approximate one.
    neighbour_options : dict, optional
        pynndescent's settings
        (:class:`~clapkit.photoz.approximate_neighbours.PynndescentOptions`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 1, (500, 2))
    >>> z = 0.3 * x[:, 0]
    >>> model = KNNPhotoZ(np.linspace(0, 0.4, 41), k=10).fit(x, z)
    >>> p = model.predict(np.array([[0.5, 0.5]]))
    >>> p.shape, round(float(p.sum()), 6)
    ((1, 40), 1.0)
    """

    def __init__(
        self,
        edges: ArrayLike,
        k: int = 20,
        neighbour_search: str = "exact",
        neighbour_options: dict | None = None,
    ) -> None:
        self.edges = check_edges(edges)
        self.k = check_int(k, "k")
        self.neighbour_options = check_neighbour_search(neighbour_search, neighbour_options)
        self.neighbour_search = neighbour_search
        self._index: NearestNeighbors | NeighbourIndex | None = None

    def fit(self, features: ArrayLike, z: ArrayLike) -> KNNPhotoZ:
        """Remember the standardised training features and redshifts."""
        x = check_matrix(features, "features")
        z = check_training_redshifts(z, x.shape[0], self.edges)
        if x.shape[0] < self.k:
            raise ValidationError(f"k={self.k} exceeds the {x.shape[0]} training galaxies")
        self.mean_ = x.mean(axis=0)
        self.scale_ = x.std(axis=0)
        if np.any(self.scale_ == 0):
            raise ValidationError(
                f"feature column {int(np.flatnonzero(self.scale_ == 0)[0])} is constant"
            )
        self.z_train_ = z
        scaled = (x - self.mean_) / self.scale_
        if self.neighbour_search == "exact":
            self._index = NearestNeighbors(n_neighbors=self.k).fit(scaled)
        else:
            self._index = NeighbourIndex(scaled, self.neighbour_search, **self.neighbour_options)
        return self

    def kneighbors(self, features: ArrayLike, k: int | None = None) -> NDArray[np.intp]:
        """Indices of the ``k`` nearest training galaxies of each row, nearest first."""
        if self._index is None:
            raise ValidationError("call fit() before predict()")
        x = check_matrix(features, "features", self.mean_.size)
        k = self.k if k is None else int(k)
        scaled = (x - self.mean_) / self.scale_
        if isinstance(self._index, NeighbourIndex):
            return self._index.search(scaled, k)
        return self._index.kneighbors(scaled, n_neighbors=k, return_distance=False)

    def predict(
        self, features: ArrayLike, batch_size: int = 20_000, progress: bool = False
    ) -> NDArray[np.float64]:
        """PDFs, shape (N, B): histograms of the neighbours' redshifts."""
        x = check_matrix(features, "features")
        starts = range(0, x.shape[0], batch_size)
        parts = [
            histogram_pdfs(self.z_train_[self.kneighbors(x[s : s + batch_size])], self.edges)
            for s in tqdm(starts, desc="knn predict", unit="batch", disable=not progress)
        ]
        return np.concatenate(parts) if parts else np.empty((0, self.edges.size - 1))


def select_k(
    train_features: ArrayLike,
    train_z: ArrayLike,
    valid_features: ArrayLike,
    valid_z: ArrayLike,
    edges: ArrayLike,
    candidates: Sequence[int] = (5, 10, 20, 40, 80),
    neighbour_search: str = "exact",
    neighbour_options: dict | None = None,
) -> tuple[int, dict[int, float]]:
    """Choose k by the mean CRPS on a validation split (one neighbour search for all k).

    Parameters
    ----------
    train_features, valid_features : array, shape (N, F), (M, F)
        Features of the training and validation galaxies.
    train_z, valid_z : array, shape (N,), (M,)
        Their spectroscopic redshifts.
    edges : array, shape (B + 1,)
        The redshift grid.
    candidates : sequence of int
        The values of k to try.
    neighbour_search : {"exact", "pynndescent"}
        See :class:`KNNPhotoZ`.
    neighbour_options : dict, optional
        pynndescent's settings.

    Returns
    -------
    best_k : int
    scores : dict
        Mean validation CRPS for every candidate.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.uniform(0, 1, (600, 1))
    >>> z = np.clip(0.3 * x[:, 0] + rng.normal(0, 0.02, 600), 0, 0.4)
    >>> k, scores = select_k(x[:400], z[:400], x[400:], z[400:], np.linspace(0, 0.4, 41), (1, 20))
    >>> k
    20
    """
    candidates = sorted({int(k) for k in candidates})
    model = KNNPhotoZ(edges, max(candidates), neighbour_search, neighbour_options)
    model.fit(train_features, train_z)
    neighbours = model.kneighbors(valid_features)
    valid_z = np.asarray(valid_z, dtype=np.float64)
    scores = {
        k: float(
            crps(
                histogram_pdfs(model.z_train_[neighbours[:, :k]], model.edges), model.edges, valid_z
            ).mean()
        )
        for k in candidates
    }
    return min(scores, key=scores.get), scores
