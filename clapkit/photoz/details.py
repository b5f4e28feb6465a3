"""``clap/knn.h5``: what the dashboards show of CLAP's adaptive KNN.

For every target galaxy of a prediction: its chosen k, its training neighbours (nearest
first), the local PIT histogram that chose k and its distance to uniform, its latent
vector v_A and the 2-D projection of those vectors, and how well the training set covers
it (its novelty, :func:`~clapkit.photoz.novelty.novelty_percentile`); and the training galaxies'
ids, redshifts and latents. Written once by ``clapkit predict``; the app reads the small
arrays at once and one galaxy's neighbour row on demand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from clapkit.atomic import atomic_path
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import mark_complete, open_checked, write_header

DETAILS_FORMAT = "clapkit.CLAPDetails"
DETAILS_VERSION = 2
#: Read by :func:`read_clap_details`; ``neighbours`` and the latents stay on disk.
_SMALL = ("k", "k_grid", "local_pit_hist", "w1", "projection", "train_z", "novelty")


def write_clap_details(
    path: str | os.PathLike,
    prediction,
    target_ids: np.ndarray,
    projection: np.ndarray,
    overwrite: bool = True,
) -> Path:
    """Write the first realisation of a :class:`~clapkit.photoz.clap.CLAPPrediction`
    with the targets' 2-D ``projection`` (N, 2).

    Parameters
    ----------
    path : path-like
        The HDF5 file to write (the run's CLAP details).
    prediction : CLAPPrediction
        CLAP's prediction of the targets, with its KNN stages.
    target_ids : array, shape (N,)
        The targets' ids.
    projection : array, shape (N, 2)
        The targets' 2-D projection of the latent space.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    n = len(target_ids)
    if projection.shape != (n, 2):
        raise ValidationError(f"projection must have shape ({n}, 2), got {projection.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    knn = prediction.knn
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, DETAILS_FORMAT, DETAILS_VERSION)
        _ids(f, "id", target_ids)
        f.create_dataset("k", data=knn.k)
        f.create_dataset("k_grid", data=knn.k_grid)
        # One row per chunk: the neighbour browser reads a single galaxy's row.
        rows = knn.neighbours
        f.create_dataset(
            "neighbours", data=rows, compression="gzip", chunks=(1, max(1, rows.shape[1]))
        )
        f.create_dataset("local_pit_hist", data=knn.local_pit_hist)
        f.create_dataset("w1", data=knn.w1)
        f.create_dataset("latent", data=prediction.latent)
        f.create_dataset("projection", data=np.asarray(projection, dtype=np.float32))
        f.create_dataset("train_latent", data=prediction.train_latent)
        f.create_dataset("train_z", data=prediction.train_z)
        _ids(f, "train_id", prediction.train_ids)
        f.create_dataset("novelty", data=np.asarray(prediction.novelty, dtype=np.float64))
        mark_complete(f)
    return path


@dataclass(frozen=True)
class CLAPDetails:
    """The small arrays of ``clap/knn.h5`` (see the module docstring), in memory.

    ``ids[i]`` is target galaxy ``i``; its neighbours are rows of ``train_ids`` and
    ``train_z``, read with :meth:`neighbours`.
    """

    path: Path
    ids: np.ndarray
    k: np.ndarray
    k_grid: np.ndarray
    local_pit_hist: np.ndarray
    w1: np.ndarray
    projection: np.ndarray
    train_ids: np.ndarray
    train_z: np.ndarray
    novelty: np.ndarray

    def neighbours(self, row: int, count: int | None = None) -> np.ndarray:
        """Training indices of target ``row``'s nearest neighbours, nearest first
        (its chosen k by default)."""
        if not 0 <= row < self.ids.size:
            raise ValidationError(f"target row {row} is outside 0..{self.ids.size - 1}")
        count = int(self.k[row]) if count is None else count
        with open_checked(self.path, DETAILS_FORMAT, DETAILS_VERSION, "CLAP details") as f:
            return f["neighbours"][row, :count]


def read_clap_details(path: str | os.PathLike) -> CLAPDetails:
    """Read ``clap/knn.h5`` (without the neighbour table and latents).

    Examples
    --------
    >>> read_clap_details("absent/knn.h5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clapkit.errors.FileFormatError: absent/knn.h5: ...
    """
    path = Path(path)
    with open_checked(path, DETAILS_FORMAT, DETAILS_VERSION, "CLAP details") as f:
        missing = [name for name in (*_SMALL, "id", "train_id", "neighbours") if name not in f]
        if missing:
            raise FileFormatError(
                f"{path}: missing datasets {missing}; predict again with this clapkit"
            )
        arrays = {name: f[name][()] for name in _SMALL}
        ids, train_ids = _read_ids(f["id"]), _read_ids(f["train_id"])
    return CLAPDetails(path=path, ids=ids, train_ids=train_ids, **arrays)


def _ids(f: h5py.File, name: str, ids: np.ndarray) -> None:
    ids = np.asarray(ids)
    if ids.dtype.kind in "UO":
        f.create_dataset(name, data=ids.astype(object), dtype=h5py.string_dtype())
    else:
        f.create_dataset(name, data=ids)


def _read_ids(dataset: h5py.Dataset) -> np.ndarray:
    ids = dataset[()]
    if ids.dtype.kind in "SO":
        ids = np.asarray([v.decode() if isinstance(v, bytes) else v for v in ids])
    return ids
