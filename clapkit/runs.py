"""The run directory: where every artefact of a job lives.

A run directory (``data/runs/<name>/``) is the only hand-off between the stages
(train, predict, evaluate) and between the library and the dashboards::

    <run>/
      manifest.json        what made the run: clapkit version, config, stages done
      pdfs/<method>.h5     PDFs of one method on the test galaxies
      metrics.json         summary metrics and per-bin tables of every method
      *.png                figures

Every artefact carries the clapkit version and the config that produced it, and every
write is atomic (see :mod:`clapkit.atomic`), so a half-written run is never read as
complete.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import clapkit
from clapkit.atomic import atomic_path, write_json
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import attr, mark_complete, open_checked, write_header
from clapkit.metrics import PDFs

PDF_FORMAT = "clapkit.PDFs"
PDF_FORMAT_VERSION = 1
_METHOD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _check_method(method: str) -> str:
    if not _METHOD_NAME.match(method):
        raise ValidationError(f"method name {method!r} must be letters, digits, '_', '.', '-'")
    return method


def save_pdfs(
    path: str | os.PathLike,
    pdfs: PDFs,
    *,
    method: str,
    config: dict[str, Any] | None = None,
    overwrite: bool = False,
    columns: dict[str, np.ndarray] | None = None,
) -> Path:
    """Write PDFs to HDF5: datasets ``id``, ``p``, ``edges`` and, when known, ``z_true``.

    Attributes record the format, the clapkit version, the method and its config (JSON).
    ``columns`` are more per-galaxy values (one per row, e.g. CLAP's ``coverage``
    percentile), stored under the group ``columns``.

    Parameters
    ----------
    path : path-like
        The HDF5 file to write.
    pdfs : PDFs
        The PDFs, with ids.
    method : str
        The method that made them.
    config : dict, optional
        Its settings, stored as JSON.
    overwrite : bool
        Replace an existing file.
    columns : dict of str to numpy.ndarray, optional
        More per-galaxy values, one per row.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from clapkit.metrics import PDFs
    >>> pdfs = PDFs.from_gaussian([0.1], [0.02], np.linspace(0, 0.4, 41), z_true=[0.11])
    >>> path = save_pdfs(pathlib.Path(tempfile.mkdtemp()) / "knn.h5", pdfs, method="knn")
    >>> loaded, attrs = load_pdfs(path)
    >>> attrs["method"], bool(np.allclose(loaded.p, pdfs.p))
    ('knn', True)
    """
    _check_method(method)
    ids = np.asarray(pdfs.ids)
    columns = {name: np.asarray(values) for name, values in (columns or {}).items()}
    for name, values in columns.items():
        if values.shape != (pdfs.n,):
            raise ValidationError(
                f"per-galaxy column {name!r} must have shape ({pdfs.n},), got {values.shape}"
            )
    with atomic_path(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        write_header(f, PDF_FORMAT, PDF_FORMAT_VERSION)
        f.attrs["method"] = method
        f.attrs["config"] = json.dumps(config or {}, default=_plain)
        if ids.dtype.kind in "UO":
            f.create_dataset("id", data=ids.astype(object), dtype=h5py.string_dtype())
        else:
            f.create_dataset("id", data=ids)
        chunk_rows = max(1, min(pdfs.n, 4096))
        f.create_dataset("p", data=pdfs.p, chunks=(chunk_rows, pdfs.n_bins))
        f.create_dataset("edges", data=pdfs.edges)
        if pdfs.z_true is not None:
            f.create_dataset("z_true", data=pdfs.z_true)
        for name, values in columns.items():
            f.create_dataset(f"columns/{name}", data=values)
        mark_complete(f)
    return Path(path)


def load_pdfs(path: str | os.PathLike) -> tuple[PDFs, dict[str, Any]]:
    """Read a PDF file written by :func:`save_pdfs`; returns the PDFs and the attributes
    (``method``, ``clapkit_version``, ``config`` and the per-galaxy ``columns``).

    Raises :class:`~clapkit.errors.FileFormatError` for a missing, truncated, foreign or
    incomplete file.
    """
    path = Path(path)
    with open_checked(path, PDF_FORMAT, PDF_FORMAT_VERSION, "a PDF file") as f:
        missing = [name for name in ("id", "p", "edges") if name not in f]
        if missing:
            raise FileFormatError(f"{path}: missing datasets {missing}")
        ids = f["id"][()]
        if ids.dtype.kind in "SO":
            ids = np.asarray([v.decode() if isinstance(v, bytes) else v for v in ids])
        z_true = f["z_true"][()] if "z_true" in f else None
        attrs = {
            "method": str(attr(f, "method", path.stem)),
            "clapkit_version": str(attr(f, "clapkit_version", "")),
            "config": json.loads(attr(f, "config", "{}")),
            "columns": {name: f["columns"][name][()] for name in f.get("columns", {})},
        }
        try:
            pdfs = PDFs(f["p"][()], f["edges"][()], z_true=z_true, ids=ids)
        except ValidationError as err:
            raise ValidationError(f"{path}: {err}") from err
    return pdfs, attrs


def _plain(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


class RunDir:
    """A run directory: paths of its artefacts and atomic readers/writers for them.

    Examples
    --------
    >>> import tempfile
    >>> run = RunDir(tempfile.mkdtemp())
    >>> run.pdf_path("knn").name
    'knn.h5'
    >>> run.methods()
    []
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValidationError(f"run {self.root} is a file; a run is a directory")

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    @property
    def pdfs_dir(self) -> Path:
        """Folder of the PDF files, one per method."""
        return self.root / "pdfs"

    def pdf_path(self, method: str) -> Path:
        """Path of the PDF file of ``method``."""
        return self.pdfs_dir / f"{_check_method(method)}.h5"

    def methods(self) -> list[str]:
        """Methods whose PDFs are in the run, sorted."""
        if not self.pdfs_dir.is_dir():
            return []
        return sorted(p.stem for p in self.pdfs_dir.glob("*.h5") if not p.name.startswith("."))

    def save_pdfs(
        self,
        method: str,
        pdfs: PDFs,
        config: dict | None = None,
        overwrite: bool = False,
        columns: dict[str, np.ndarray] | None = None,
    ) -> Path:
        """Write the PDFs of ``method`` (see :func:`save_pdfs`).

        Parameters
        ----------
        method : str
            The method; the file is ``pdfs/<method>.h5``.
        pdfs : PDFs
            The PDFs, with ids.
        config : dict, optional
            The method's settings, stored as JSON.
        overwrite : bool
            Replace an existing file.
        columns : dict of str to numpy.ndarray, optional
            More per-galaxy values, one per row.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        return save_pdfs(
            self.pdf_path(method),
            pdfs,
            method=method,
            config=config,
            overwrite=overwrite,
            columns=columns,
        )

    def load_pdfs(self, method: str) -> tuple[PDFs, dict[str, Any]]:
        """Read the PDFs of ``method`` (see :func:`load_pdfs`)."""
        path = self.pdf_path(method)
        if not path.exists():
            raise FileFormatError(
                f"{self.root}: no PDFs for method {method!r}; it has {self.methods()}"
            )
        return load_pdfs(path)

    def data_path(self) -> Path | None:
        """The galaxy file the run predicted on (``predict.json``), None if not recorded.

        A relative path is relative to the run directory (data kept inside the run
        moves with it).
        """
        try:
            data = self.read_json("predict.json")["data"]
        except (OSError, KeyError):
            return None
        path = Path(data)
        return path if path.is_absolute() else self.root / path

    def relative_data_path(self, data: str | os.PathLike) -> str:
        """How :meth:`data_path` records ``data``: relative inside the run, else absolute."""
        path = Path(data).resolve()
        try:
            return str(path.relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    def write_json(self, name: str, obj: dict[str, Any], overwrite: bool = False) -> Path:
        """Write ``<run>/<name>`` atomically, stamped with the clapkit version."""
        return write_json(
            self.root / name, {"clapkit_version": clapkit.__version__, **obj}, overwrite
        )

    def read_json(self, name: str) -> dict[str, Any]:
        """Read ``<run>/<name>``; a clear error if it is missing or not JSON."""
        path = self.root / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as err:
            raise FileFormatError(f"{path}: missing") from err
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path}: not valid JSON ({err})") from err
