"""The run directory: where every artefact of a job lives.

A run directory (``data/runs/<name>/``) is the only hand-off between the stages
(train, predict, evaluate) and between the library and the dashboards. :class:`RunDir`
is its one map: every path below is a property or method of it, and no other module
spells a run path::

    <run>/
      manifest.json            clapkit demo: what made the run (kind, config, complete)
      <name>.h5                galaxy files kept in the run (the demo's mock surveys)
      train.json               clapkit train: settings, input spec, each method's status
      predict.json             clapkit predict: the galaxy file, split, timings
      metrics.json             clapkit evaluate: summary metrics and per-bin tables
      galaxies.h5              clapkit evaluate: one row per galaxy and method
      calibration.png          clapkit demo: the PIT and coverage figure
      pdfs/<method>.h5         PDFs of one method on the test galaxies
      models/<method>/         a trained photo-z method (its module owns the contents)
      clap/knn.h5              what the dashboards show of CLAP's adaptive KNN
      .replaced/               while ``clapkit train --overwrite`` runs: the old training
      translate/<task>/        clapkit translate, one folder per task (s2s, s2c)
        <model>/               a translation model (model.json, model.pt, checkpoint.pt)
        <set>/translated.h5    the images a model translated (set: model, nrgan_smooth)
        probe/                 the photo-z probe of the evaluation
        evaluation.json        metrics of every translated set and of the real images
        morphology_<set>.h5    per-galaxy morphology and probe photo-z of a set
      interpret/               clapkit interpret
        mass/metrics.json      σ, bias and PDF metrics of each input set (test split)
        mass/<input set>/      a stellar-mass model (model.json, r<i>/) and prediction.h5
        causal/local_tests.json  the local tests in one model's latent space
        causal/pc.json         the PC graph and, on the mock survey, its score
        causal/fci.json        the FCI PAG and, on the mock survey, the true PAG and score
        causal/true_graph.json the mock survey's true graph (mock survey only)
        causal/local_tests_truth.json  the local tests scored against it (mock only)
        pid/pid.json           the MI decomposition of every input pair
        pid/per_galaxy.h5      its per-galaxy terms
        attributions/attributions.h5  attribution maps of test galaxies
        attributions/summary.json     their summary and the randomisation check

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


def _check_name(name: str, what: str = "method") -> str:
    # A name becomes one path component: no separators, no leading dot (hidden files).
    if not _METHOD_NAME.match(name):
        raise ValidationError(f"{what} name {name!r} must be letters, digits, '_', '.', '-'")
    return name


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
    _check_name(method)
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
    >>> run.clap_details_path.relative_to(run.root).as_posix()
    'clap/knn.h5'
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise ValidationError(f"run {self.root} is a file; a run is a directory")

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    # ------------------------------------------------------------------ photo-z stages

    def data_file(self, name: str) -> Path:
        """A galaxy file kept inside the run, ``<name>.h5`` (the demo keeps its mock
        surveys there): recorded relative to the run, it moves with it."""
        path = self.root / f"{_check_name(name, 'data file')}.h5"
        if path in self.training_artefacts:
            raise ValidationError(f"{path.name} is a run artefact, not a name for a data file")
        return path

    @property
    def manifest_path(self) -> Path:
        """``manifest.json``: what made the run (written by ``clapkit demo``)."""
        return self.root / "manifest.json"

    @property
    def train_record_path(self) -> Path:
        """``train.json``: the photo-z training's settings and each method's status."""
        return self.root / "train.json"

    @property
    def predict_record_path(self) -> Path:
        """``predict.json``: the galaxy file predicted on, its split and the timings."""
        return self.root / "predict.json"

    @property
    def metrics_path(self) -> Path:
        """``metrics.json``: summary metrics and per-bin tables of every method."""
        return self.root / "metrics.json"

    @property
    def galaxy_table_path(self) -> Path:
        """``galaxies.h5``: the per-galaxy table of ``clapkit evaluate``."""
        return self.root / "galaxies.h5"

    @property
    def calibration_figure_path(self) -> Path:
        """``calibration.png``: the demo's PIT and coverage figure."""
        return self.root / "calibration.png"

    @property
    def models_dir(self) -> Path:
        """Folder of the trained photo-z methods."""
        return self.root / "models"

    def model_dir(self, method: str) -> Path:
        """Folder of the trained photo-z method ``method`` (its module owns the contents)."""
        return self.models_dir / _check_name(method)

    @property
    def clap_details_dir(self) -> Path:
        """Folder of what the dashboards show of CLAP."""
        return self.root / "clap"

    @property
    def clap_details_path(self) -> Path:
        """``clap/knn.h5`` (see :mod:`clapkit.photoz.details`)."""
        return self.clap_details_dir / "knn.h5"

    @property
    def replaced_training_dir(self) -> Path:
        """Where ``clapkit train --overwrite`` keeps the previous training's artefacts until
        the new training has finished (see :mod:`clapkit.photoz.training_state`)."""
        return self.root / ".replaced"

    @property
    def training_artefacts(self) -> tuple[Path, ...]:
        """Everything a photo-z training and what follows from it (prediction,
        evaluation, the demo's figure) writes: ``--overwrite`` replaces them together."""
        return (
            self.models_dir,
            self.pdfs_dir,
            self.clap_details_dir,
            self.train_record_path,
            self.predict_record_path,
            self.metrics_path,
            self.galaxy_table_path,
            self.calibration_figure_path,
        )

    # ------------------------------------------------------------------ translation

    @property
    def translate_dir(self) -> Path:
        """Folder of ``clapkit translate``, one subfolder per task."""
        return self.root / "translate"

    def task_dir(self, task: str) -> Path:
        """Folder of one translation task's models, translations and evaluation."""
        return self.translate_dir / _check_name(task, "task")

    def translation_dir(self, task: str, name: str) -> Path:
        """Folder of a translation model, or of a set of translated images, of ``task``."""
        return self.task_dir(task) / _check_name(name, "translation")

    def translated_path(self, task: str, name: str) -> Path:
        """The translated images of set ``name`` of ``task``."""
        return self.translation_dir(task, name) / "translated.h5"

    def translated_sets(self, task: str) -> dict[str, Path]:
        """``{set name: translated images}`` of every translated set of ``task``, sorted."""
        return {
            path.parent.name: path
            for path in sorted(self.task_dir(task).glob("*/translated.h5"))
            if not path.parent.name.startswith(".")
        }

    def probe_dir(self, task: str) -> Path:
        """Folder of the photo-z probe that evaluates the translations of ``task``."""
        return self.task_dir(task) / "probe"

    def evaluation_path(self, task: str) -> Path:
        """``evaluation.json`` of ``task``."""
        return self.task_dir(task) / "evaluation.json"

    def morphology_path(self, task: str, name: str) -> Path:
        """Per-galaxy morphology table of the evaluated set ``name`` (or ``real``)."""
        return self.task_dir(task) / f"morphology_{_check_name(name, 'translation')}.h5"

    def morphology_paths(self, task: str) -> dict[str, Path]:
        """``{set name: morphology table}`` of every evaluated set of ``task``, sorted."""
        prefix = "morphology_"
        return {
            path.stem[len(prefix) :]: path
            for path in sorted(self.task_dir(task).glob(f"{prefix}*.h5"))
        }

    # ------------------------------------------------------------------ stellar mass

    @property
    def interpret_dir(self) -> Path:
        """Folder of ``clapkit interpret``."""
        return self.root / "interpret"

    @property
    def mass_metrics_path(self) -> Path:
        """``interpret/mass/metrics.json``: the metrics of every trained input set."""
        return self.interpret_dir / "mass" / "metrics.json"

    def mass_dir(self, input_set: str) -> Path:
        """Folder of the stellar-mass model of ``input_set``."""
        return self.interpret_dir / "mass" / _check_name(input_set, "input set")

    def mass_prediction_path(self, input_set: str) -> Path:
        """The predictions of the stellar-mass model of ``input_set``."""
        return self.mass_dir(input_set) / "prediction.h5"

    @property
    def causal_dir(self) -> Path:
        """Folder of the causal analysis."""
        return self.interpret_dir / "causal"

    @property
    def local_tests_path(self) -> Path:
        """The causal graph of the local tests."""
        return self.causal_dir / "local_tests.json"

    @property
    def pc_path(self) -> Path:
        """The PC graph over catalog columns and its score against the true graph."""
        return self.causal_dir / "pc.json"

    @property
    def fci_path(self) -> Path:
        """The FCI graph (a PAG) over catalog columns and its score against the truth's."""
        return self.causal_dir / "fci.json"

    @property
    def local_tests_truth_path(self) -> Path:
        """The local tests' verdicts against what the true graph implies (mock only)."""
        return self.causal_dir / "local_tests_truth.json"

    @property
    def true_graph_path(self) -> Path:
        """The true graph of the data's generative process (the mock survey only)."""
        return self.causal_dir / "true_graph.json"

    @property
    def pid_dir(self) -> Path:
        """Folder of the MI decomposition."""
        return self.interpret_dir / "pid"

    @property
    def pid_path(self) -> Path:
        """The MI decomposition of every input pair (sample means, by galaxy type)."""
        return self.pid_dir / "pid.json"

    @property
    def pid_per_galaxy_path(self) -> Path:
        """The per-galaxy terms of the MI decomposition."""
        return self.pid_dir / "per_galaxy.h5"

    @property
    def attributions_dir(self) -> Path:
        """Folder of the attribution maps."""
        return self.interpret_dir / "attributions"

    @property
    def attributions_path(self) -> Path:
        """The attribution maps, profiles and randomisation check of test galaxies."""
        return self.attributions_dir / "attributions.h5"

    @property
    def attribution_summary_path(self) -> Path:
        """The summary of the attribution maps."""
        return self.attributions_dir / "summary.json"

    # ------------------------------------------------------------------ PDFs

    @property
    def pdfs_dir(self) -> Path:
        """Folder of the PDF files, one per method."""
        return self.root / "pdfs"

    def pdf_path(self, method: str) -> Path:
        """Path of the PDF file of ``method``."""
        return self.pdfs_dir / f"{_check_name(method)}.h5"

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
            data = self.read_json(self.predict_record_path)["data"]
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

    def _path(self, name: str | os.PathLike) -> Path:
        if isinstance(name, str):
            return self.root / name
        path = Path(name)
        if not path.is_relative_to(self.root):
            raise ValidationError(f"{path} is not a file of run {self.root}")
        return path

    def write_json(
        self, name: str | os.PathLike, obj: dict[str, Any], overwrite: bool = False
    ) -> Path:
        """Write a JSON file of the run atomically, stamped with the clapkit version.

        ``name`` is a path of this run (e.g. :attr:`metrics_path`) or, as a string, a
        file name relative to its root.
        """
        return write_json(
            self._path(name), {"clapkit_version": clapkit.__version__, **obj}, overwrite
        )

    def read_json(self, name: str | os.PathLike) -> dict[str, Any]:
        """Read a JSON file of the run (see :meth:`write_json` for ``name``); a clear
        error if it is missing or not JSON."""
        path = self._path(name)
        try:
            return json.loads(path.read_text())
        except FileNotFoundError as err:
            raise FileFormatError(f"{path}: missing") from err
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path}: not valid JSON ({err})") from err
