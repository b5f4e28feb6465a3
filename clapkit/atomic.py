"""Atomic writes: a file appears under its final name only once it is complete.

Every writer in clapkit goes through :func:`atomic_path`, so an interrupted write never
leaves a half-written file where a reader would take it for a complete one, and an
existing file is never replaced unless the caller asked for it.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from clapkit.errors import OverwriteError


def check_writable(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path, or raise if it exists and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.json"
    >>> check_writable(p) == p
    True
    """
    path = Path(path)
    if path.is_dir():
        raise OverwriteError(f"{path} is a directory; give a file name")
    if path.exists() and not overwrite:
        raise OverwriteError(
            f"{path} already exists; pass overwrite=True (--overwrite) to replace it"
        )
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic
    on POSIX file systems. If the block raises, the temporary file is removed and any
    existing file at ``path`` is left untouched.

    Parameters
    ----------
    path : path-like
        Final destination. Its parent directory is created if needed.
    overwrite : bool
        Replace an existing file. Without it an existing ``path`` raises
        :class:`~clapkit.errors.OverwriteError` before anything is written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "hello.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("hi")
    >>> target.read_text()
    'hi'
    """
    path = check_writable(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    # The writer's pid in the name: a later write can tell a killed writer's leftover
    # (kill -9 runs no cleanup) from a write in progress.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions of any new file.
        os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of writes to ``path`` whose process is gone.

    A write killed outright (``kill -9``, a machine crash) leaves its hidden temporary
    file ``.<name>.tmp-<pid>-<random>`` beside ``path``; the next write to ``path``
    removes it, so leftovers never accumulate. Files of live processes, and files whose
    name carries no pid, are kept. (The pid is of this machine: a run directory shared
    over a network file system between machines could see a live remote writer as gone.)

    Returns the files removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> (folder / ".out.h5.tmp-999999999-abc").write_text("left by a killed job")
    20
    >>> [p.name for p in remove_stale_temporaries(folder / "out.h5")]
    ['.out.h5.tmp-999999999-abc']
    """
    path = Path(path)
    prefix = f".{path.name}.tmp-"
    removed = []
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*"):
        pid_text = candidate.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(FileNotFoundError):  # another writer removed it first
            candidate.unlink()
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or a number no pid can be: keep the file
    return True


def _current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike, obj: Any, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON, atomically.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = write_json(pathlib.Path(tempfile.mkdtemp()) / "a.json", {"x": 1})
    >>> p.read_text().strip()
    '{\\n  "x": 1\\n}'
    """
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    return Path(path)


def _json_default(obj: Any) -> Any:
    """Convert numpy scalars and arrays, which ``json`` does not know."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
