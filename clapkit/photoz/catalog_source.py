"""Row ranges of a galaxy file read on demand: GalaxySet HDF5, FITS or Parquet catalogs.

``clapkit predict --dask`` hands each worker a row range (a partition) of the input and
never loads the whole file anywhere. A :class:`CatalogSource` is the small, picklable
description of the file that travels with each task; :meth:`CatalogSource.read` opens the
file, reads only those rows (the GalaxySet's catalog dataset and image stacks are sliced
in HDF5; a FITS table is memory-mapped; a Parquet file is read by row group) and returns
them as :class:`CatalogRows`, which the prediction functions read as they read a
:class:`~clapkit.data.GalaxySet`.

FITS and Parquet catalogs carry photometry only (no images); their columns are named as
clapkit's own catalogs are: ``id``, ``mag_<band>``, ``magerr_<band>``, and optionally ``z``
and ``split``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.table import Table

from clapkit.data.hdf5 import FORMAT, FORMAT_VERSION, _read_stack
from clapkit.data.stack import ImageStack
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import open_checked

#: File name endings of each kind of input.
SUFFIXES = {
    ".h5": "galaxyset",
    ".hdf5": "galaxyset",
    ".fits": "fits",
    ".fit": "fits",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass
class CatalogRows:
    """Some rows of a catalog (and their images), shaped like a GalaxySet for the
    prediction functions: ``catalog``, ``ids``, ``stacks``.

    Unlike a GalaxySet it accepts a catalog without redshifts (a photometric catalog).
    """

    catalog: Table
    stacks: dict[str, ImageStack]

    @property
    def ids(self) -> np.ndarray:
        """The ``id`` column."""
        return np.asarray(self.catalog["id"])

    @property
    def instruments(self) -> list[str]:
        """Names of the image stacks."""
        return list(self.stacks)

    def __len__(self) -> int:
        return len(self.catalog)


@dataclass(frozen=True)
class CatalogSource:
    """A galaxy file read by row ranges; see :func:`open_source`.

    Attributes
    ----------
    path : str
        The file.
    kind : {"galaxyset", "fits", "parquet"}
        Its format.
    n_rows : int
        Rows of its catalog.
    columns : tuple of str
        Its catalog columns.
    instruments : tuple of str
        Its image stacks (GalaxySet files only).
    """

    path: str
    kind: str
    n_rows: int
    columns: tuple[str, ...]
    instruments: tuple[str, ...] = ()

    def read(self, start: int, stop: int, split: str | None = None) -> CatalogRows:
        """Rows ``start`` to ``stop`` (those whose ``split`` column equals ``split``, when
        given and the catalog has one), images included."""
        if self.kind == "galaxyset":
            rows = self._read_galaxyset(start, stop)
        elif self.kind == "fits":
            rows = CatalogRows(_read_fits(self.path, start, stop), {})
        else:
            rows = CatalogRows(_read_parquet(self.path, start, stop), {})
        if split is None or "split" not in self.columns:
            return rows
        keep = np.flatnonzero(np.asarray(rows.catalog["split"]).astype(str) == split)
        return CatalogRows(
            rows.catalog[keep], {name: s.take(keep) for name, s in rows.stacks.items()}
        )

    def split_labels(self, start: int, stop: int) -> np.ndarray:
        """The ``split`` column of rows ``start`` to ``stop``, as str."""
        if self.kind == "galaxyset":
            with h5py.File(self.path, "r") as f:
                labels = f["catalog"].fields("split")[start:stop]
        elif self.kind == "fits":
            labels = _read_fits(self.path, start, stop, ["split"])["split"]
        else:
            labels = _read_parquet(self.path, start, stop, ["split"])["split"]
        return _as_str(np.asarray(labels))

    def partitions(self, size: int, split: str | None) -> Iterator[tuple[int, int, int]]:
        """``(start, stop, n_selected)`` of consecutive row ranges of ``size`` rows that
        hold at least one row of ``split`` (every row when ``split`` is None or the
        catalog has no split column)."""
        for start in range(0, self.n_rows, size):
            stop = min(start + size, self.n_rows)
            if split is None or "split" not in self.columns:
                yield start, stop, stop - start
                continue
            count = int(np.count_nonzero(self.split_labels(start, stop) == split))
            if count:
                yield start, stop, count

    def id_dtype(self) -> np.dtype:
        """The dtype of the ``id`` column (native byte order; str ids as ``object``)."""
        ids = self.read(0, min(1, self.n_rows)).ids
        if ids.dtype.kind in "USO":
            return np.dtype(object)
        return ids.dtype.newbyteorder("=")

    def _read_galaxyset(self, start: int, stop: int) -> CatalogRows:
        path = Path(self.path)
        with h5py.File(path, "r") as f:
            catalog = _structured_table(f["catalog"][start:stop])
            stacks = {
                name: _read_stack(f["images"], name, path, lazy=True).take(slice(start, stop))
                for name in self.instruments
            }
        return CatalogRows(catalog, stacks)


def open_source(path: str | os.PathLike) -> CatalogSource:
    """Describe the galaxy file ``path`` (a GalaxySet, FITS or Parquet file, by its name's
    ending) without reading its rows.

    Examples
    --------
    >>> open_source("galaxies.csv")
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: galaxies.csv: --dask reads a GalaxySet (.h5, .hdf5), \
a FITS (.fits, .fit) or a Parquet (.parquet, .pq) file
    """
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise ValidationError(
            f"{path}: --dask reads a GalaxySet (.h5, .hdf5), a FITS (.fits, .fit) or a "
            "Parquet (.parquet, .pq) file"
        )
    if not path.is_file():
        raise FileFormatError(f"{path}: data file not found")
    if kind == "galaxyset":
        with open_checked(path, FORMAT, FORMAT_VERSION, "a GalaxySet") as f:
            if "catalog" not in f or f["catalog"].dtype.names is None:
                raise FileFormatError(f"{path}: has no catalog table")
            columns = tuple(f["catalog"].dtype.names)
            n_rows = int(f["catalog"].shape[0])
            names = f["images"].attrs.get("instruments", []) if "images" in f else []
            instruments = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        source = CatalogSource(str(path), kind, n_rows, columns, instruments)
    elif kind == "fits":
        source = CatalogSource(str(path), kind, *_fits_shape(path))
    else:
        source = CatalogSource(str(path), kind, *_parquet_shape(path))
    if "id" not in source.columns:
        raise ValidationError(
            f"{path}: the catalog has no 'id' column; it has {list(source.columns)}"
        )
    return source


def _as_str(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "S":
        return np.char.decode(values, "utf-8")
    if values.dtype.kind == "O":
        return values.astype(str)
    return values


def _structured_table(rows: np.ndarray) -> Table:
    # Text is stored as bytes in HDF5 and FITS; the rest of clapkit reads str.
    return Table({name: _as_str(np.asarray(rows[name])) for name in rows.dtype.names})


def _table_hdu(hdul: Any, path: Path) -> Any:
    from astropy.io import fits

    for hdu in hdul:
        if isinstance(hdu, fits.BinTableHDU | fits.TableHDU):
            return hdu
    raise FileFormatError(f"{path}: holds no FITS table")


def _fits_shape(path: Path) -> tuple[int, tuple[str, ...]]:
    from astropy.io import fits

    try:
        with fits.open(path, memmap=True) as hdul:
            hdu = _table_hdu(hdul, path)
            return int(hdu.header["NAXIS2"]), tuple(hdu.columns.names)
    except OSError as err:
        raise FileFormatError(f"{path}: not a readable FITS file ({err})") from err


def _read_fits(path: str, start: int, stop: int, columns: list[str] | None = None) -> Table:
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        data = _table_hdu(hdul, Path(path)).data
        names = columns or list(data.columns.names)
        # Copied out of the memory map before it closes.
        return Table({n: _as_str(np.array(data[n][start:stop])) for n in names})


def _parquet_file(path: str | Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - pyarrow comes with the dask extra
        raise ValidationError("reading Parquet needs pyarrow (pip install pyarrow)") from err
    try:
        return pq.ParquetFile(path)
    except Exception as err:  # pyarrow raises its own error types
        raise FileFormatError(f"{path}: not a readable Parquet file ({err})") from err


def _parquet_shape(path: Path) -> tuple[int, tuple[str, ...]]:
    file = _parquet_file(path)
    return int(file.metadata.num_rows), tuple(file.schema_arrow.names)


def _read_parquet(path: str, start: int, stop: int, columns: list[str] | None = None) -> Table:
    file = _parquet_file(path)
    groups, first, offset = [], None, 0
    for g in range(file.num_row_groups):
        rows = file.metadata.row_group(g).num_rows
        if offset < stop and offset + rows > start:
            groups.append(g)
            first = offset if first is None else first
        offset += rows
    if not groups:
        names = columns or list(file.schema_arrow.names)
        return Table({n: np.empty(0) for n in names})
    table = file.read_row_groups(groups, columns=columns)
    table = table.slice(start - first, stop - start)
    return Table(
        {n: _as_str(table.column(n).to_numpy(zero_copy_only=False)) for n in table.column_names}
    )
