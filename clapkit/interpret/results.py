"""Reading what ``clapkit interpret`` left in a run: numpy, h5py and JSON only.

:mod:`clapkit.interpret.pipeline` computes (and imports torch); this module reads its
results, so that the dashboards and the figures never load torch. Where each file lives
is :class:`~clapkit.runs.RunDir`'s business (``interpret/`` in its layout):

- :class:`MassPrediction` (``mass/<input set>/prediction.h5``, read by
  :func:`read_mass_prediction`) and :func:`read_mass_metrics` (``mass/metrics.json``);
- :func:`read_true_graph`: the generative graph of the data (``causal/true_graph.json``),
  recorded by the causal stage on the mock survey, which the PC graph is scored against;
- :func:`read_pid_per_galaxy` (``pid/per_galaxy.h5``) and :func:`read_attributions`
  (``attributions/attributions.h5``, every method's maps); the JSON summaries through
  :func:`clapkit_json`, each method's randomisation check through
  :func:`randomisation_by_method`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import networkx as nx
import numpy as np
from numpy.typing import NDArray

import clapkit
from clapkit.atomic import atomic_path, write_json
from clapkit.errors import FileFormatError, ValidationError
from clapkit.h5files import mark_complete, open_checked, write_header
from clapkit.interpret.input_sets import ALL_INPUT_SETS, input_set
from clapkit.metrics import bin_centers
from clapkit.runs import RunDir

__all__ = [
    "MassPrediction",
    "clapkit_json",
    "mass_dir",
    "randomisation_by_method",
    "read_attributions",
    "read_mass_metrics",
    "read_mass_prediction",
    "read_pid_per_galaxy",
    "read_prediction",
    "read_true_graph",
    "result_paths",
    "write_true_graph",
]

PREDICTION_FORMAT = "clapkit.interpret.mass_prediction"
PID_FORMAT = "clapkit.interpret.pid"
ATTRIBUTION_FORMAT = "clapkit.interpret.attributions"
#: Version 2 stores the arrays of each method in ``methods/<name>``; version 1 (one
#: method, its arrays at the root) is still read.
ATTRIBUTION_VERSION = 2
#: The arrays stored per attribution method.
METHOD_ARRAYS = ("maps", "randomised_maps", "profiles", "randomised_profiles", "rho")
TRUE_GRAPH_FORMAT = "clapkit.interpret.true_graph"


@dataclass
class MassPrediction:
    """Stellar-mass PDFs and what the interpretation reads of one model.

    Attributes
    ----------
    input_set : str
    ids : ndarray, shape (N,)
    edges : ndarray, shape (B + 1,)
    pdfs : ndarray, shape (N, B)
        CLAP's final PDFs (harmonic mean of the refitted realisations).
    latent : ndarray, shape (N, latent_dim)
        v_A of the first realisation: the space S of the local causal tests.
    true : ndarray, shape (N,)
        Catalog log M* (NaN where unknown).
    split : ndarray of str, shape (N,), optional
        The catalog's ``split`` column, when it has one (the metrics use ``test``).
    """

    input_set: str
    ids: NDArray
    edges: NDArray[np.float64]
    pdfs: NDArray[np.float64]
    latent: NDArray[np.float32]
    true: NDArray[np.float64]
    split: NDArray[np.str_] | None = None

    @property
    def point(self) -> NDArray[np.float64]:
        """PDF means, log M*."""
        return self.pdfs @ bin_centers(self.edges)

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write to HDF5 atomically (``overwrite`` to replace a file)."""
        with atomic_path(path, overwrite=overwrite) as tmp, h5py.File(tmp, "w") as f:
            write_header(f, PREDICTION_FORMAT, 1)
            f.attrs["input_set"] = self.input_set
            for key in ("ids", "edges", "pdfs", "latent", "true"):
                f.create_dataset(key, data=np.asarray(getattr(self, key)))
            if self.split is not None:
                f.create_dataset("split", data=np.asarray(self.split, dtype="S"))
            mark_complete(f)
        return Path(path)


def read_prediction(path: str | os.PathLike) -> MassPrediction:
    """Inverse of :meth:`MassPrediction.save`."""
    with open_checked(Path(path), PREDICTION_FORMAT, 1, "a stellar-mass prediction") as f:
        return MassPrediction(
            input_set=str(f.attrs["input_set"]),
            **{key: f[key][()] for key in ("ids", "edges", "pdfs", "latent", "true")},
            split=f["split"][()].astype(str) if "split" in f else None,
        )


def clapkit_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON result file of the stellar-mass analysis, with a clear error when unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FileFormatError(f"{path}: not a readable result file ({err})") from err


def mass_dir(run: str | os.PathLike, name: str) -> Path:
    """The folder of input set ``name``'s stellar-mass model (unknown sets refused)."""
    return RunDir(run).mass_dir(input_set(name).name)


def read_mass_metrics(run: str | os.PathLike) -> dict[str, Any]:
    """``mass/metrics.json``: ``split`` and the metrics of each trained ``input_sets``."""
    return clapkit_json(RunDir(run).mass_metrics_path)


def read_mass_prediction(run: str | os.PathLike, name: str) -> MassPrediction:
    """The ``prediction.h5`` of a trained input set, or an error saying what to run."""
    path = RunDir(run).mass_prediction_path(input_set(name).name)
    if not path.is_file():
        raise ValidationError(
            f"the {name!r} stellar-mass model is not trained in {run} (no {path}); run "
            f"clapkit interpret train --input-sets {name} first"
        )
    return read_prediction(path)


def write_true_graph(
    run: str | os.PathLike, graph: nx.DiGraph, source: str, overwrite: bool = False
) -> Path:
    """Record the generative graph of the data ``source`` in the run (a node and edge list).

    Parameters
    ----------
    run : path-like
        The run directory; the graph goes to ``interpret/causal/true_graph.json``.
    graph : networkx.DiGraph
        The generative graph (nodes are catalog columns). Its selection node, named by
        ``graph.graph["selection"]`` (:func:`clapkit.sim.graph.true_graph`), is
        recorded as ``"selection"`` if the graph holds that node (a subgraph that
        leaves it out has none).
    source : str
        What data it is the truth of (the GalaxySet's ``meta["source"]``).
    overwrite : bool
        Replace a recorded graph.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> import tempfile
    >>> truth = nx.DiGraph([("z", "mag_r"), ("log_mstar", "mag_r")])
    >>> path = write_true_graph(tempfile.mkdtemp(), truth, "a toy survey")
    >>> sorted(read_true_graph(path.parents[2]).edges)
    [('log_mstar', 'mag_r'), ('z', 'mag_r')]
    """
    selection = graph.graph.get("selection")
    if selection not in graph:
        # A subgraph keeps the attribute but may leave the node out: then it has none.
        selection = None
    record = {
        "format": TRUE_GRAPH_FORMAT,
        "clapkit_version": clapkit.__version__,
        "source": source,
        "nodes": [str(node) for node in graph.nodes],
        "edges": [[str(a), str(b)] for a, b in graph.edges],
        "selection": None if selection is None else str(selection),
    }
    path = RunDir(run).true_graph_path
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, record, overwrite)


def read_true_graph(run: str | os.PathLike) -> nx.DiGraph | None:
    """The generative graph recorded by :func:`write_true_graph`; None where the run has
    none (real data, or a run made before clapkit 0.1.0 recorded it).

    The selection node, where the file names one, is ``graph.graph["selection"]``; files
    written before the selection was recorded have none there.
    """
    path = RunDir(run).true_graph_path
    if not path.is_file():
        return None
    record = clapkit_json(path)
    try:
        if record["format"] != TRUE_GRAPH_FORMAT:
            raise ValueError(f"format {record['format']!r}, expected {TRUE_GRAPH_FORMAT!r}")
        graph = nx.DiGraph()
        graph.add_nodes_from(record["nodes"])
        graph.add_edges_from((a, b) for a, b in record["edges"])
        selection = record.get("selection")
        if selection is not None:
            if selection not in graph:
                raise ValueError(f"the selection node {selection!r} is not one of its nodes")
            graph.graph["selection"] = selection
    except (KeyError, TypeError, ValueError) as err:
        raise FileFormatError(f"{path}: not a true graph ({err})") from err
    return graph


def read_pid_per_galaxy(run: str | os.PathLike) -> dict[str, Any]:
    """The per-galaxy MI terms written by the ``pid`` stage."""
    path = RunDir(run).pid_per_galaxy_path
    with open_checked(path, PID_FORMAT, 1, "per-galaxy MI terms") as f:
        out: dict[str, Any] = {
            "ids": f["ids"][()],
            "galaxy_type": f["galaxy_type"][()].astype(str),
        }
        for pair in f:
            if isinstance(f[pair], h5py.Group):
                out[pair] = {term: f[pair][term][()] for term in f[pair]}
    return out


def read_attributions(run: str | os.PathLike) -> dict[str, Any]:
    """The arrays written by the ``attribute`` stage, for every method it ran.

    Parameters
    ----------
    run : path-like
        The run directory.

    Returns
    -------
    dict
        The arrays shared by the methods (``ids``, ``bands``, ``images``, ``edges``,
        ``radii``, ``galaxy_type``, ``log_mstar``, ``predicted_bin``), ``model``,
        ``methods`` (names in the order computed), ``per_method`` (name to its
        ``maps``, ``randomised_maps``, ``profiles``, ``randomised_profiles`` and
        ``rho``), and ``method``, the first, whose arrays are also under their own
        names at the top level, as in results of one method. Runs made before several
        methods were stored read as runs of their one method.

    Examples
    --------
    >>> arrays = read_attributions("runs/mass")  # doctest: +SKIP
    >>> arrays["methods"], arrays["per_method"]["smoothgrad"]["maps"].shape  # doctest: +SKIP
    (['integrated_gradients', 'saliency', 'smoothgrad'], (32, 5, 16, 16))
    """
    path = RunDir(run).attributions_path
    with open_checked(path, ATTRIBUTION_FORMAT, ATTRIBUTION_VERSION, "attribution maps") as f:
        out: dict[str, Any] = {key: f[key][()] for key in f if isinstance(f[key], h5py.Dataset)}
        out["model"] = str(f.attrs["model"])
        if "methods" in f:
            names = [_text(name) for name in f.attrs["methods"]]
            per_method = {
                name: {key: f["methods"][name][key][()] for key in METHOD_ARRAYS} for name in names
            }
        else:  # version 1: one method, its arrays at the root
            names = [_text(f.attrs["method"])]
            per_method = {names[0]: {key: out.pop(key) for key in METHOD_ARRAYS}}
    out["bands"] = out["bands"].astype(str)
    out["galaxy_type"] = out["galaxy_type"].astype(str)
    out["methods"] = names
    out["per_method"] = per_method
    out["method"] = names[0]
    out.update(per_method[names[0]])
    return out


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def randomisation_by_method(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each method's randomisation check in an attribution ``summary.json``.

    Parameters
    ----------
    summary : dict
        The summary of the ``attribute`` stage (:func:`clapkit_json` of
        :attr:`~clapkit.runs.RunDir.attribution_summary_path`).

    Returns
    -------
    dict
        Method name to ``median_abs_rho``, ``median_rho`` (None where not stored),
        ``verdict`` ("passed", "failed", "inconclusive") and ``threshold``, in the order
        the methods were computed. A summary of one method, written before several were
        checked, gives that method alone.

    Examples
    --------
    >>> old = {"method": "saliency", "randomisation": {"median_abs_rho": 0.1,
    ...        "median_rho": 0.1, "threshold": 0.5, "verdict": "passed"}}
    >>> randomisation_by_method(old)["saliency"]["verdict"]
    'passed'
    """
    check = summary.get("randomisation") or {}
    stored = check.get("per_method")
    if stored is None:
        stored = {summary.get("method", "?"): check} if check else {}
    return {
        name: {
            "median_abs_rho": row.get("median_abs_rho"),
            "median_rho": row.get("median_rho"),
            "verdict": row.get("verdict", "not run"),
            "threshold": row.get("threshold", check.get("threshold")),
        }
        for name, row in stored.items()
    }


def result_paths(run: str | os.PathLike) -> list[Path]:
    """Every file the readers above may read, whether it exists or not (for a cache that
    notices new results)."""
    run = RunDir(run)
    return [
        run.mass_metrics_path,
        *(run.mass_prediction_path(name) for name in ALL_INPUT_SETS),
        run.local_tests_path,
        run.pc_path,
        run.fci_path,
        run.true_graph_path,
        run.local_tests_truth_path,
        run.pid_path,
        run.pid_per_galaxy_path,
        run.attributions_path,
        run.attribution_summary_path,
    ]
