"""A 2-D map of the latent space, stored in the run for the neighbour browser.

The dashboards draw the latent vectors v_A of the test galaxies in two dimensions. The
projection is computed here, once, by the library (the app computes nothing heavy):

- ``"umap"`` (default): UMAP (umap-learn), which keeps local neighbourhoods, the
  structure the adaptive KNN works on;
- ``"pca"``: the first two principal components (scikit-learn), linear and instant;
  for tiny sets and tests, where UMAP's compilation costs more than the work.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clapkit.errors import ValidationError

PROJECTIONS = ("umap", "pca")


def project_latent(
    latent: ArrayLike, method: str = "umap", seed: int = 0, n_neighbors: int = 15
) -> NDArray[np.float32]:
    """Project latent vectors to 2-D.

    Parameters
    ----------
    latent : array_like, shape (N, D)
        Latent vectors, D >= 2, all finite.
    method : {"umap", "pca"}
    seed : int
        Seeds UMAP's layout (PCA is deterministic).
    n_neighbors : int
        UMAP's neighbourhood size, capped at N - 1.

    Returns
    -------
    ndarray, shape (N, 2), float32

    Examples
    --------
    >>> latent = np.random.default_rng(0).normal(size=(50, 4)) * [5.0, 1.0, 0.1, 0.1]
    >>> xy = project_latent(latent, "pca")
    >>> xy.shape, bool(xy[:, 0].std() > xy[:, 1].std())
    ((50, 2), True)
    """
    x = np.asarray(latent, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValidationError(f"latent vectors must have shape (N, D >= 2), got {x.shape}")
    if x.shape[0] < 3:
        raise ValidationError(f"a projection needs at least 3 galaxies, got {x.shape[0]}")
    if not np.all(np.isfinite(x)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(x), axis=1))[0])
        raise ValidationError(f"latent vector {bad} is not finite")
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2).fit_transform(x).astype(np.float32)
    if method == "umap":
        with warnings.catch_warnings():
            # umap-learn warns at import that TensorFlow (for ParametricUMAP) is absent.
            warnings.simplefilter("ignore", ImportWarning)
            import umap

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(n_neighbors, x.shape[0] - 1),
            random_state=seed,
            # A random_state makes UMAP single-threaded anyway; saying so avoids its warning.
            n_jobs=1,
        )
        return reducer.fit_transform(x).astype(np.float32)
    raise ValidationError(f"projection must be one of {PROJECTIONS}, got {method!r}")
