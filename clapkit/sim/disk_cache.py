"""The simulator's start-up work, kept on disk between processes.

Every process that simulates first builds the same things: the kcorrect models of three
band sets (projecting the templates through the filter responses on a redshift grid,
about 5 s each), the fit of kcorrect to the 10,000 real SDSS galaxies (the population
prior, about 5 s) and the extinction coefficients and effective wavelengths (about 1 s
each per band set): over 20 s of CPU before the first galaxy, paid again by every worker
process of ``clapkit simulate --workers``, every Dask worker and every notebook kernel.
:func:`disk_cached` keeps each result in a pickle in the user's cache folder, so that a
new process reads it in milliseconds; results are unchanged bit for bit (a pickle
stores the arrays exactly).

A cached entry is used only if everything it was built from is unchanged: its key hashes
the source code of :mod:`clapkit.sim` and :mod:`clapkit.data`, the versions of the
libraries that produce the values (kcorrect, which also ships the SDSS catalog;
dust_extinction, astropy, numpy), the Python version, the function and its arguments.
A new key replaces the older entries of the same function and arguments. An unreadable
entry is rebuilt; a cache folder that cannot be written is skipped. Nothing here is a
user setting beyond where the folder is:

- ``CLAPKIT_CACHE_DIR=DIR``: keep the entries in ``DIR`` (default: the platform's user
  cache folder, e.g. ``~/.cache/clapkit`` on Linux, from ``platformdirs``);
- ``CLAPKIT_CACHE_DIR=off``: build everything in every process, as without this module.

Python's own bytecode cache and numba's ``cache=True`` do the same for compiled code;
neither can hold a computed result, hence this module (``joblib.Memory`` could, but it
keys on arguments and the function's own source only, not on the modules and library
versions the result depends on).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from clapkit.atomic import atomic_path

__all__ = ["CACHE_ENV", "cache_dir", "disk_cached"]

#: The environment variable that moves (or, set to ``off``, disables) the cache.
CACHE_ENV = "CLAPKIT_CACHE_DIR"

#: Libraries whose versions are part of every key: they compute the cached values.
_LIBRARIES = ("kcorrect", "dust-extinction", "astropy", "numpy")

#: Packages of clapkit whose source is part of every key.
_PACKAGES = ("sim", "data")

Result = TypeVar("Result")


def cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    """The folder of the cached entries, or None when ``CLAPKIT_CACHE_DIR=off``.

    ``environ`` defaults to :data:`os.environ`.

    Examples
    --------
    >>> cache_dir({"CLAPKIT_CACHE_DIR": "off"}) is None
    True
    >>> cache_dir({"CLAPKIT_CACHE_DIR": "/scratch/clapkit"}).as_posix()
    '/scratch/clapkit'
    """
    setting = (os.environ if environ is None else environ).get(CACHE_ENV, "").strip()
    if setting.lower() == "off":
        return None
    if setting:
        return Path(setting).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("clapkit")) / "sim"


@functools.lru_cache(maxsize=1)
def _environment_key() -> str:
    """Hash of what every entry depends on: clapkit's simulator and data code, the
    libraries' versions and the Python version."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for package in _PACKAGES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    for library in _LIBRARIES:
        try:
            version = metadata.version(library)
        except metadata.PackageNotFoundError:
            version = "absent"
        digest.update(f"{library}={version}".encode())
    digest.update(f"python={sys.version_info[:2]}".encode())
    return digest.hexdigest()


def _entry_stem(function: Callable[..., Any], args: tuple[Any, ...]) -> str:
    """``<function>[-<args>]``: the part of an entry's name shared by all its versions."""
    parts = [function.__name__.strip("_")] + [str(arg) for arg in args]
    return "-".join(part.replace(os.sep, "_") for part in parts)


def disk_cached(function: Callable[..., Result]) -> Callable[..., Result]:
    """Keep ``function``'s result on disk, keyed on its positional arguments and on
    everything in the module docstring.

    Meant for functions of a few string arguments that every simulating process calls
    once (stack :func:`functools.lru_cache` on top for the in-process copy).

    Parameters
    ----------
    function : callable
        Takes positional arguments with stable ``str`` forms; returns a picklable result.

    Returns
    -------
    callable
        The same function, reading the result from the cache when its entry is there.

    Examples
    --------
    >>> import os, tempfile
    >>> saved = dict(os.environ)
    >>> os.environ["CLAPKIT_CACHE_DIR"] = tempfile.mkdtemp()
    >>> calls = []
    >>> @disk_cached
    ... def squares(n):
    ...     calls.append(n)
    ...     return [i * i for i in range(int(n))]
    >>> squares("4"), squares("4"), calls
    ([0, 1, 4, 9], [0, 1, 4, 9], ['4'])
    >>> os.environ.clear()
    >>> os.environ.update(saved)
    """

    @functools.wraps(function)
    def cached(*args: Any) -> Result:
        folder = cache_dir()
        if folder is None:
            return function(*args)
        stem = _entry_stem(function, args)
        where = f"{function.__module__}.{function.__qualname__}"
        key = hashlib.sha256(f"{_environment_key()}|{where}|{stem}".encode()).hexdigest()[:24]
        path = folder / f"{stem}.{key}.pickle"
        try:
            with path.open("rb") as handle:
                return pickle.load(handle)
        except Exception:  # missing, or damaged: rebuilt below, never fatal
            pass
        result = function(*args)
        _store(folder, stem, path, result)
        return result

    return cached


def _store(folder: Path, stem: str, path: Path, result: Any) -> None:
    """Write the entry atomically and drop older entries of the same stem; a folder that
    cannot be written leaves the cache unused, not the caller failed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        for old in folder.glob(f"{stem}.*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass
