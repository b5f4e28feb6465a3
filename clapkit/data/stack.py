"""ImageStack: the multi-band cutouts of one instrument, with what is needed to read them.

An :class:`ImageStack` is a plain container. It is checked (and, where needed, converted)
by :func:`clapkit.data.validation.validate_stack`, which every
:class:`~clapkit.data.GalaxySet` runs on the stacks it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import h5py
import numpy as np

__all__ = ["ImageStack", "read_rows"]


@dataclass(eq=False)
class ImageStack:
    """Images of N galaxies in several bands from one instrument.

    Parameters
    ----------
    images : numpy.ndarray or h5py.Dataset
        ``float32`` pixels, shape ``(N, bands, H, W)``. A lazily loaded
        :class:`~clapkit.data.GalaxySet` keeps an ``h5py.Dataset`` here and reads only
        the galaxies asked for.
    bands : tuple of str
        Band names, one per image plane, e.g. ``("u", "g", "r", "i", "z")``.
    pixel_scale : float
        Arcseconds per pixel, finite and positive.
    zero_points : tuple of float
        AB zero point per band: ``m = zp - 2.5 log10(sum of pixel values)``.
    units : str
        Pixel units, e.g. ``"nanomaggy"`` or ``"counts"``.
    mask : numpy.ndarray or h5py.Dataset or None
        Boolean, same shape as ``images``; True where a non-finite pixel was replaced
        by 0 (``nonfinite="mask"``). None when no pixel was replaced.
    n_masked : int
        Number of True pixels in ``mask``.

    Examples
    --------
    >>> import numpy as np
    >>> stack = ImageStack(np.zeros((3, 2, 8, 8), np.float32), ("g", "r"), 0.396, (22.5, 22.5))
    >>> stack.n_bands, stack.shape
    (2, (3, 2, 8, 8))
    """

    images: np.ndarray | h5py.Dataset
    bands: tuple[str, ...]
    pixel_scale: float
    zero_points: tuple[float, ...]
    units: str = "counts"
    mask: np.ndarray | h5py.Dataset | None = None
    n_masked: int = 0

    def __post_init__(self) -> None:
        # A string is a sequence too; tuple("ugriz") would quietly become five bands,
        # so leave strings alone and let validation reject them with a clear message.
        if not isinstance(self.bands, str):
            self.bands = tuple(self.bands)
        if not isinstance(self.zero_points, str):
            self.zero_points = tuple(self.zero_points)

    @property
    def n_bands(self) -> int:
        """Number of bands (the second axis of ``images``).

        Examples
        --------
        >>> import numpy as np
        >>> ImageStack(np.zeros((1, 3, 4, 4), np.float32), ("g", "r", "i"), 0.2, (0, 0, 0)).n_bands
        3
        """
        return int(self.images.shape[1])

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of ``images``, ``(N, bands, H, W)``.

        Examples
        --------
        >>> import numpy as np
        >>> ImageStack(np.zeros((5, 1, 4, 6), np.float32), ("r",), 0.2, (25.0,)).shape
        (5, 1, 4, 6)
        """
        return tuple(int(s) for s in self.images.shape)

    @property
    def n_galaxies(self) -> int:
        """Number of galaxies (the first axis of ``images``).

        Examples
        --------
        >>> import numpy as np
        >>> ImageStack(np.zeros((5, 1, 4, 4), np.float32), ("r",), 0.2, (25.0,)).n_galaxies
        5
        """
        return int(self.images.shape[0])

    @property
    def is_lazy(self) -> bool:
        """True when the pixels stay in an HDF5 file until they are indexed.

        Examples
        --------
        >>> import numpy as np
        >>> ImageStack(np.zeros((1, 1, 2, 2), np.float32), ("r",), 0.2, (25.0,)).is_lazy
        False
        """
        return isinstance(self.images, h5py.Dataset)

    def take(self, index: slice | np.ndarray) -> ImageStack:
        """Return an in-memory stack holding the galaxies at ``index``, in that order.

        Parameters
        ----------
        index : slice or numpy.ndarray
            A slice with a positive step, or a 1-D array of non-negative row numbers.

        Examples
        --------
        >>> import numpy as np
        >>> images = np.arange(4, dtype=np.float32).reshape(4, 1, 1, 1)
        >>> stack = ImageStack(images, ("r",), 0.2, (25.0,))
        >>> stack.take(np.array([3, 0])).images.ravel()
        array([3., 0.], dtype=float32)
        """
        mask = None if self.mask is None else read_rows(self.mask, index)
        n_masked = 0 if mask is None else int(np.count_nonzero(mask))
        if mask is not None and n_masked == 0:
            mask = None
        return replace(self, images=read_rows(self.images, index), mask=mask, n_masked=n_masked)


def read_rows(source: np.ndarray | h5py.Dataset, index: slice | np.ndarray) -> np.ndarray:
    """Read the rows ``index`` of an array or HDF5 dataset into memory, in that order.

    From HDF5 only the requested rows are read: sorted and unique, one slice per
    contiguous run, then put back in the requested order. HDF5 point selections
    (``dataset[[2, 5, 9]]``) are avoided because their cost grows steeply with the
    number of indices; a slice per run is ten or more times faster.

    Parameters
    ----------
    source : numpy.ndarray or h5py.Dataset
        Anything indexed along its first axis.
    index : slice or numpy.ndarray
        A slice with a positive step, or a 1-D array of non-negative row numbers
        (repeats allowed).

    Returns
    -------
    numpy.ndarray
        A new array (never a view of ``source``).

    Examples
    --------
    >>> import numpy as np
    >>> read_rows(np.arange(5) * 10, np.array([4, 1, 1]))
    array([40, 10, 10])
    """
    if isinstance(index, slice):
        return np.array(source[index])
    index = np.asarray(index, dtype=np.intp)
    if isinstance(source, np.ndarray):
        return source[index]
    unique, inverse = np.unique(index, return_inverse=True)
    out = np.empty((unique.size, *source.shape[1:]), dtype=source.dtype)
    breaks = np.flatnonzero(np.diff(unique) != 1) + 1
    starts = np.concatenate([[0], breaks]).astype(np.intp)
    stops = np.concatenate([breaks, [unique.size]]).astype(np.intp)
    for start, stop in zip(starts, stops, strict=True):
        if start == stop:  # only when index is empty
            continue
        rows = slice(int(unique[start]), int(unique[stop - 1]) + 1)
        if isinstance(source, h5py.Dataset):
            # Straight into the output buffer, without an intermediate array.
            source.read_direct(out, source_sel=rows, dest_sel=slice(int(start), int(stop)))
        else:
            out[start:stop] = source[rows]
    if unique.size == index.size and np.array_equal(unique, index):
        return out
    return out[inverse.reshape(-1)]
