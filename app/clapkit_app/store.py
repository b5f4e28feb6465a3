"""The data store of the dashboards: one run directory, read once per server process.

Everything here reads what the library wrote (see ``clapkit.runs``): ``metrics.json`` and
``galaxies.h5`` (``clapkit evaluate``), ``pdfs/<method>.h5`` and ``clap/knn.h5``
(``clapkit predict``) and the galaxy file the run predicted on (its images and catalog).
The small arrays are loaded once per process by :func:`load_run` (``pn.cache``) and
shared, read-only, by every session; one galaxy's PDFs, images and neighbours are read
from disk when asked for. Nothing is computed here beyond looking rows up.

A run that lacks something does not raise: :attr:`RunData.problems` says what is
missing and which command makes it, and the dashboards show that on the page.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import panel as pn

from clapkit.data import GalaxySet
from clapkit.errors import ClapkitError
from clapkit.evaluation import TABLE_COLUMNS, read_galaxy_table
from clapkit.photoz.details import CLAPDetails, read_clap_details
from clapkit.runs import RunDir

# method_label: re-exported, the pages (and notebooks) import it from here too.
from clapkit_app.methods import METHODS, ordered
from clapkit_app.methods import method_label as method_label

#: The run the app shows when none is named: the one ``make demo`` builds.
DEFAULT_RUN = Path("data") / "runs" / "demo"
#: How the dashboards name each method (:mod:`clapkit_app.methods` holds the names).
METHOD_LABELS = {method: found.label for method, found in METHODS.items()}
BASELINES = (
    "softmax",
    "mcdropout",
    "gmm",
    "ensemble",
    "temperature",
    "knn_photometry",
    "flexzboost",
)
#: Per-bin tables the calibration explorer offers: metrics.json key, label.
BIN_VARIABLES = {"z_true": "true redshift", "mag_r": "r magnitude", "g_r": "colour g − r"}


def run_from_args(argv: Sequence[str]) -> Path:
    """The run directory from ``--run DIR``, else ``CLAPKIT_RUN``, else the demo run.

    Examples
    --------
    >>> run_from_args(["app.py", "--run", "runs/x"])
    PosixPath('runs/x')
    """
    argv = list(argv)
    if "--run" in argv and argv.index("--run") + 1 < len(argv):
        return Path(argv[argv.index("--run") + 1])
    return Path(os.environ.get("CLAPKIT_RUN", DEFAULT_RUN))


@dataclass
class RunData:
    """What the dashboards read of one run directory.

    Attributes
    ----------
    root : Path
    problems : list of str
        What is missing and how to make it (Markdown); empty for a complete run.
    metrics : dict or None
        ``metrics.json``'s ``methods``: per method ``summary``, ``coverage_curve`` and
        ``by_<variable>`` tables.
    methods : list of str
        Methods with PDFs in the dashboards' order (:func:`clapkit_app.methods.ordered`).
    galaxies : DataFrame or None
        ``galaxies.h5``: one row per galaxy (``id``, ``z_true``, ``mag_r``, ``g_r``,
        ``<method>.z_phot``, ``<method>.pit``, ``<method>.crps``, CLAP's ``novelty``),
        in PDF-file order.
    details : CLAPDetails or None
        ``clap/knn.h5``: chosen k, local PIT histograms, 2-D projection, training ids.
    data_path : Path or None
        The galaxy file (images and catalog), when it can be opened.
    """

    root: Path
    problems: list[str] = field(default_factory=list)
    # repr=False: HoloViews names callbacks by printing them, and printing the tables of
    # 100,000 galaxies takes seconds.
    metrics: dict[str, Any] | None = field(default=None, repr=False)
    methods: list[str] = field(default_factory=list)
    galaxies: pd.DataFrame | None = field(default=None, repr=False)
    details: CLAPDetails | None = field(default=None, repr=False)
    data_path: Path | None = None
    edges: np.ndarray | None = field(default=None, repr=False)
    _rows: pd.Index | None = field(default=None, repr=False)
    _data: GalaxySet | None = field(default=None, repr=False)
    _data_rows: pd.Index | None = field(default=None, repr=False)
    _details_rows: pd.Index | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ lookups

    @property
    def ok(self) -> bool:
        """Whether the run has PDFs and their evaluation (the calibration explorer's needs)."""
        return self.metrics is not None and self.galaxies is not None

    def has_galaxy(self, galaxy_id: Any) -> bool:
        """Whether ``galaxy_id`` is one of the run's evaluated galaxies."""
        return self.row_of(galaxy_id) is not None

    def row_of(self, galaxy_id: Any) -> int | None:
        """Row of ``galaxy_id`` in ``galaxies`` (and the PDF files), None if absent."""
        return _lookup(self._rows, galaxy_id)

    def parse_id(self, text: str) -> Any | None:
        """A galaxy id typed by a user, as stored in the run, or None if it is not there."""
        key = as_id(text.strip(), self._rows) if self._rows is not None else None
        return key if key is not None and self.row_of(key) is not None else None

    def pdfs(self, galaxy_id: Any) -> dict[str, np.ndarray]:
        """Probabilities per bin of ``galaxy_id`` for every method (on :attr:`edges`)."""
        row = self.row_of(galaxy_id)
        if row is None:
            raise KeyError(f"galaxy {galaxy_id!r} is not in {self.root}")
        run = RunDir(self.root)
        out = {}
        for method in self.methods:
            with h5py.File(run.pdf_path(method), "r") as f:
                out[method] = f["p"][row]
        return out

    def catalog_row(self, galaxy_id: Any) -> dict[str, Any]:
        """The galaxy's row of the data catalog (empty without the galaxy file)."""
        row = self._data_row(galaxy_id)
        if row is None:
            return {}
        record = self._data.catalog[row]
        return {name: plain_id(record[name]) for name in self._data.catalog.colnames}

    def images(self, galaxy_ids: Sequence[Any]) -> tuple[tuple[str, ...], np.ndarray] | None:
        """Band names and images ``(len(galaxy_ids), bands, H, W)`` of the first stack,
        None without the galaxy file or when an id is not in it."""
        if self._data is None or not self._data.instruments:
            return None
        rows = [self._data_row(i) for i in galaxy_ids]
        if any(r is None for r in rows):
            return None
        stack = self._data.stacks[self._data.instruments[0]]
        # One read per galaxy: h5py's fancy indexing of a few scattered rows costs ~30 ms
        # for 16 galaxies, plain row reads ~0.2 ms (the file is chunked per galaxy).
        out = np.stack([np.asarray(stack.images[row], dtype=np.float32) for row in rows])
        return tuple(stack.bands), out

    def neighbours(self, galaxy_id: Any) -> dict[str, Any] | None:
        """CLAP's chosen neighbours of ``galaxy_id``: training ids and redshifts (nearest
        first), chosen k, the local PIT histogram that chose it, its W1 to uniform and its
        novelty percentile; None without ``clap/knn.h5`` or for a galaxy not in it."""
        if self.details is None:
            return None
        row = self.details_row(galaxy_id)
        if row is None:
            return None
        index = self.details.neighbours(row)
        return {
            "ids": self.details.train_ids[index],
            "z": self.details.train_z[index],
            "k": int(self.details.k[row]),
            "local_pit_hist": self.details.local_pit_hist[row],
            "w1": float(self.details.w1[row]),
            "novelty": float(self.details.novelty[row]),
        }

    def details_row(self, galaxy_id: Any) -> int | None:
        """Row of ``galaxy_id`` in ``details`` (``clap/knn.h5``), None if absent."""
        return _lookup(self._details_rows, galaxy_id)

    def _data_row(self, galaxy_id: Any) -> int | None:
        return _lookup(self._data_rows, galaxy_id)


def _lookup(index: pd.Index | None, galaxy_id: Any) -> int | None:
    """Position of ``galaxy_id`` in an index of ids, None if absent (or no index)."""
    if index is None:
        return None
    key = as_id(galaxy_id, index)
    if key is None or key not in index:
        return None
    return int(index.get_loc(key))


def as_id(value: Any, index: pd.Index) -> Any | None:
    """``value`` converted to the dtype of the stored ids (typed text becomes an int)."""
    if index.dtype.kind in "iu":
        try:
            return int(value)
        except (TypeError, ValueError):
            return None
    return str(value)


def plain_id(value: Any) -> Any:
    """A stored id or catalog value (NumPy scalar or bytes) as a plain Python value."""
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if hasattr(value, "item") else value


def _readonly(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        values = frame[column].to_numpy()
        if isinstance(values, np.ndarray):
            values.flags.writeable = False
    return frame


def read_run(root: str | os.PathLike) -> RunData:
    """Read what the dashboards need of a run; never raises for a broken run (see
    :attr:`RunData.problems`)."""
    root = Path(root)
    data = RunData(root=root)
    if not root.is_dir():
        data.problems.append(
            f"The run directory `{root}` does not exist. Build the demo run with "
            "`make demo` (or `clapkit demo --no-serve`), or name a run with "
            "`--args --run DIR` (`clapkit serve --run DIR`) or `CLAPKIT_RUN`."
        )
        return data
    run = RunDir(root)
    data.methods = ordered(run.methods())
    if not data.methods:
        data.problems.append(
            f"`{root}` has no PDFs (nothing in `{run.pdfs_dir.relative_to(root).as_posix()}/`). "
            "Train and predict: "
            f"`clapkit train --data DATA --run {root}` then "
            f"`clapkit predict --run {root} --data DATA`."
        )
        return data
    data.edges = _read_edges(run, data)
    if not data.methods:
        return data
    try:
        data.metrics = checked_metrics(run.read_json(run.metrics_path), data.methods)
        table = read_galaxy_table(run.galaxy_table_path)
    except (ClapkitError, OSError, KeyError) as err:
        data.metrics = None
        data.problems.append(
            f"`{root}` has PDFs but no complete evaluation ({err}). "
            f"Run `clapkit evaluate --run {root} --overwrite`."
        )
    else:
        missing = [m for m in data.methods if m not in data.metrics]
        if missing:
            data.problems.append(
                f"The evaluation of `{root}` is older than its PDFs (no metrics for "
                f"{missing}). Run `clapkit evaluate --run {root} --overwrite`."
            )
            data.methods = [m for m in data.methods if m in data.metrics]
        frame = table.to_pandas()
        data.galaxies = _readonly(frame)
        data._rows = pd.Index(frame["id"])
    missing_baselines = [m for m in BASELINES if m not in data.methods]
    if len(missing_baselines) == len(BASELINES):
        data.problems.append(
            f"`{root}` has no baselines to compare CLAP with. Train them with "
            f"`clapkit train --data DATA --run {root} --method all`, then predict."
        )
    try:
        data.details = read_clap_details(run.clap_details_path)
        data._details_rows = pd.Index(data.details.ids)
    except (ClapkitError, OSError) as err:
        data.problems.append(
            f"No CLAP neighbours in `{root}` ({err}): the neighbour browser needs CLAP. "
            f"Run `clapkit train --data DATA --run {root} --method clap` and "
            f"`clapkit predict --run {root} --data DATA`."
        )
    path = run.data_path()
    if path is None:
        data.problems.append(
            f"`{run.predict_record_path}` names no galaxy file, so no images or catalog rows "
            "are shown. Predict with `clapkit predict`."
        )
    else:
        try:
            data._data = GalaxySet.load(path)
        except (ClapkitError, OSError) as err:
            data.problems.append(
                f"The galaxy file of this run cannot be opened ({err}); images and "
                "catalog rows are not shown."
            )
        else:
            data.data_path = path
            data._data_rows = pd.Index(np.asarray(data._data.catalog["id"]))
    return data


def checked_metrics(payload: Any, methods: Sequence[str]) -> dict[str, Any]:
    """``metrics.json``'s per-method results, checked before any page reads them.

    Raises :class:`~clapkit.errors.ClapkitError` saying what is wrong: no ``methods``
    mapping, a method without a complete ``summary``, or results of none of this run's
    ``methods`` (a file copied from another run).

    Examples
    --------
    >>> checked_metrics({"methods": None}, ["clap"])
    Traceback (most recent call last):
    ...
    clapkit.errors.ClapkitError: metrics.json has no per-method results
    """
    results = payload.get("methods") if isinstance(payload, dict) else None
    if not isinstance(results, dict) or not results:
        raise ClapkitError("metrics.json has no per-method results")
    for method, result in results.items():
        summary = result.get("summary") if isinstance(result, dict) else None
        if not isinstance(summary, dict):
            raise ClapkitError(f"metrics.json has no summary for {method!r}")
        missing = [key for key, _, _ in TABLE_COLUMNS if key not in summary]
        if missing:
            raise ClapkitError(f"metrics.json's summary of {method!r} lacks {missing}")
    if not set(results) & set(methods):
        raise ClapkitError(
            f"metrics.json is of another run: it scores {sorted(results)[:5]}, this run "
            f"has PDFs of {list(methods)[:5]}"
        )
    return results


def _read_edges(run: RunDir, data: RunData) -> np.ndarray | None:
    """The redshift bin edges, from the first readable PDF file; unreadable files (a
    copy cut short, say) are left out of ``data.methods`` with a problem each."""
    edges = None
    readable = []
    for method in data.methods:
        try:
            with h5py.File(run.pdf_path(method), "r") as f:
                method_edges = f["edges"][()]
        except (OSError, KeyError) as err:
            data.problems.append(
                f"The PDF file of {method} cannot be read (`{run.pdf_path(method)}`: "
                f"{' '.join(str(err).split())}). Predict again: `clapkit predict --run "
                f"{run.root} --data DATA --overwrite`."
            )
            continue
        if edges is None:
            edges = method_edges
        readable.append(method)
    data.methods = readable
    return edges


def _signature(root: Path) -> tuple:
    """Modification times of what :func:`read_run` reads: a new prediction or evaluation
    while the server runs is picked up by the next session."""
    if not root.is_dir():
        return ()
    run = RunDir(root)
    paths = (run.metrics_path, run.galaxy_table_path, run.predict_record_path)
    paths += (run.clap_details_path,)
    return tuple(path.stat().st_mtime_ns if path.exists() else 0 for path in paths)


@pn.cache(max_items=4)
def _cached_run(root: str, signature: tuple) -> RunData:
    return read_run(root)


def load_run(root: str | os.PathLike) -> RunData:
    """:func:`read_run`, cached per process and shared read-only by every session."""
    root = Path(root)
    return _cached_run(str(root.resolve()), _signature(root))
