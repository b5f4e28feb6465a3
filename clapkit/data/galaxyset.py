"""GalaxySet: one catalog of galaxies and their image stacks, checked on the way in.

A GalaxySet is what every stage of clapkit reads: the simulator writes one, training and
prediction read subsets and batches of one. Indexing always returns a new in-memory set;
a lazily loaded set reads only the galaxies asked for from its HDF5 file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from numbers import Integral
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.table import Column, Table

from clapkit.checks import check_int
from clapkit.data.hdf5 import read_galaxyset, write_galaxyset
from clapkit.data.splits import DEFAULT_FRACTIONS, assign_splits
from clapkit.data.stack import ImageStack
from clapkit.data.validation import (
    validate_catalog,
    validate_meta,
    validate_stack,
)
from clapkit.errors import ClapkitError, FileFormatError, OverwriteError, ValidationError

__all__ = ["GalaxySet"]

Index = int | slice | np.ndarray | list


class GalaxySet:
    """A catalog of galaxies with zero or more image stacks, one per instrument.

    Parameters
    ----------
    catalog : astropy.table.Table
        One row per galaxy; needs ``id`` (unique int or str) and ``z`` (finite, >= 0).
        The table is kept, not copied.
    stacks : dict of str to ImageStack, optional
        Image stacks keyed by instrument name (a simple identifier), each with one image
        per catalog row in catalog order.
    meta : dict, optional
        JSON-serialisable metadata (provenance, simulation config, ...).
    nonfinite : {"raise", "mask"}
        What to do with NaN/inf pixels; see :func:`~clapkit.data.validation.validate_stack`.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.table import Table
    >>> catalog = Table({"id": [10, 11, 12], "z": [0.05, 0.1, 0.2]})
    >>> stack = ImageStack(np.zeros((3, 2, 8, 8), np.float32), ("g", "r"), 0.396, (22.5, 22.5))
    >>> gs = GalaxySet(catalog, {"sdss": stack}, meta={"source": "example"})
    >>> len(gs), gs.instruments
    (3, ['sdss'])
    >>> gs[[2, 0]].ids.tolist()
    [12, 10]
    """

    def __init__(
        self,
        catalog: Table,
        stacks: Mapping[str, ImageStack] | None = None,
        meta: Mapping[str, Any] | None = None,
        *,
        nonfinite: str = "raise",
    ) -> None:
        self._setup(catalog, stacks, meta, nonfinite=nonfinite, scan_pixels=True, file=None)

    def _setup(
        self,
        catalog: Table,
        stacks: Mapping[str, ImageStack] | None,
        meta: Mapping[str, Any] | None,
        *,
        nonfinite: str,
        scan_pixels: bool,
        file: h5py.File | None,
    ) -> None:
        validate_catalog(catalog)
        stacks = {} if stacks is None else stacks
        if not isinstance(stacks, Mapping):
            raise ValidationError(
                "stacks must be a dict of instrument name -> ImageStack, "
                f"got {type(stacks).__name__}"
            )
        ids = np.asarray(catalog["id"])
        self._catalog = catalog
        self._stacks = {
            name: validate_stack(
                stack,
                name,
                n_galaxies=len(catalog),
                nonfinite=nonfinite,
                ids=ids,
                scan_pixels=scan_pixels,
            )
            for name, stack in stacks.items()
        }
        self._meta = validate_meta(meta)
        self._file = file

    @classmethod
    def _trusted(
        cls,
        catalog: Table,
        stacks: dict[str, ImageStack],
        meta: dict[str, Any],
        file: h5py.File | None = None,
    ) -> GalaxySet:
        """Build from parts of an already validated set, skipping the pixel scan."""
        gs = cls.__new__(cls)
        gs._setup(catalog, stacks, meta, nonfinite="raise", scan_pixels=False, file=file)
        return gs

    # -- basic access ------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._catalog)

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("lazy" if self.is_lazy else "in memory")
        stacks = ", ".join(f"{name}: {st.shape}" for name, st in self._stacks.items())
        return f"<GalaxySet: {len(self)} galaxies, stacks {{{stacks}}}, {state}>"

    @property
    def catalog(self) -> Table:
        """The catalog table (the object itself, not a copy)."""
        return self._catalog

    @property
    def stacks(self) -> dict[str, ImageStack]:
        """Image stacks by instrument name."""
        return self._stacks

    @property
    def instruments(self) -> list[str]:
        """Instrument names, in insertion order."""
        return list(self._stacks)

    @property
    def meta(self) -> dict[str, Any]:
        """JSON-serialisable metadata of the set."""
        return self._meta

    @property
    def ids(self) -> np.ndarray:
        """The ``id`` column as a numpy array."""
        return np.asarray(self._catalog["id"])

    @property
    def is_lazy(self) -> bool:
        """True when the set reads its images from an open HDF5 file."""
        return self._file is not None

    @property
    def closed(self) -> bool:
        """True once the HDF5 file of a lazily loaded set has been closed."""
        return self._file is not None and not self._file.id.valid

    def _check_open(self) -> None:
        if self.closed:
            raise ClapkitError(
                "this GalaxySet was closed; its images lived in the HDF5 file. Load it again "
                "(or index it before closing to keep an in-memory copy)"
            )

    # -- subsets -----------------------------------------------------------------------

    def __getitem__(self, index: Index) -> GalaxySet:
        """Return a new in-memory GalaxySet with the rows ``index``, in that order.

        ``index`` may be an int, a slice, an array of integers (no repeats: ids must stay
        unique) or a boolean mask of length ``len(self)``.

        Examples
        --------
        >>> from astropy.table import Table
        >>> gs = GalaxySet(Table({"id": ["a", "b", "c"], "z": [0.1, 0.2, 0.3]}))
        >>> gs[1:].ids.tolist(), gs[-1].ids.tolist()
        (['b', 'c'], ['c'])
        >>> gs[[0, 0]]  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        clapkit.errors.ValidationError: index repeats row 0 (2 times); ...
        """
        self._check_open()
        rows = _normalize_index(index, len(self))
        catalog = self._catalog[rows]
        if isinstance(rows, slice):
            # Table slices are views; a subset must not share data with its parent.
            catalog = catalog.copy()
        stacks = {name: stack.take(rows) for name, stack in self._stacks.items()}
        return GalaxySet._trusted(catalog, stacks, self._meta)

    def batches(self, size: int, *, split: str | None = None) -> Iterator[GalaxySet]:
        """Yield in-memory subsets of at most ``size`` galaxies, in catalog order.

        Parameters
        ----------
        size : int
            Largest batch, > 0.
        split : str, optional
            Only the rows whose ``split`` column equals this name.

        Examples
        --------
        >>> from astropy.table import Table
        >>> gs = GalaxySet(Table({"id": [1, 2, 3, 4, 5], "z": [0.1] * 5}))
        >>> [b.ids.tolist() for b in gs.batches(2)]
        [[1, 2], [3, 4], [5]]
        """
        check_int(size, "batch size")
        self._check_open()
        rows = None if split is None else self._split_rows(split)
        return self._iter_batches(int(size), rows)

    def _iter_batches(self, size: int, rows: np.ndarray | None) -> Iterator[GalaxySet]:
        if rows is None:
            for start in range(0, len(self), size):
                yield self[start : start + size]
        else:
            for start in range(0, rows.size, size):
                yield self[rows[start : start + size]]

    def _split_rows(self, name: str) -> np.ndarray:
        if "split" not in self._catalog.colnames:
            raise ValidationError(
                "catalog has no 'split' column; call with_splits(...) to assign one"
            )
        labels = np.asarray(self._catalog["split"]).astype(str)
        rows = np.flatnonzero(labels == name)
        if rows.size == 0:
            available = ", ".join(repr(s) for s in sorted(set(labels.tolist())))
            raise ValidationError(
                f"no split named {name!r}; available splits: {available or 'none'}"
            )
        return rows

    def split(self, name: str) -> GalaxySet:
        """Return the galaxies whose ``split`` column equals ``name``.

        Examples
        --------
        >>> from astropy.table import Table
        >>> gs = GalaxySet(Table({"id": [1, 2, 3], "z": [0.1] * 3, "split": ["a", "b", "a"]}))
        >>> gs.split("a").ids.tolist()
        [1, 3]
        >>> gs.split("c")
        Traceback (most recent call last):
        ...
        clapkit.errors.ValidationError: no split named 'c'; available splits: 'a', 'b'
        """
        self._check_open()
        return self[self._split_rows(name)]

    def with_splits(
        self,
        fractions: Mapping[str, float] | None = None,
        seed: int = 0,
        overwrite: bool = False,
    ) -> GalaxySet:
        """Return a new set whose catalog has a ``split`` column (see :func:`assign_splits`).

        The image stacks are shared with this set (for a lazy set, so is the open file).
        The fractions and seed are recorded in ``catalog.meta["split"]`` and
        ``meta["split"]``.

        Parameters
        ----------
        fractions : dict of str to float, optional
            Split name -> fraction; default ``{"train": 0.7, "valid": 0.15, "test": 0.15}``.
        seed : int
            Seed of the assignment.
        overwrite : bool
            Replace an existing ``split`` column; otherwise an existing one is an error.

        Examples
        --------
        >>> from astropy.table import Table
        >>> gs = GalaxySet(Table({"id": range(20), "z": [0.1] * 20})).with_splits(seed=1)
        >>> [len(gs.split(name)) for name in ("train", "valid", "test")]
        [14, 3, 3]
        >>> gs.meta["split"]["seed"]
        1
        """
        self._check_open()
        if "split" in self._catalog.colnames and not overwrite:
            raise OverwriteError(
                "catalog already has a 'split' column; pass overwrite=True to replace it"
            )
        fractions = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
        labels = assign_splits(self.ids, fractions, seed)
        record = {"seed": int(seed), "fractions": {k: float(v) for k, v in fractions.items()}}
        catalog = self._catalog.copy()
        column = Column(
            labels,
            name="split",
            description=f"data split, assigned by clapkit.data.assign_splits(seed={int(seed)})",
        )
        if "split" in catalog.colnames:
            catalog.replace_column("split", column)
        else:
            catalog.add_column(column)
        catalog.meta["split"] = record
        meta = {**self._meta, "split": record}
        return GalaxySet._trusted(catalog, self._stacks, meta, file=self._file)

    # -- validation and I/O ------------------------------------------------------------

    def validate(self) -> None:
        """Re-run every check (catalog, stacks, pixel scan, meta); raise on the first problem.

        Examples
        --------
        >>> from astropy.table import Table
        >>> gs = GalaxySet(Table({"id": [1, 2], "z": [0.1, 0.2]}))
        >>> gs.catalog["z"][1] = -1.0
        >>> gs.validate()
        Traceback (most recent call last):
        ...
        clapkit.errors.ValidationError: catalog column 'z' must be >= 0; negative at row 1 (-1.0)
        """
        self._check_open()
        validate_catalog(self._catalog)
        ids = self.ids
        for name, stack in self._stacks.items():
            validate_stack(stack, name, n_galaxies=len(self), nonfinite="raise", ids=ids)
        validate_meta(self._meta)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Validate, then write the set to an HDF5 file atomically.

        Works for lazily loaded sets too: images are copied in batches.

        Parameters
        ----------
        path : path-like
            Destination file (conventionally ``.h5``).
        overwrite : bool
            Replace an existing file; otherwise an existing ``path`` raises
            :class:`~clapkit.errors.OverwriteError` and is left untouched.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from astropy.table import Table
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "set.h5"
        >>> _ = GalaxySet(Table({"id": [1, 2], "z": [0.1, 0.2]})).save(path)
        >>> with GalaxySet.load(path) as gs:
        ...     print(len(gs))
        2
        """
        self.validate()
        return write_galaxyset(path, self._catalog, self._stacks, self._meta, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, lazy: bool = True) -> GalaxySet:
        """Read a set written by :meth:`save`.

        Parameters
        ----------
        path : path-like
            The file.
        lazy : bool
            Keep the file open and read images only when indexed (the catalog is read
            now). Close it with :meth:`close` or a ``with`` block. With ``lazy=False``
            everything is read into memory, pixels are re-scanned, and the file is closed.

        Raises
        ------
        FileFormatError
            If the file is missing, not HDF5, truncated, not written by clapkit, an
            incomplete write, from a newer clapkit, or has inconsistent contents.

        Examples
        --------
        >>> GalaxySet.load("/nonexistent/set.h5")
        Traceback (most recent call last):
        ...
        clapkit.errors.FileFormatError: /nonexistent/set.h5: no such file
        """
        catalog, stacks, meta, file = read_galaxyset(path, lazy=lazy)
        gs = cls.__new__(cls)
        try:
            # Lazy: the writer validated every pixel, and a lazy load must not read them all.
            gs._setup(catalog, stacks, meta, nonfinite="raise", scan_pixels=not lazy, file=file)
        except ValidationError as err:
            if file is not None:
                file.close()
            raise FileFormatError(f"{path}: contents fail validation: {err}") from err
        return gs

    def close(self) -> None:
        """Close the HDF5 file of a lazily loaded set (no-op for in-memory sets).

        Examples
        --------
        >>> from astropy.table import Table
        >>> GalaxySet(Table({"id": [1], "z": [0.1]})).close()
        """
        if self._file is not None and self._file.id.valid:
            self._file.close()

    def __enter__(self) -> GalaxySet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _normalize_index(index: Index, n: int) -> slice | np.ndarray:
    """Turn a user index into a step-1 slice or an array of unique non-negative rows."""
    if isinstance(index, Integral) and not isinstance(index, bool | np.bool_):
        row = int(index)
        if not -n <= row < n:
            raise IndexError(f"galaxy index {row} out of range for a GalaxySet of {n} galaxies")
        row %= n
        return slice(row, row + 1)
    if isinstance(index, slice):
        start, stop, step = index.indices(n)
        if step == 1:
            return slice(start, max(start, stop))
        return np.arange(start, stop, step)
    if isinstance(index, str | bytes | float) or index is None:
        raise TypeError(f"cannot index a GalaxySet with {index!r}")
    rows = np.asarray(index)
    if rows.ndim != 1:
        raise ValidationError(f"index must be 1-D, got shape {rows.shape}")
    if rows.dtype == np.bool_:
        if rows.size != n:
            raise ValidationError(f"boolean index has length {rows.size}; the set has {n} galaxies")
        return np.flatnonzero(rows)
    if rows.size == 0:
        return np.empty(0, dtype=np.intp)
    if rows.dtype.kind not in "iu":
        raise TypeError(f"index arrays must hold integers or booleans, got dtype {rows.dtype}")
    bad = rows[(rows < -n) | (rows >= n)]
    if bad.size:
        raise IndexError(
            f"galaxy indices {bad[:5].tolist()} out of range for a GalaxySet of {n} galaxies"
        )
    rows = rows.astype(np.intp) % max(n, 1)
    unique, counts = np.unique(rows, return_counts=True)
    if unique.size != rows.size:
        k = int(np.argmax(counts > 1))
        raise ValidationError(
            f"index repeats row {unique[k]} ({counts[k]} times); a GalaxySet cannot hold the "
            "same galaxy twice (ids must be unique)"
        )
    return rows
