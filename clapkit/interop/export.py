"""PDFs out of clapkit: a qp file for DESC pipelines, FITS for catalog users, CSV for anyone.

``clapkit export`` writes one method's PDFs of a run (or one PDF file) as:

``qp``
    qp's own HDF5 file (``.hdf5``): the histogram ensemble of :func:`~clapkit.interop.to_qp`
    on the run's edges, ``id``, ``z_true`` and the run's per-galaxy columns as ancillary
    data; ``qp.read`` reads it and :func:`~clapkit.interop.from_qp` gives the PDFs back.
``fits``
    A binary table ``PDFS``, one row per galaxy: ``id``, ``z_true`` (when known), the
    point estimates ``z_mean``, ``z_median``, ``z_mode``, the central 68% and 95%
    intervals ``z_lo68``, ``z_hi68``, ``z_lo95``, ``z_hi95``, the run's per-galaxy columns
    (CLAP's ``novelty``...) and the PDF as the vector column ``pdf`` (bin probabilities,
    shape (N, B)); a second table ``EDGES`` holds the B + 1 bin edges. Headers record
    the method and the clapkit version. TOPCAT opens both tables.
``csv``
    The same scalar columns, one row per galaxy; with ``pdf_columns`` also the bin
    probabilities as ``p_000`` ... ``p_<B-1>`` (bin k spans ``edges[k]`` to
    ``edges[k + 1]``; plain CSV has no place for the edges, which the qp and FITS
    outputs keep).

Redshifts are dimensionless. Every output is written atomically and an existing file is
replaced only with ``overwrite``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

import clapkit
from clapkit.atomic import atomic_path, check_writable
from clapkit.errors import FileFormatError, ValidationError
from clapkit.metrics.pdfs import PDFs

FORMATS = ("qp", "fits", "csv")
#: What each format's output is called when ``format`` is not given.
SUFFIX_FORMATS = {".hdf5": "qp", ".fits": "fits", ".fit": "fits", ".csv": "csv"}
#: The method a run exports by default: CLAP's final PDFs.
DEFAULT_METHOD = "clap"
#: Central intervals: column suffix and the quantiles that bound them.
INTERVALS = {"68": (0.16, 0.84), "95": (0.025, 0.975)}
POINT_COLUMNS = {"z_mean": "mean", "z_median": "median", "z_mode": "mode"}


def infer_format(path: str | os.PathLike, format: str | None = None) -> str:
    """The export format: ``format`` if given, else the one ``path``'s suffix names.

    A ``qp`` output must end in ``.hdf5``: qp chooses its file layout by suffix (``.h5``
    would give a pandas table, ``.fits`` and ``.parquet`` other layouts), and ``.hdf5``
    is the one ``qp.read`` reads back as an ensemble.

    Examples
    --------
    >>> infer_format("cat.fits"), infer_format("pz.hdf5"), infer_format("x.txt", "csv")
    ('fits', 'qp', 'csv')
    """
    path = Path(path)
    if format is None:
        format = SUFFIX_FORMATS.get(path.suffix.lower())
        if format is None:
            raise ValidationError(
                f"{path}: cannot tell the format from the suffix; give --format "
                f"({', '.join(FORMATS)}) or name the file {', '.join(SUFFIX_FORMATS)}"
            )
    if format not in FORMATS:
        raise ValidationError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "qp" and path.suffix.lower() != ".hdf5":
        raise ValidationError(
            f"{path}: a qp file must end in .hdf5 (qp picks its layout by suffix)"
        )
    return format


def catalog_table(
    pdfs: PDFs,
    columns: dict[str, np.ndarray] | None = None,
    *,
    pdf: str | None = "vector",
) -> Table:
    """One row per galaxy: id, truth, point estimates, central intervals, more columns.

    Parameters
    ----------
    pdfs : PDFs
        The PDFs.
    columns : dict of str to numpy.ndarray, optional
        More per-galaxy values (a run's ``columns``), one per row, added after the
        intervals.
    pdf : {"vector", "columns", None}
        The PDF as one vector column ``pdf`` (FITS), as ``p_000``... columns (CSV), or
        left out.

    Returns
    -------
    astropy.table.Table

    Examples
    --------
    >>> pdfs = PDFs.from_gaussian([0.3], [0.05], np.linspace(0, 1, 101), z_true=[0.31])
    >>> table = catalog_table(pdfs)
    >>> table.colnames[:4], table["pdf"].shape
    (['id', 'z_true', 'z_mean', 'z_median'], (1, 100))
    >>> round(float(table["z_lo68"][0]), 2), round(float(table["z_hi68"][0]), 2)
    (0.25, 0.35)
    """
    if not isinstance(pdfs, PDFs):
        raise ValidationError(f"expected clapkit PDFs, got {type(pdfs).__name__}")
    if pdf not in ("vector", "columns", None):
        raise ValidationError(f"pdf must be 'vector', 'columns' or None, got {pdf!r}")
    table = Table()
    table["id"] = np.asarray(pdfs.ids)
    if pdfs.z_true is not None:
        table["z_true"] = pdfs.z_true
    for name, kind in POINT_COLUMNS.items():
        table[name] = pdfs.point_estimate(kind)
    levels = [q for bounds in INTERVALS.values() for q in bounds]
    bounds = pdfs.quantile(levels)
    for i, level in enumerate(INTERVALS):
        table[f"z_lo{level}"] = bounds[:, 2 * i]
        table[f"z_hi{level}"] = bounds[:, 2 * i + 1]
    for name, values in (columns or {}).items():
        values = np.asarray(values)
        if name in table.colnames or name == "pdf" or name.startswith("p_"):
            raise ValidationError(
                f"per-galaxy column {name!r} clashes with an exported column of that name"
            )
        if values.shape[:1] != (pdfs.n,):
            raise ValidationError(
                f"per-galaxy column {name!r} must have {pdfs.n} rows, got shape {values.shape}"
            )
        table[name] = values
    if pdf == "vector":
        table["pdf"] = pdfs.p
    elif pdf == "columns":
        width = max(3, len(str(pdfs.n_bins - 1)))
        for k in range(pdfs.n_bins):
            table[f"p_{k:0{width}d}"] = pdfs.p[:, k]
    return table


def export_pdfs(
    pdfs: PDFs,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    method: str = "",
    columns: dict[str, np.ndarray] | None = None,
    pdf_columns: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write PDFs as a qp file, a FITS table or CSV (see the module docstring).

    Parameters
    ----------
    pdfs : PDFs
        The PDFs to write.
    path : path-like
        The output file.
    format : {"qp", "fits", "csv"}, optional
        Default: from the suffix of ``path`` (``.hdf5``, ``.fits``/``.fit``, ``.csv``).
    method : str
        The method that made the PDFs, recorded in the FITS header.
    columns : dict of str to numpy.ndarray, optional
        More per-galaxy values (a run's ``columns``): FITS and CSV columns, qp ancillary
        data.
    pdf_columns : bool
        CSV only: add the bin probabilities as ``p_000``... columns.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile
    >>> from astropy.table import Table
    >>> pdfs = PDFs.from_gaussian([0.3, 0.5], [0.05, 0.1], np.linspace(0, 1, 51))
    >>> path = export_pdfs(pdfs, Path(tempfile.mkdtemp()) / "pz.fits", method="demo")
    >>> table = Table.read(path, hdu="PDFS")
    >>> table["pdf"].shape, table.meta["METHOD"]
    ((2, 50), 'demo')
    """
    format = infer_format(path, format)
    if pdf_columns and format != "csv":
        raise ValidationError("pdf_columns (--pdf-columns) applies to CSV output only")
    path = check_writable(path, overwrite)
    if format == "qp":
        return _write_qp(pdfs, path, columns, overwrite)
    pdf = "vector" if format == "fits" else ("columns" if pdf_columns else None)
    table = catalog_table(pdfs, columns, pdf=pdf)
    if format == "fits":
        return _write_fits(table, pdfs.edges, path, method, overwrite)
    with atomic_path(path, overwrite) as tmp:
        table.write(tmp, format="ascii.csv", overwrite=True)  # tmp exists, empty
    return path


def _header_cards(method: str) -> dict[str, tuple[str, str]]:
    return {
        "ORIGIN": ("clapkit", "written by clapkit export"),
        "CLAPVER": (clapkit.__version__, "clapkit version"),
        "METHOD": (method, "photo-z method of the PDFs"),
    }


def _write_fits(table: Table, edges: np.ndarray, path: Path, method: str, overwrite: bool) -> Path:
    from astropy.io import fits

    data = fits.table_to_hdu(table)
    data.name = "PDFS"
    for key, card in _header_cards(method).items():
        data.header[key] = card
    data.header["NBINS"] = (edges.size - 1, "bins of the pdf column (edges in HDU EDGES)")
    data.header["ZMIN"] = (float(edges[0]), "lower edge of the redshift grid")
    data.header["ZMAX"] = (float(edges[-1]), "upper edge of the redshift grid")
    data.header["COMMENT"] = "Redshifts are dimensionless. pdf: probability of each bin,"
    data.header["COMMENT"] = "bin k spanning EDGES[k] to EDGES[k+1]; each row sums to 1."
    data.header["COMMENT"] = "z_lo68/z_hi68, z_lo95/z_hi95: central credible intervals."
    grid = fits.table_to_hdu(Table({"edges": np.asarray(edges, dtype=np.float64)}))
    grid.name = "EDGES"
    primary = fits.PrimaryHDU()
    for key, card in _header_cards(method).items():
        primary.header[key] = card
    with atomic_path(path, overwrite) as tmp:
        fits.HDUList([primary, data, grid]).writeto(tmp, overwrite=True)  # tmp exists, empty
    return path


def _write_qp(
    pdfs: PDFs, path: Path, columns: dict[str, np.ndarray] | None, overwrite: bool
) -> Path:
    from clapkit.interop.qp_ensembles import to_qp

    ensemble = to_qp(pdfs)
    ancil = dict(ensemble.ancil)
    for name, values in (columns or {}).items():
        values = np.asarray(values)
        if name in ancil or values.shape != (pdfs.n,):
            raise ValidationError(
                f"per-galaxy column {name!r}: clashes with qp ancillary data or is not "
                f"one value per galaxy (shape {values.shape})"
            )
        ancil[name] = values
    ensemble.set_ancil(ancil)
    with atomic_path(path, overwrite) as tmp:
        # qp picks its layout from the suffix, which the temporary name lacks.
        staged = tmp.with_name(tmp.name + path.suffix)
        try:
            ensemble.write_to(str(staged))
            os.replace(staged, tmp)
        finally:
            staged.unlink(missing_ok=True)
    return path


def run_pdfs(run: str | os.PathLike, method: str | None = None) -> tuple[PDFs, dict[str, Any]]:
    """The PDFs of ``method`` in a run directory (default: CLAP's final ``clap``).

    Returns the PDFs and their attributes (see :func:`clapkit.runs.load_pdfs`). An
    unknown method names the ones the run has.

    Examples
    --------
    >>> import tempfile
    >>> run_pdfs(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    clapkit.errors.FileFormatError: ... has no PDFs (no pdfs/*.h5); run clapkit predict first
    """
    from clapkit.runs import RunDir

    root = Path(run)
    if not root.is_dir():
        raise FileFormatError(f"{root}: no such run directory")
    run_dir = RunDir(root)
    available = run_dir.methods()
    if not available:
        raise FileFormatError(f"{root}: has no PDFs (no pdfs/*.h5); run clapkit predict first")
    if method is None:
        if DEFAULT_METHOD not in available:
            raise ValidationError(
                f"{root}: no {DEFAULT_METHOD!r} PDFs; choose --method from {', '.join(available)}"
            )
        method = DEFAULT_METHOD
    if method not in available:
        raise ValidationError(
            f"{root}: no PDFs of method {method!r}; it has {', '.join(available)}"
        )
    return run_dir.load_pdfs(method)
