"""The header every clapkit HDF5 file carries, and opening such files safely.

Each file format (a GalaxySet, a set of PDFs, ...) writes the same root attributes:
``format``, ``format_version``, ``clapkit_version`` and, written last, ``complete``.
:func:`open_checked` turns every way a file can be wrong — missing, empty, not HDF5,
truncated, foreign, newer, half-written — into a :class:`~clapkit.errors.FileFormatError`
that names the path and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

import clapkit
from clapkit.errors import FileFormatError


def write_header(f: h5py.File, fmt: str, version: int) -> None:
    """Stamp a new file with its format, format version and the clapkit version."""
    f.attrs["format"] = fmt
    f.attrs["format_version"] = version
    f.attrs["clapkit_version"] = clapkit.__version__


def mark_complete(f: h5py.File) -> None:
    """Flag the file as finished; call it last, so a file without it is known unfinished."""
    f.attrs["complete"] = True


def attr(f: h5py.File | h5py.Group | h5py.Dataset, name: str, default: Any = None) -> Any:
    """An attribute with bytes decoded to str."""
    value = f.attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else value


def open_checked(path: str | Path, fmt: str, version: int, what: str) -> h5py.File:
    """Open a clapkit HDF5 file for reading after checking its header.

    Parameters
    ----------
    path : path-like
    fmt : str
        Expected ``format`` attribute, e.g. ``"clapkit.GalaxySet"``.
    version : int
        Newest ``format_version`` this clapkit reads.
    what : str
        What the file should be, for messages ("a GalaxySet").

    Returns
    -------
    h5py.File
        Open read-only; the caller closes it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> bad = pathlib.Path(tempfile.mkdtemp()) / "notes.h5"
    >>> _ = bad.write_text("not hdf5")
    >>> open_checked(bad, "clapkit.PDFs", 1, "a PDF file")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clapkit.errors.FileFormatError: .../notes.h5: not an HDF5 file ...
    """
    path = Path(path)
    if not path.exists():
        raise FileFormatError(f"{path}: no such file")
    if not path.is_file():
        raise FileFormatError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{path}: is empty (0 bytes); expected {what} written by clapkit")
    if not h5py.is_hdf5(path):
        raise FileFormatError(
            f"{path}: not an HDF5 file (no HDF5 signature); expected {what} written by clapkit"
        )
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise FileFormatError(
            f"{path}: cannot be opened as HDF5; the file is truncated or corrupt ({err})"
        ) from err
    try:
        _check_header(f, path, fmt, version)
    except BaseException:
        f.close()
        raise
    return f


def _check_header(f: h5py.File, path: Path, fmt: str, version: int) -> None:
    found = attr(f, "format")
    if found is None:
        raise FileFormatError(f"{path}: was not written by clapkit (no 'format' attribute)")
    if found != fmt:
        raise FileFormatError(
            f"{path}: was not written by clapkit as expected (format {found!r}, expected {fmt!r})"
        )
    found_version = attr(f, "format_version")
    if found_version is None:
        raise FileFormatError(f"{path}: has no 'format_version' attribute")
    if int(found_version) > version:
        raise FileFormatError(
            f"{path}: format_version {int(found_version)} was written by a newer clapkit "
            f"({attr(f, 'clapkit_version')}); this clapkit {clapkit.__version__} reads up to "
            f"version {version}. Upgrade clapkit to read it."
        )
    if not attr(f, "complete"):
        raise FileFormatError(
            f"{path}: incomplete write (the 'complete' flag is missing); the writer was "
            "interrupted, so the file cannot be trusted. Write it again."
        )
