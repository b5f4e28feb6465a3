"""Evaluate PDF files and runs: summary metrics, per-bin tables, a printable table.

The glue between stored PDFs (:mod:`clapkit.runs`) and the pure metrics
(:mod:`clapkit.metrics`): ``clapkit evaluate`` and the demo call it.
"""

from __future__ import annotations

import itertools
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.table import Table

import clapkit
from clapkit.atomic import atomic_path, check_writable, write_json
from clapkit.checks import check_int, check_number
from clapkit.errors import FileFormatError, ValidationError
from clapkit.metrics import PDFs, calibration_table, coverage, per_galaxy_parts
from clapkit.runs import RunDir, load_pdfs
from clapkit.settings import Settings

#: Credibility levels of the stored coverage curves (the calibration explorer draws them).
COVERAGE_LEVELS = (*(round(0.05 * i, 2) for i in range(1, 20)), 0.99)

#: Columns of the printed table: metric key, header, format.
TABLE_COLUMNS = (
    ("n", "N", "d"),
    ("sigma_mad", "σ_MAD", ".4f"),
    ("bias", "bias", "+.4f"),
    ("outlier_fraction", "outliers", ".3f"),
    ("crps", "CRPS", ".4f"),
    ("pit_ks", "PIT KS", ".3f"),
    ("pit_w1", "PIT W1", ".4f"),
    ("coverage_68", "cov68", ".3f"),
    ("coverage_95", "cov95", ".3f"),
)


#: CLAP's stages in the order a reader compares them: the ensemble first, then back through
#: the pipeline to the SCL network's own PDFs.
CLAP_STAGES = ("clap", "clap_refit", "clap_recal", "clap_raw", "clap_scl")


def ordered_methods(methods: Sequence[str]) -> list[str]:
    """CLAP's stages first (ensemble, refit, recal, raw, SCL), then the others in the order
    given.

    Examples
    --------
    >>> ordered_methods(["softmax", "clap_raw", "clap"])
    ['clap', 'clap_raw', 'softmax']
    """
    return [m for m in CLAP_STAGES if m in methods] + [m for m in methods if m not in CLAP_STAGES]


def table_rows(table: Table) -> list[dict[str, Any]]:
    """A per-bin table as JSON-ready rows (NaN becomes None)."""
    rows = []
    for row in table:
        values = {}
        for name in table.colnames:
            value = row[name].item() if hasattr(row[name], "item") else row[name]
            values[name] = None if isinstance(value, float) and not np.isfinite(value) else value
        rows.append(values)
    return rows


def evaluate_pdfs(
    pdfs: PDFs,
    *,
    outlier_threshold: float = 0.05,
    z_bins: int | np.ndarray = 5,
    extra_bins: Mapping[str, tuple[np.ndarray, int | np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Summary metrics plus per-bin tables of one set of PDFs.

    Parameters
    ----------
    pdfs : PDFs
        Must carry ``z_true``.
    outlier_threshold : float
        |δz| above which a galaxy is an outlier (0.05 for SDSS, 0.15 for deeper surveys).
    z_bins : int or array
        Bins of true redshift for the ``by_z_true`` table.
    extra_bins : mapping, optional
        More tables: ``{"r_mag": (values, bins)}`` gives ``by_r_mag``.

    Returns
    -------
    dict
        ``summary`` (see :func:`~clapkit.metrics.summarize`) and ``by_<name>`` tables.

    Examples
    --------
    >>> pdfs = PDFs.from_gaussian([0.1, 0.2, 0.3], [0.02] * 3, np.linspace(0, 0.4, 81),
    ...                           z_true=[0.11, 0.19, 0.3])
    >>> result = evaluate_pdfs(pdfs, z_bins=[0.0, 0.2, 0.4])
    >>> result["summary"]["n"], [row["n"] for row in result["by_z_true"]]
    (3, [2, 1])
    """
    if pdfs.z_true is None:
        raise ValidationError(
            "these PDFs carry no z_true; give the true redshifts to evaluate them"
        )
    result: dict[str, Any] = {
        "summary": pdfs.summary(outlier_threshold=outlier_threshold),
        "coverage_curve": {
            "levels": list(COVERAGE_LEVELS),
            "central": coverage(pdfs.p, pdfs.edges, pdfs.z_true, COVERAGE_LEVELS).tolist(),
            "hpd": coverage(pdfs.p, pdfs.edges, pdfs.z_true, COVERAGE_LEVELS, "hpd").tolist(),
        },
    }
    groups = {"z_true": (pdfs.z_true, z_bins), **(extra_bins or {})}
    for name, (values, bins) in groups.items():
        table = calibration_table(
            pdfs.p, pdfs.edges, pdfs.z_true, values, bins, outlier_threshold=outlier_threshold
        )
        result[f"by_{name}"] = table_rows(table)
    return result


def attach_truth(pdfs: PDFs, truth: Table, id_column: str = "id", z_column: str = "z") -> PDFs:
    """Return ``pdfs`` with ``z_true`` looked up by id in a truth catalog.

    Every id of the PDFs must be in the catalog, once, with a redshift on the PDFs' grid:
    a missing id, a masked, non-finite or negative redshift (a sentinel such as -99) or one
    outside the grid is an error naming the first such galaxy.

    Parameters
    ----------
    pdfs : PDFs
        The PDFs to score, with ``ids``.
    truth : astropy.table.Table
        Catalog with one row per galaxy.
    id_column, z_column : str
        Its id and true-redshift columns.

    Returns
    -------
    PDFs
        The same PDFs with ``z_true`` set from the catalog.
    """
    for column in (id_column, z_column):
        if column not in truth.colnames:
            raise ValidationError(f"truth catalog lacks column {column!r}; it has {truth.colnames}")
    truth_ids = np.asarray(truth[id_column])
    order = np.argsort(truth_ids, kind="stable")
    sorted_ids = truth_ids[order]
    if np.any(sorted_ids[1:] == sorted_ids[:-1]):
        raise ValidationError(f"truth catalog has duplicate ids in column {id_column!r}")
    where = np.searchsorted(sorted_ids, pdfs.ids)
    where = np.clip(where, 0, sorted_ids.size - 1)
    found = sorted_ids[where] == pdfs.ids
    if not np.all(found):
        missing = pdfs.ids[~found]
        raise ValidationError(
            f"{missing.size} ids are not in the truth catalog, e.g. {missing[0].item()!r}"
        )
    rows = order[where]
    z = np.asarray(truth[z_column], dtype=np.float64)[rows]
    masked = np.ma.getmaskarray(truth[z_column])[rows]
    # Sentinels (-99, 99, NaN, masks) would score as redshifts; the grid's edges are the
    # only redshifts a PDF can be scored against (outside them the PIT is pinned to 0 or 1).
    lo, hi = float(pdfs.edges[0]), float(pdfs.edges[-1])
    for bad, what in (
        (masked | ~np.isfinite(z), "masked or not finite"),
        (z < 0, "negative"),
        ((z < lo) | (z > hi), f"outside the PDFs' grid [{lo:g}, {hi:g}]"),
    ):
        if np.any(bad):
            first = np.flatnonzero(bad)[0]
            raise ValidationError(
                f"truth catalog column {z_column!r}: {int(bad.sum())} of the PDFs' galaxies "
                f"have a redshift {what}, e.g. id {pdfs.ids[first].item()!r} "
                f"(z = {z[first]:g}); evaluate only galaxies with a measured redshift on "
                "the grid"
            )
    return PDFs(pdfs.p, pdfs.edges, z_true=z, ids=pdfs.ids)


def evaluate_file(
    path: str | os.PathLike,
    truth: Table | None = None,
    id_column: str = "id",
    z_column: str = "z",
    **kwargs: Any,
) -> tuple[str, dict[str, Any]]:
    """Evaluate one PDF file; returns its method name and :func:`evaluate_pdfs` result.

    With a ``truth`` catalog, true redshifts are matched on id (replacing any stored in
    the file); without one the file must carry ``z_true``.

    Parameters
    ----------
    path : path-like
        A PDF file written by clapkit (``RUN/pdfs/<method>.h5``).
    truth : astropy.table.Table, optional
        Catalog of true redshifts, matched on id (:func:`attach_truth`).
    id_column, z_column : str
        The catalog's id and true-redshift columns.
    **kwargs
        Passed to :func:`evaluate_pdfs` (``outlier_threshold``, ``z_bins``, ...).

    Returns
    -------
    (str, dict)
        The file's method name and its :func:`evaluate_pdfs` result.
    """
    pdfs, attrs = load_pdfs(path)
    if truth is not None:
        pdfs = attach_truth(pdfs, truth, id_column, z_column)
    elif pdfs.z_true is None:
        raise ValidationError(f"{path}: the file has no z_true; pass a truth catalog (--truth)")
    return attrs["method"], evaluate_pdfs(pdfs, **kwargs)


def bin_variables(catalog: Table, ids: np.ndarray, id_column: str = "id") -> dict[str, np.ndarray]:
    """Magnitude and colour of each galaxy, for the per-bin tables and the dashboards.

    ``mag_r`` when the catalog has it (else the middle ``mag_*`` column), and the g−r
    colour ``g_r`` when it has ``mag_g`` and ``mag_r``; looked up by id, in ``ids`` order.

    Examples
    --------
    >>> cat = Table({"id": [1, 2], "mag_g": [18.0, 17.0], "mag_r": [17.5, 16.0]})
    >>> {k: v.tolist() for k, v in bin_variables(cat, np.array([2, 1])).items()}
    {'mag_r': [16.0, 17.5], 'g_r': [1.0, 0.5]}
    """
    rows = _rows_by_id(catalog, ids, id_column)
    mags = [name for name in catalog.colnames if name.startswith("mag_")]
    out: dict[str, np.ndarray] = {}
    if mags:
        band = "mag_r" if "mag_r" in mags else mags[len(mags) // 2]
        out[band] = np.asarray(catalog[band], dtype=np.float64)[rows]
    if "mag_g" in mags and "mag_r" in mags:
        colour = np.asarray(catalog["mag_g"], dtype=np.float64) - np.asarray(catalog["mag_r"])
        out["g_r"] = colour[rows]
    return out


def _rows_by_id(catalog: Table, ids: np.ndarray, id_column: str) -> np.ndarray:
    catalog_ids = np.asarray(catalog[id_column])
    order = np.argsort(catalog_ids, kind="stable")
    where = np.clip(np.searchsorted(catalog_ids[order], ids), 0, catalog_ids.size - 1)
    rows = order[where]
    missing = catalog_ids[rows] != ids
    if np.any(missing):
        raise ValidationError(
            f"{int(missing.sum())} galaxies are not in the catalog, e.g. id {ids[missing][0].item()!r}"
        )
    return rows


def run_catalog(run: RunDir) -> Table | None:
    """The catalog of the data the run predicted on (``predict.json``'s ``data``), if readable."""
    data = run.data_path()
    if data is None:
        return None
    from clapkit.data import GalaxySet

    try:
        with GalaxySet.load(data) as galaxies:
            return galaxies.catalog.copy()
    except (OSError, FileFormatError, ValidationError):
        return None


@dataclass(frozen=True)
class EvaluationSettings(Settings):
    """How :func:`evaluate_run` scores a run: the outlier cut, the bins, the catalogs' columns.

    Parameters
    ----------
    outlier_threshold : float
        |δz| above which a galaxy is an outlier (0.05 for SDSS, 0.15 for deeper surveys).
    z_bins : int or sequence of float
        Equal-count bins of true redshift for the ``by_z_true`` tables, or their edges
        (increasing).
    extra_bins : int
        Number of equal-count bins of each magnitude and colour.
    id_column : str
        The catalogs' id column.
    z_column : str
        The truth catalog's true-redshift column.
    galaxy_table : bool
        Also write the per-galaxy table ``<run>/galaxies.h5``.

    Examples
    --------
    >>> EvaluationSettings(z_bins=[0.0, 0.2, 0.4]).z_bins
    (0.0, 0.2, 0.4)
    >>> EvaluationSettings(outlier_threshold=0)
    Traceback (most recent call last):
    ...
    clapkit.errors.ValidationError: outlier_threshold must be a number > 0, got 0
    """

    outlier_threshold: float = 0.05
    z_bins: int | tuple[float, ...] = 5
    extra_bins: int = 5
    id_column: str = "id"
    z_column: str = "z"
    galaxy_table: bool = True

    def __post_init__(self) -> None:
        threshold = check_number(self.outlier_threshold, "outlier_threshold", above=0)
        self._set("outlier_threshold", threshold)
        if isinstance(self.z_bins, numbers.Integral) and not isinstance(self.z_bins, bool):
            self._set("z_bins", check_int(self.z_bins, "z_bins"))
        else:
            try:
                edges = tuple(check_number(e, "z_bins edges") for e in self.z_bins)
            except TypeError:
                raise ValidationError(
                    f"z_bins must be a number of bins or their edges, got {self.z_bins!r}"
                ) from None
            if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
                raise ValidationError(f"z_bins edges must increase, at least two, got {edges}")
            self._set("z_bins", edges)
        self._set("extra_bins", check_int(self.extra_bins, "extra_bins"))
        for name in ("id_column", "z_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValidationError(f"{name} must name a catalog column, got {value!r}")
        if not isinstance(self.galaxy_table, bool):
            raise ValidationError(f"galaxy_table must be True or False, got {self.galaxy_table!r}")

    def pdf_options(self) -> dict[str, Any]:
        """The keywords of :func:`evaluate_pdfs` these settings give (and :func:`evaluate_file`
        passes on)."""
        z_bins = self.z_bins if isinstance(self.z_bins, int) else np.asarray(self.z_bins)
        return {"outlier_threshold": self.outlier_threshold, "z_bins": z_bins}


def evaluate_run(
    run: RunDir,
    settings: EvaluationSettings | None = None,
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    catalog: Table | None = None,
    truth: Table | None = None,
) -> dict[str, Any]:
    """Evaluate every method of a run and write the results (default ``<run>/metrics.json``).

    Besides the summary, the coverage curves and the per-bin tables in true redshift,
    the tables come in bins of magnitude and colour (see :func:`bin_variables`) when a
    ``catalog`` is given or the run's ``predict.json`` names a readable data file. With
    ``settings.galaxy_table`` it also writes ``<run>/galaxies.h5``: one row per galaxy
    with id, true redshift, those bin variables, every method's ``<method>.z_phot``,
    ``<method>.pit`` and ``<method>.crps``, and the per-galaxy columns stored with the
    PDFs (CLAP's ``novelty``), read by the dashboards.

    Outputs are checked before any work, so existing files without ``overwrite`` cost
    nothing.

    Parameters
    ----------
    run : RunDir
        The run whose ``pdfs/*.h5`` are scored.
    settings : EvaluationSettings, optional
        Outlier cut, bins and catalog columns; the defaults when None.
    out : path-like, optional
        JSON output; ``<run>/metrics.json`` by default.
    overwrite : bool
        Replace existing outputs.
    catalog : astropy.table.Table, optional
        Catalog with the magnitudes and colours to bin by; by default the data file named by
        the run's ``predict.json``, if readable.
    truth : astropy.table.Table, optional
        Catalog of true redshifts, matched on id, replacing those stored with the PDFs.

    Returns
    -------
    dict
        One :func:`evaluate_pdfs` result per method, as written to ``out``.

    Examples
    --------
    >>> settings = EvaluationSettings(z_bins=4, outlier_threshold=0.15)
    >>> evaluate_run(RunDir("runs/photoz"), settings)  # doctest: +SKIP
    """
    settings = EvaluationSettings() if settings is None else settings
    id_column, galaxy_table = settings.id_column, settings.galaxy_table
    out = Path(out) if out is not None else run.metrics_path
    check_writable(out, overwrite)
    if galaxy_table:
        check_writable(run.galaxy_table_path, overwrite)
    methods = run.methods()
    if not methods:
        raise ValidationError(
            f"{run.root}: no PDFs under {run.pdfs_dir}; run `clapkit predict` first"
        )
    if catalog is None:
        catalog = run_catalog(run)
    results: dict[str, Any] = {}
    table: Table | None = None
    for method in methods:
        path = run.pdf_path(method)
        pdfs, attrs = load_pdfs(path)
        if truth is not None:
            pdfs = attach_truth(pdfs, truth, id_column, settings.z_column)
        elif pdfs.z_true is None:
            raise ValidationError(f"{path}: the file has no z_true; pass a truth catalog")
        if table is None:
            variables = bin_variables(catalog, pdfs.ids, id_column) if catalog is not None else {}
            table = Table({"id": pdfs.ids, "z_true": pdfs.z_true, **variables})
            extra = {name: (values, settings.extra_bins) for name, values in variables.items()}
        elif not np.array_equal(np.asarray(table["id"]), pdfs.ids):
            raise ValidationError(
                f"{path}: its galaxies (ids, in order) differ from those of {methods[0]!r}"
            )
        results[method] = evaluate_pdfs(pdfs, extra_bins=extra, **settings.pdf_options())
        for name, values in per_galaxy_parts(pdfs.p, pdfs.edges, pdfs.z_true).items():
            table[f"{method}.{name}"] = values
        # Per-galaxy values stored with the PDFs (CLAP's novelty percentile is shared by
        # its stages): one column each, from the first file that has it.
        for name, values in attrs["columns"].items():
            if name not in table.colnames:
                table[name] = values
    write_metrics(out, results, overwrite)
    if galaxy_table:
        write_galaxy_table(run.galaxy_table_path, table, overwrite)
    return results


def write_galaxy_table(path: str | os.PathLike, table: Table, overwrite: bool = False) -> Path:
    """Write the per-galaxy table atomically (astropy's HDF5 format, path ``galaxies``)."""
    table = table.copy(copy_data=False)
    table.meta["clapkit_version"] = clapkit.__version__
    with atomic_path(path, overwrite) as tmp:
        table.write(tmp, path="galaxies", format="hdf5", serialize_meta=True, overwrite=True)
    return Path(path)


def read_galaxy_table(path: str | os.PathLike) -> Table:
    """Read a table written by :func:`write_galaxy_table`."""
    try:
        return Table.read(path, path="galaxies", format="hdf5")
    except (OSError, KeyError, ValueError) as err:
        raise FileFormatError(f"{path}: not a clapkit galaxy table ({err})") from err


def write_metrics(
    path: str | os.PathLike, results: Mapping[str, Any], overwrite: bool = False
) -> Path:
    """Write evaluation results as ``{"clapkit_version": ..., "methods": results}``."""
    return write_json(
        path, {"clapkit_version": clapkit.__version__, "methods": dict(results)}, overwrite
    )


def format_table(results: Mapping[str, Mapping[str, Any]], label: str = "method") -> str:
    """One line per method (or bin) with the headline metrics, for the terminal.

    Examples
    --------
    >>> s = {"n": 10, "sigma_mad": 0.01, "bias": 0.0, "outlier_fraction": 0.0, "crps": 0.005,
    ...      "pit_ks": 0.05, "pit_w1": 0.01, "coverage_68": 0.7, "coverage_95": 0.94}
    >>> print(format_table({"knn": {"summary": s}}).splitlines()[0].split())
    ['method', 'N', 'σ_MAD', 'bias', 'outliers', 'CRPS', 'PIT', 'KS', 'PIT', 'W1', 'cov68', 'cov95']
    """
    names = list(results)
    width = max([len(label), *map(len, names)])
    header = f"{label:<{width}}" + "".join(f"{title:>10}" for _, title, _ in TABLE_COLUMNS)
    lines = [header, "-" * len(header)]
    for name in names:
        summary = results[name]["summary"]
        cells = "".join(f"{_cell(summary[key], fmt):>10}" for key, _, fmt in TABLE_COLUMNS)
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def _cell(value: Any, fmt: str) -> str:
    """A formatted number, or '-' for a metric that is undefined (an empty bin)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return format(value, fmt)
