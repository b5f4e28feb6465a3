"""The GalaxySet file format: one HDF5 file, chunked per galaxy.

Layout (format_version 1)::

    /                       attrs: format="clapkit.GalaxySet", format_version=1,
                            clapkit_version, meta (JSON), n_galaxies, complete=True
    /catalog                astropy table (write_table_hdf5, serialize_meta=True),
                            so units, descriptions and table meta survive
    /images                 attrs: instruments (names, in order)
    /images/<instrument>    float32 (N, bands, H, W), chunks (1, bands, H, W);
                            attrs bands, pixel_scale, zero_points, units, n_masked
    /images/<instrument>_mask   optional bool, same shape, gzip

``complete`` is written last, and the file is written under a temporary name and renamed
(:func:`clapkit.atomic.atomic_path`), so a reader never mistakes a half-written file for a
finished one. The functions here move parts (catalog, stacks, meta) in and out; the
:class:`~clapkit.data.GalaxySet` methods ``save`` and ``load`` wrap them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from astropy.io.misc.hdf5 import read_table_hdf5, write_table_hdf5
from astropy.table import Table

from clapkit.atomic import atomic_path
from clapkit.data.stack import ImageStack, read_rows
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import attr, mark_complete, open_checked, write_header

__all__ = ["FORMAT", "FORMAT_VERSION", "GalaxySetWriter", "read_galaxyset", "write_galaxyset"]

FORMAT = "clapkit.GalaxySet"
FORMAT_VERSION = 1

# Copy at most this many bytes per step, so saving a lazily loaded set of any size keeps
# memory flat.
_COPY_BYTES = 64 * 1024**2


def write_galaxyset(
    path: str | os.PathLike,
    catalog: Table,
    stacks: Mapping[str, ImageStack],
    meta: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write validated parts of a GalaxySet to ``path``, atomically.

    Callers validate first (``GalaxySet.save`` does). Images are copied in batches of
    galaxies, so the stacks may be lazy ``h5py.Dataset`` objects of another file.

    Parameters
    ----------
    path : path-like
        Destination ``.h5`` file.
    catalog : astropy.table.Table
        The catalog (with ``id`` and ``z``).
    stacks : dict of str to ImageStack
        Image stacks by instrument name.
    meta : dict
        JSON-serialisable metadata.
    overwrite : bool
        Replace an existing file; otherwise :class:`~clapkit.errors.OverwriteError`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astropy.table import Table
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cat.h5"
    >>> _ = write_galaxyset(path, Table({"id": [1], "z": [0.1]}), {}, {"note": "x"})
    >>> read_galaxyset(path, lazy=False)[2]
    {'note': 'x'}
    """
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, FORMAT, FORMAT_VERSION)
        f.attrs["meta"] = json.dumps(dict(meta))
        f.attrs["n_galaxies"] = len(catalog)
        try:
            write_table_hdf5(catalog, f, path="catalog", serialize_meta=True)
        except Exception as err:
            # Object columns and meta that YAML cannot represent end up here.
            raise ValidationError(
                f"catalog cannot be stored in HDF5 ({type(err).__name__}: {err}); columns must "
                "be numbers, strings or booleans and catalog.meta plain Python values"
            ) from err
        group = f.create_group("images")
        # HDF5 lists members alphabetically; keep the caller's instrument order.
        group.attrs["instruments"] = list(stacks)
        for name, stack in stacks.items():
            _write_stack(group, name, stack)
        mark_complete(f)
    return Path(path)


def _create_stack_dataset(
    group: h5py.Group, name: str, stack: ImageStack, n_rows: int
) -> h5py.Dataset:
    """An empty image dataset of ``n_rows`` galaxies carrying the stack's metadata."""
    shape = (n_rows, *stack.shape[1:])
    # HDF5 refuses chunks larger than a dataset dimension; an empty stack is not chunked.
    chunks = (1, *shape[1:]) if all(shape) else None
    images = group.create_dataset(name, shape=shape, dtype=np.float32, chunks=chunks)
    images.attrs["bands"] = list(stack.bands)
    images.attrs["pixel_scale"] = float(stack.pixel_scale)
    images.attrs["zero_points"] = np.asarray(stack.zero_points, dtype=np.float64)
    images.attrs["units"] = stack.units
    images.attrs["n_masked"] = int(stack.n_masked)
    return images


def _write_stack(group: h5py.Group, name: str, stack: ImageStack) -> None:
    shape = stack.shape
    chunks = (1, *shape[1:]) if all(shape) else None
    images = _create_stack_dataset(group, name, stack, shape[0])
    _copy_rows(stack.images, images)
    if stack.mask is not None:
        mask = group.create_dataset(
            f"{name}_mask", shape=shape, dtype=bool, chunks=chunks, compression="gzip"
        )
        _copy_rows(stack.mask, mask)


def _copy_rows(source: np.ndarray | h5py.Dataset, target: h5py.Dataset) -> None:
    per_galaxy = max(1, int(np.prod(target.shape[1:], dtype=np.int64)) * target.dtype.itemsize)
    step = max(1, _COPY_BYTES // per_galaxy)
    for start in range(0, target.shape[0], step):
        target[start : start + step] = read_rows(source, slice(start, start + step))


def read_galaxyset(
    path: str | os.PathLike, lazy: bool = True
) -> tuple[Table, dict[str, ImageStack], dict[str, Any], h5py.File | None]:
    """Read the parts of a GalaxySet file.

    Parameters
    ----------
    path : path-like
        A file written by :func:`write_galaxyset`.
    lazy : bool
        Keep the file open and the stacks as ``h5py.Dataset`` objects (the catalog is
        always read eagerly); otherwise read everything and close the file.

    Returns
    -------
    catalog, stacks, meta, file
        ``file`` is the open ``h5py.File`` when ``lazy`` and None otherwise; the caller
        owns it and must close it.

    Raises
    ------
    FileFormatError
        Naming the path and the problem: missing, not HDF5, truncated, not written by
        clapkit, incomplete write, newer format version, or damaged contents.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "notes.h5"
    >>> _ = bad.write_text("not hdf5")
    >>> read_galaxyset(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clapkit.errors.FileFormatError: .../notes.h5: not an HDF5 file ...
    """
    path = Path(path)
    f = open_checked(path, FORMAT, FORMAT_VERSION, "a GalaxySet")
    try:
        catalog, stacks, meta = _read_contents(f, path, lazy)
    except BaseException:
        f.close()
        raise
    if not lazy:
        f.close()
        return catalog, stacks, meta, None
    return catalog, stacks, meta, f


def _read_contents(
    f: h5py.File, path: Path, lazy: bool
) -> tuple[Table, dict[str, ImageStack], dict[str, Any]]:
    try:
        meta = json.loads(attr(f, "meta") or "{}")
        catalog = read_table_hdf5(f, path="catalog", character_as_bytes=False)
    except Exception as err:
        raise FileFormatError(f"{path}: catalog or meta cannot be read ({err})") from err
    n_galaxies = attr(f, "n_galaxies")
    if n_galaxies is not None and int(n_galaxies) != len(catalog):
        raise FileFormatError(
            f"{path}: header says {int(n_galaxies)} galaxies but the catalog has "
            f"{len(catalog)} rows"
        )
    group = f.get("images")
    if group is None:
        raise FileFormatError(f"{path}: has no /images group")
    names = group.attrs.get("instruments")
    if names is None:
        names = [name for name in group if not name.endswith("_mask")]
    stacks = {}
    for name in names:
        name = name.decode() if isinstance(name, bytes) else str(name)
        if name not in group:
            raise FileFormatError(
                f"{path}: instrument {name!r} is listed but /images/{name} is missing"
            )
        stacks[name] = _read_stack(group, name, path, lazy)
    return catalog, stacks, meta


def _read_stack(group: h5py.Group, name: str, path: Path, lazy: bool) -> ImageStack:
    dataset = group[name]
    try:
        attrs = dataset.attrs
        bands = tuple(b.decode() if isinstance(b, bytes) else str(b) for b in attrs["bands"])
        pixel_scale = float(attrs["pixel_scale"])
        zero_points = tuple(float(zp) for zp in np.atleast_1d(attrs["zero_points"]))
        units = attrs["units"]
        units = units.decode() if isinstance(units, bytes) else str(units)
        n_masked = int(attrs.get("n_masked", 0))
    except KeyError as err:
        raise FileFormatError(f"{path}: /images/{name} lacks attribute {err}") from err
    mask = group.get(f"{name}_mask")
    if lazy:
        images = dataset
    else:
        try:
            images = dataset[()]
            mask = None if mask is None else mask[()]
        except OSError as err:
            raise FileFormatError(f"{path}: /images/{name} cannot be read ({err})") from err
    return ImageStack(images, bands, pixel_scale, zero_points, units, mask, n_masked)


class GalaxySetWriter:
    """Write a GalaxySet file row block by row block, for sets larger than memory.

    The image datasets are created up front with their final size; blocks of galaxies
    are written as they are produced (in any order); :meth:`finish` adds the catalog and
    the ``complete`` flag. The file lives under a temporary name until ``finish`` and is
    removed if the writer is left without finishing, so an interrupted job never leaves
    a file that loads as complete.

    Parameters
    ----------
    path : path-like
        Destination.
    n_galaxies : int
        Number of rows the finished set will have.
    stacks : dict of str to ImageStack
        One template stack per instrument: its metadata and the shape of one galaxy
        (``images`` may hold just one galaxy, e.g. the first block).
    overwrite : bool
        Replace an existing file at ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from astropy.table import Table
    >>> template = ImageStack(np.zeros((1, 1, 4, 4), np.float32), ("r",), 0.4, (22.5,), "nanomaggy")
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "big.h5"
    >>> with GalaxySetWriter(path, 2, {"cam": template}) as writer:
    ...     writer.write_rows(0, {"cam": np.ones((2, 1, 4, 4), np.float32)})
    ...     writer.finish(Table({"id": [1, 2], "z": [0.1, 0.2]}), {})
    >>> read_galaxyset(path, lazy=False)[1]["cam"].images.sum()
    np.float32(32.0)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        n_galaxies: int,
        stacks: Mapping[str, ImageStack],
        overwrite: bool = False,
    ) -> None:
        self._atomic = atomic_path(path, overwrite)
        self._tmp = self._atomic.__enter__()
        self._file = h5py.File(self._tmp, "w")
        self._n = int(n_galaxies)
        self._finished = False
        write_header(self._file, FORMAT, FORMAT_VERSION)
        group = self._file.create_group("images")
        group.attrs["instruments"] = list(stacks)
        self._datasets = {}
        for name, stack in stacks.items():
            self._datasets[name] = _create_stack_dataset(group, name, stack, self._n)

    def write_rows(self, start: int, images: Mapping[str, np.ndarray]) -> None:
        """Write a block of galaxies starting at row ``start`` for every instrument."""
        for name, block in images.items():
            if name not in self._datasets:
                raise ValidationError(
                    f"no stack {name!r} in this writer; it has {list(self._datasets)}"
                )
            dataset = self._datasets[name]
            block = np.asarray(block, dtype=np.float32)
            if block.shape[1:] != dataset.shape[1:] or start < 0 or start + len(block) > self._n:
                raise ValidationError(
                    f"block of shape {block.shape} at row {start} does not fit stack {name!r} "
                    f"of shape {dataset.shape}"
                )
            bad = ~np.isfinite(block)
            if np.any(bad):
                row, band = np.argwhere(bad)[0][:2]
                raise ValidationError(
                    f"stack {name!r}: non-finite pixel at galaxy {start + row}, band {band}"
                )
            dataset[start : start + len(block)] = block

    def finish(self, catalog: Table, meta: Mapping[str, Any]) -> None:
        """Write the catalog and the metadata, flag the file complete and move it in place."""
        from clapkit.data.validation import validate_catalog, validate_meta

        if len(catalog) != self._n:
            raise ValidationError(f"catalog has {len(catalog)} rows, the writer {self._n}")
        validate_catalog(catalog)
        self._file.attrs["meta"] = json.dumps(validate_meta(dict(meta)))
        self._file.attrs["n_galaxies"] = self._n
        write_table_hdf5(catalog, self._file, path="catalog", serialize_meta=True)
        mark_complete(self._file)
        self._file.close()
        self._finished = True
        self._atomic.__exit__(None, None, None)

    def __enter__(self) -> GalaxySetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._finished:
            self._file.close()
            # Leaving without finish(): discard the temporary file, keep any old one.
            self._atomic.__exit__(exc_type or RuntimeError, exc or RuntimeError("not finished"), tb)
