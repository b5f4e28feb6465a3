"""What the stellar-mass dashboard reads of a run: ``clapkit interpret``'s output.

Everything comes from ``RUN/interpret/`` as :mod:`clapkit.interpret.pipeline` wrote it,
read through :mod:`clapkit.interpret.results` (which imports no torch) at the paths of
:class:`~clapkit.runs.RunDir`: the mass estimates of each input set (``mass/metrics.json``
and ``mass/<input set>/prediction.h5``: point estimates and true masses of every galaxy),
the local tests (``causal/local_tests.json``) and the PC graph (``causal/pc.json``, with
its score against the true graph that ``causal/true_graph.json`` records on the mock
survey), the FCI graph (``causal/fci.json``, with the true PAG on the mock) and the local
tests scored against the truth (``causal/local_tests_truth.json``, mock only), the MI
decomposition (``pid/pid.json`` and the per-galaxy terms of
``pid/per_galaxy.h5``) and the attribution maps (``attributions/attributions.h5`` and
``summary.json``). :func:`load_stellar_mass` reads them once per server process
(``pn.cache``) and shares them, read-only, with every session. Nothing is computed here
beyond the PDF means (the library's
:attr:`~clapkit.interpret.results.MassPrediction.point`) and looking rows up.

A run without these results does not raise: :attr:`StellarMassData.problems` says what
is missing and which ``clapkit interpret`` command makes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import panel as pn

from clapkit.errors import ClapkitError
from clapkit.interpret import results
from clapkit.interpret.causal_graph import CausalGraph
from clapkit.interpret.discovery import DiscoveryResult
from clapkit.interpret.fci import PAGResult
from clapkit.interpret.input_sets import ALL_INPUT_SETS
from clapkit.interpret.mass_metric_names import upgrade_mass_metrics
from clapkit.metrics.bootstrap import as_interval
from clapkit.runs import RunDir
from clapkit_app.store import as_id, plain_id

#: The stages of ``clapkit interpret``, in the order they run.
STAGES = ("train", "causal", "pid", "attribute")


def ordered_input_sets(names: list[str]) -> list[str]:
    """Input sets in the library's order (others follow, sorted).

    Examples
    --------
    >>> ordered_input_sets(["images", "zeta", "photometry"])
    ['photometry', 'images', 'zeta']
    """
    known = [name for name in ALL_INPUT_SETS if name in names]
    return known + sorted(n for n in names if n not in ALL_INPUT_SETS)


@dataclass
class MassEstimates:
    """One input set's stellar-mass estimates.

    Attributes
    ----------
    name : str
        The input set.
    ids, true, point : ndarray, shape (N,)
        Every galaxy the model predicted, its catalog log M* and the PDF mean.
    metrics : dict
        ``mass/metrics.json``'s row of this input set (test split); empty if absent.
    intervals : dict
        The bootstrap interval ``(lo, hi)`` of each metric that has one (``<metric>_ci``
        in the file); empty for results stored before them.
    paired : dict
        The paired-bootstrap interval of each metric minus that of the reference input
        set (``paired_differences`` in the file); empty for the reference itself.
    test_rows : ndarray of int or None
        Rows of the test-split galaxies, when the run lists them (see
        :attr:`StellarMassData.test_ids`); None otherwise.
    """

    name: str
    ids: np.ndarray = field(repr=False)
    true: np.ndarray = field(repr=False)
    point: np.ndarray = field(repr=False)
    metrics: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    paired: dict[str, tuple[float, float]] = field(default_factory=dict)
    test_rows: np.ndarray | None = field(default=None, repr=False)

    @property
    def description(self) -> str:
        """What the input set reads, as the library describes it."""
        chosen = ALL_INPUT_SETS.get(self.name)
        return chosen.description if chosen is not None else self.name


@dataclass
class StellarMassData:
    """What the stellar-mass dashboard reads of one run directory.

    Attributes
    ----------
    root : Path
    problems : list of str
        What is missing and how to make it (Markdown); empty for a complete run.
    split : str
        The split ``mass/metrics.json`` was scored on.
    paired_reference : str or None
        The input set the others are compared with, draw by draw (``MassEstimates.paired``);
        None for results stored before the intervals.
    mass : dict of str to MassEstimates
        Each trained input set, in the library's order.
    test_ids : ndarray or None
        The test-split galaxies listed by ``pid/per_galaxy.h5``: where the predictions
        lack their ``split`` (files written before it was stored), these pick the
        test galaxies of the mass scatter.
    causal : CausalGraph or None
        ``causal/local_tests.json``.
    pc : DiscoveryResult or None
        The PC graph of ``causal/pc.json``; ``pc_score`` its stored score against the
        true graph (None unless the data was the mock survey).
    truth : networkx.DiGraph or None
        The true graph recorded in the run (``causal/true_graph.json``,
        :func:`~clapkit.interpret.results.read_true_graph`) restricted to the PC
        columns; None where none is recorded (real data, or a run made before clapkit
        recorded it). ``pc_score_selection``: PC's stored score against what a perfect
        test finds on the selected data (None in runs made before it was stored).
    fci, fci_truth : PAGResult or None
        The FCI graph of ``causal/fci.json`` and the true PAG stored beside it (mock
        survey only); ``fci_score`` the score of one against the other. None in runs
        made before clapkit ran FCI.
    local_truth : dict or None
        ``causal/local_tests_truth.json``: the local tests against what the true graph
        implies (:func:`clapkit.interpret.truth.score_local_tests`); mock survey only.
    pid : dict or None
        ``pid/pid.json``; ``pid_galaxies`` the per-galaxy terms
        (:func:`~clapkit.interpret.results.read_pid_per_galaxy`).
    attributions : dict or None
        :func:`~clapkit.interpret.results.read_attributions`: every method's maps under
        ``per_method`` (one method in runs made before SmoothGrad); ``attribution_summary``
        ``attributions/summary.json``.
    """

    root: Path
    problems: list[str] = field(default_factory=list)
    split: str = "test"
    paired_reference: str | None = None
    mass: dict[str, MassEstimates] = field(default_factory=dict)
    test_ids: np.ndarray | None = field(default=None, repr=False)
    causal: CausalGraph | None = None
    pc: DiscoveryResult | None = field(default=None, repr=False)
    pc_score: dict[str, Any] | None = None
    pc_score_selection: dict[str, Any] | None = None
    truth: nx.DiGraph | None = field(default=None, repr=False)
    fci: PAGResult | None = field(default=None, repr=False)
    fci_truth: PAGResult | None = field(default=None, repr=False)
    fci_score: dict[str, Any] | None = None
    local_truth: dict[str, Any] | None = field(default=None, repr=False)
    pid: dict[str, Any] | None = field(default=None, repr=False)
    pid_galaxies: dict[str, Any] | None = field(default=None, repr=False)
    attributions: dict[str, Any] | None = field(default=None, repr=False)
    attribution_summary: dict[str, Any] | None = field(default=None, repr=False)
    _attribution_rows: pd.Index | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Whether any stellar-mass result is there to show."""
        return bool(self.mass) or any(
            part is not None
            for part in (self.causal, self.pc, self.fci, self.pid, self.attributions)
        )

    @property
    def attribution_ids(self) -> list[Any]:
        """The galaxies with attribution maps, as plain values."""
        if self.attributions is None:
            return []
        return [plain_id(i) for i in self.attributions["ids"]]

    def attribution_row(self, galaxy_id: Any) -> int | None:
        """Row of ``galaxy_id`` in the attribution arrays, None if it has no maps."""
        if self._attribution_rows is None:
            return None
        key = as_id(galaxy_id, self._attribution_rows)
        if key is None or key not in self._attribution_rows:
            return None
        return int(self._attribution_rows.get_loc(key))

    def pid_pairs(self) -> list[str]:
        """The input pairs of the MI decomposition, as stored."""
        return list(self.pid["pairs"]) if self.pid is not None else []


def command(stage: str, root: Path, *extra: str) -> str:
    """The ``clapkit interpret`` command line of ``stage`` on run ``root``.

    Examples
    --------
    >>> command("pid", Path("runs/x"), "--overwrite")
    'clapkit interpret pid --data DATA --run runs/x --overwrite'
    """
    return " ".join(["clapkit interpret", stage, "--data DATA --run", str(root), *extra])


def _commands(root: Path) -> str:
    first, *rest = (f"`{command(stage, root)}`" for stage in STAGES)
    return (
        f"The stellar-mass analysis is made by {first}, then {', '.join(rest[:-1])} and {rest[-1]}."
    )


def read_stellar_mass(root: str | os.PathLike) -> StellarMassData:
    """Read what the dashboard needs of a run's stellar-mass analysis; never raises for
    a broken run (see :attr:`StellarMassData.problems`)."""
    root = Path(root)
    out = StellarMassData(root=root)
    if not root.is_dir():
        out.problems.append(
            f"The run directory `{root}` does not exist. Name a run with `--args --run DIR` "
            f"(`clapkit serve --run DIR`) or `CLAPKIT_RUN`. {_commands(root)}"
        )
        return out
    folder = RunDir(root).interpret_dir
    if not folder.is_dir():
        out.problems.append(
            f"`{root}` has no stellar-mass results (`{_relative(folder, root)}/`). "
            f"{_commands(root)}"
        )
        return out
    _read_pid(out)  # first: its per-galaxy file lists the test galaxies
    _read_mass(out)
    _read_causal(out)
    _read_attributions(out)
    return out


def _relative(path: Path, root: Path) -> str:
    """``path`` as the run's layout names it (e.g. ``interpret/pid/pid.json``)."""
    return path.relative_to(root).as_posix()


def _unreadable(out: StellarMassData, what: str, err: Exception, stage: str) -> None:
    out.problems.append(
        f"The {what} cannot be read ({err}). Run `{command(stage, out.root, '--overwrite')}`."
    )


def _read_mass(out: StellarMassData) -> None:
    root = out.root
    path = RunDir(root).mass_metrics_path
    if not path.is_file():
        out.problems.append(
            f"No stellar-mass model is trained in `{root}` (no `{_relative(path, root)}`). "
            f"Run `{command('train', root)}`."
        )
        return
    try:
        stored = results.read_mass_metrics(root)
        metrics = dict(stored["input_sets"])
    except (ClapkitError, KeyError, TypeError) as err:
        _unreadable(out, "stellar-mass metrics", err, "train")
        return
    out.split = str(stored.get("split", "test"))
    differences = stored.get("paired_differences") or {}
    out.paired_reference = differences.get("reference")
    paired = differences.get("input_sets") or {}
    for name in ordered_input_sets(list(metrics)):
        try:
            prediction = results.read_mass_prediction(root, name)
        except (ClapkitError, OSError, KeyError) as err:
            out.problems.append(
                f"The estimates of input set `{name}` cannot be read ({err}). Run "
                f"`{command('train', root, '--input-sets', name)}`."
            )
            continue
        estimates = MassEstimates(
            name=name,
            ids=_readonly(np.asarray(prediction.ids)),
            true=_readonly(np.asarray(prediction.true, dtype=float)),
            point=_readonly(np.asarray(prediction.point, dtype=float)),
            **_metrics_and_intervals(upgrade_mass_metrics(metrics[name])),
            paired=_intervals(paired.get(name, {})),
        )
        if prediction.split is not None:
            estimates.test_rows = _readonly(np.flatnonzero(prediction.split == out.split))
        elif out.test_ids is not None:
            index = pd.Index(estimates.ids)
            if index.is_unique and np.isin(out.test_ids, estimates.ids).all():
                estimates.test_rows = _readonly(index.get_indexer(out.test_ids))
        out.mass[name] = estimates


def _intervals(row: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """``{metric: [lo, hi]}`` as stored, without the intervals that are not finite."""
    found = {key: as_interval(value) for key, value in row.items()}
    return {key: value for key, value in found.items() if value is not None}


def _metrics_and_intervals(row: dict[str, Any]) -> dict[str, dict]:
    """A stored metrics row split into its numbers and their ``_ci`` intervals."""
    return {
        "metrics": {k: float(v) for k, v in row.items() if not k.endswith("_ci")},
        "intervals": _intervals(
            {k.removesuffix("_ci"): v for k, v in row.items() if k.endswith("_ci")}
        ),
    }


def _read_causal(out: StellarMassData) -> None:
    root = out.root
    run = RunDir(root)
    missing = [path for path in (run.local_tests_path, run.pc_path) if not path.is_file()]
    if missing:
        out.problems.append(
            f"No causal analysis in `{root}` (no `{_relative(missing[0], root)}`). Run "
            f"`{command('causal', root)}`."
        )
    if run.local_tests_path.is_file():
        try:
            out.causal = CausalGraph.load(run.local_tests_path)
        except ClapkitError as err:
            _unreadable(out, "causal graph of the local tests", err, "causal")
    _read_truth_scores(out)
    if not run.pc_path.is_file():
        return
    try:
        stored = results.clapkit_json(run.pc_path)
        out.pc = DiscoveryResult.from_dict(stored["graph"])
        out.pc_score = stored.get("score")
        out.pc_score_selection = stored.get("score_selection")  # absent in older runs
    except (ClapkitError, KeyError, TypeError) as err:
        _unreadable(out, "PC graph", err, "causal")
        return
    if out.pc_score is None:
        return  # nothing was scored, so no truth to draw beside it
    try:
        full = results.read_true_graph(root)
    except ClapkitError as err:
        _unreadable(out, "true graph", err, "causal")
        return
    if full is not None:
        out.truth = _true_graph(out, full)


def _read_truth_scores(out: StellarMassData) -> None:
    """FCI's PAG with the true one, and the local tests against the truth: both optional
    (runs made before clapkit wrote them have neither file)."""
    run = RunDir(out.root)
    if run.fci_path.is_file():
        try:
            stored = results.clapkit_json(run.fci_path)
            out.fci = PAGResult.from_dict(stored["graph"])
            reference = stored.get("reference")
            out.fci_truth = None if reference is None else PAGResult.from_dict(reference)
            out.fci_score = stored.get("score")
        except (ClapkitError, KeyError, TypeError) as err:
            _unreadable(out, "FCI graph", err, "causal")
    if run.local_tests_truth_path.is_file():
        try:
            stored = results.clapkit_json(run.local_tests_truth_path)
            if not isinstance(stored.get("tables"), dict):
                raise TypeError("'tables' is not a mapping")
            out.local_truth = stored
        except (ClapkitError, TypeError) as err:
            _unreadable(out, "local tests scored against the truth", err, "causal")


def _true_graph(out: StellarMassData, full: nx.DiGraph) -> nx.DiGraph | None:
    """The recorded true graph over the PC columns (the induced subgraph)."""
    columns = list(out.pc.columns)
    unknown = [name for name in columns if name not in full]
    if unknown:
        out.problems.append(
            f"PC was run over columns that the recorded true graph lacks ({unknown}); "
            "the true graph is not drawn."
        )
        return None
    truth = nx.DiGraph()
    truth.add_nodes_from(columns)
    truth.add_edges_from(full.subgraph(columns).edges)
    return truth


def _read_pid(out: StellarMassData) -> None:
    root = out.root
    run = RunDir(root)
    if not run.pid_path.is_file():
        out.problems.append(
            f"No MI decomposition in `{root}` (no `{_relative(run.pid_path, root)}`). Run "
            f"`{command('pid', root)}`."
        )
        return
    try:
        pid = results.clapkit_json(run.pid_path)
        pairs = pid["pairs"]
        if not isinstance(pairs, dict):
            raise TypeError("'pairs' is not a mapping")
        galaxies = results.read_pid_per_galaxy(root)
    except (ClapkitError, OSError, KeyError, TypeError) as err:
        _unreadable(out, "MI decomposition", err, "pid")
        return
    out.pid, out.pid_galaxies = pid, galaxies
    out.test_ids = _readonly(np.asarray(galaxies["ids"]))


def _read_attributions(out: StellarMassData) -> None:
    root = out.root
    run = RunDir(root)
    if not run.attribution_summary_path.is_file():
        out.problems.append(
            f"No attribution maps in `{root}` (no "
            f"`{_relative(run.attribution_summary_path, root)}`). "
            f"Run `{command('attribute', root)}`."
        )
        return
    try:
        summary = results.clapkit_json(run.attribution_summary_path)
        arrays = results.read_attributions(root)
    except (ClapkitError, OSError, KeyError) as err:
        _unreadable(out, "attribution maps", err, "attribute")
        return
    for key in ("images", "radii"):
        _readonly(arrays[key])
    for own in arrays["per_method"].values():
        for key in ("maps", "randomised_maps", "profiles"):
            _readonly(own[key])
    out.attributions, out.attribution_summary = arrays, summary
    out._attribution_rows = pd.Index(arrays["ids"])


def _readonly(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


def _signature(root: Path) -> tuple:
    """Modification times of what :func:`read_stellar_mass` reads: new results while the
    server runs are picked up by the next session."""
    if not root.is_dir() or not RunDir(root).interpret_dir.is_dir():
        return ()
    paths = [path for path in results.result_paths(root) if path.is_file()]
    return tuple((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in paths)


@pn.cache(max_items=4)
def _cached_stellar_mass(root: str, signature: tuple) -> StellarMassData:
    return read_stellar_mass(root)


def load_stellar_mass(root: str | os.PathLike) -> StellarMassData:
    """:func:`read_stellar_mass`, cached per process and shared read-only by every session."""
    root = Path(root)
    return _cached_stellar_mass(str(root.resolve()), _signature(root))
