"""The results of the local causal tests: one test, and the causal graph they fill.

:class:`LocalTestResult` is one sample-level test of an external variable against the
target inside the neighbourhoods of a latent space (see
:mod:`clapkit.interpret.local_tests`); :class:`CausalGraph` holds the nodes of the
published graph (X_in the model input, S its latent space, Y the target, X_ex the
external variables) with every tested X_ex–Y edge, converts them to :mod:`networkx`,
and saves them as JSON.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import NDArray

from clapkit.atomic import write_json
from clapkit.errors import FileFormatError, ValidationError

ROLES = ("X_in", "S", "Y", "X_ex")
VERDICTS = ("dependent", "independent")
#: How conditioning variables are regressed out in a neighbourhood: with their squares
#: (as published, the default) or alone.
REGRESSIONS = ("quadratic", "linear")
#: How neighbourhoods are chosen: disjoint ones with a permutation baseline (the default,
#: calibrated) or, as published, one around every galaxy (see
#: :mod:`clapkit.interpret.local_tests`).
NEIGHBOURHOODS = ("disjoint", "overlapping")
#: Weights of a neighbourhood's members in its correlation: none (equal), or a Gaussian
#: kernel of the latent distance to the centre
#: (:func:`clapkit.interpret.neighbourhood_stats.distance_weights`).
WEIGHTS = ("none", "distance")

_FORMAT = "clapkit.causal_graph"
_FORMAT_VERSION = 1
#: Keys of a stored result added after version 1 was first written: optional on reading.
_LATER_KEYS = (
    "regression",
    "p_adjusted",
    "neighbourhoods",
    "weights",
    "cell_size",
    "pred_efficiency",
    "pred_efficiency_spread",
    "centre_pred_efficiency",
    "effect_permuted",
    "centre_r_permuted",
)
#: Optional per-centre arrays: None, or one value per centre.
_OPTIONAL_ARRAYS = ("centre_pred_efficiency", "centre_r_permuted")
#: Optional numbers: None, or a float.
_OPTIONAL_FLOATS = ("p_adjusted", "pred_efficiency", "pred_efficiency_spread", "effect_permuted")


@dataclass(frozen=True, eq=False)
class LocalTestResult:
    """The outcome of one local test over a sample.

    Attributes
    ----------
    effect : float
        Mean over centres of the (partial) correlation of target and external variable
        within each neighbourhood.
    effect_err : float
        Disjoint neighbourhoods: standard error of that mean (sample standard deviation
        over centres / √C). Overlapping ones, whose centres are not independent: the
        standard deviation of the mean under the latent-cell permutation null.
    p_value : float
        Two-sided permutation p-value of the mean (raw): within each neighbourhood for
        disjoint ones, within coarse latent cells for overlapping ones.
    verdict : str
        ``"dependent"`` if the p-value that decides (``p_adjusted`` when there is one,
        else ``p_value``) is below ``alpha``, else ``"independent"``.
    alpha : float
        Significance level of the verdict.
    conditioned_on : tuple of str
        Names of the variables regressed out in each neighbourhood; empty when
        unconditional.
    adjust_latent : bool
        Whether the latent coordinates were also regressed out in each neighbourhood.
    k, n_centres, n_permutations, seed : int
        Neighbourhood size, number of neighbourhoods (every galaxy when overlapping),
        permutations and seed.
    centres : ndarray of int64, shape (n_centres,)
        Row of each centre galaxy.
    centre_r : ndarray of float64, shape (n_centres,)
        Correlation within each neighbourhood (0 where a residual had no variance).
    centre_p : ndarray of float64, shape (n_centres,)
        Two-sided permutation p-value of each neighbourhood on its own (not corrected
        for multiple testing).
    regression : {"quadratic", "linear"}
        How the conditioning variables were regressed out (see
        :mod:`clapkit.interpret.local_tests`); results stored before the choice existed
        read as ``"linear"``, what they were.
    p_adjusted : float or None
        ``p_value`` adjusted for the multiple tests of its run (Benjamini–Hochberg);
        None for a test run alone and for results stored before the adjustment.
    neighbourhoods : {"disjoint", "overlapping"}
        How the neighbourhoods were chosen; older results read as ``"disjoint"``.
    weights : {"none", "distance"}
        Weights of the members in each correlation; older results read as ``"none"``.
    cell_size : int or None
        Mean size of the latent cells of the overlapping scheme's null; None otherwise.
    pred_efficiency, pred_efficiency_spread : float or None
        Mean and standard deviation over neighbourhoods of the predictive efficiency:
        the share of the target's variance a quadratic fit on the external variable
        explains, both after the conditioning variables are regressed out (as
        published); None in older results.
    centre_pred_efficiency : ndarray of float64, shape (n_centres,), or None
        The predictive efficiency of each neighbourhood.
    effect_permuted : float or None
        Overlapping scheme only: the published summary of the null, the mean over
        galaxies of the correlation after one permutation within each neighbourhood
        (weighted resampling of both variables with weights), beside ``effect``.
    centre_r_permuted : ndarray of float64, shape (n_centres,), or None
        Overlapping scheme only: those per-galaxy permuted correlations.
    """

    effect: float
    effect_err: float
    p_value: float
    verdict: str
    alpha: float
    conditioned_on: tuple[str, ...]
    adjust_latent: bool
    k: int
    n_centres: int
    n_permutations: int
    seed: int
    centres: NDArray[np.int64] = field(repr=False)
    centre_r: NDArray[np.float64] = field(repr=False)
    centre_p: NDArray[np.float64] = field(repr=False)
    regression: str = "linear"
    p_adjusted: float | None = None
    neighbourhoods: str = "disjoint"
    weights: str = "none"
    cell_size: int | None = None
    pred_efficiency: float | None = None
    pred_efficiency_spread: float | None = None
    centre_pred_efficiency: NDArray[np.float64] | None = field(default=None, repr=False)
    effect_permuted: float | None = None
    centre_r_permuted: NDArray[np.float64] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValidationError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        for name, choices in (
            ("regression", REGRESSIONS),
            ("neighbourhoods", NEIGHBOURHOODS),
            ("weights", WEIGHTS),
        ):
            if getattr(self, name) not in choices:
                raise ValidationError(
                    f"{name} must be one of {choices}, got {getattr(self, name)!r}"
                )
        for name in _OPTIONAL_FLOATS:
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        if self.cell_size is not None:
            object.__setattr__(self, "cell_size", int(self.cell_size))
        object.__setattr__(self, "conditioned_on", tuple(str(c) for c in self.conditioned_on))
        object.__setattr__(self, "centres", np.asarray(self.centres, dtype=np.int64))
        arrays = ["centres", "centre_r", "centre_p"]
        for name in ("centre_r", "centre_p", *_OPTIONAL_ARRAYS):
            if name in _OPTIONAL_ARRAYS and getattr(self, name) is None:
                continue
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
            arrays.append(name)
        for name in arrays:
            if getattr(self, name).shape != (self.n_centres,):
                raise ValidationError(
                    f"{name} must have shape ({self.n_centres},), got {getattr(self, name).shape}"
                )

    @property
    def significant(self) -> bool:
        """Whether the verdict is ``"dependent"``."""
        return self.verdict == "dependent"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: plain floats, ints, lists and strings.

        Examples
        --------
        >>> r = LocalTestResult(0.1, 0.02, 0.001, "dependent", 0.05, ("z",), False, 50, 1,
        ...                     999, 0, [7], [0.1], [0.2])
        >>> r.to_dict()["conditioned_on"], r.to_dict()["centres"]
        (['z'], [7])
        >>> LocalTestResult.from_dict(r.to_dict()).to_dict() == r.to_dict()
        True
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray | tuple):
                value = list(value.tolist() if isinstance(value, np.ndarray) else value)
            elif isinstance(value, np.generic):
                value = value.item()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LocalTestResult:
        """Inverse of :meth:`to_dict`; unknown or missing keys are refused.

        Only the keys added later may be missing, as in results stored before they
        existed: ``regression`` reads as ``"linear"``, ``neighbourhoods`` as
        ``"disjoint"``, ``weights`` as ``"none"`` and the rest as None.
        """
        if not isinstance(data, Mapping):
            raise ValidationError(
                f"a local test result must be a mapping, got {type(data).__name__}"
            )
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        missing = [name for name in known if name not in data and name not in _LATER_KEYS]
        if unknown or missing:
            raise ValidationError(
                f"a local test result needs exactly the keys {known}; "
                f"unknown {unknown}, missing {missing}"
            )
        try:
            return cls(
                **{
                    **data,
                    "effect": float(data["effect"]),
                    "effect_err": float(data["effect_err"]),
                    "p_value": float(data["p_value"]),
                    "alpha": float(data["alpha"]),
                    "adjust_latent": bool(data["adjust_latent"]),
                    **{n: int(data[n]) for n in ("k", "n_centres", "n_permutations", "seed")},
                }
            )
        except (TypeError, ValueError) as err:
            if isinstance(err, ValidationError):
                raise
            raise ValidationError(f"malformed local test result ({err})") from err


class CausalGraph:
    """Nodes with roles and the local tests of external variables against the target.

    Parameters
    ----------
    nodes : mapping
        ``{"X_in": name, "S": name, "Y": name, "X_ex": [names...]}``: the model input,
        the latent space, the target and the external variables. ``X_ex`` may be left
        out; tested variables are added to it.

    Examples
    --------
    >>> graph = CausalGraph({"X_in": "images", "S": "latent", "Y": "log_mstar"})
    >>> result = LocalTestResult(0.3, 0.05, 0.001, "dependent", 0.05, (), False, 50, 1,
    ...                          999, 0, [4], [0.3], [0.01])
    >>> graph.add_test("hlr", result)
    >>> [(e["source"], e["target"], e["verdict"]) for e in graph.edges]
    [('hlr', 'log_mstar', 'dependent')]
    >>> sorted(graph.to_networkx().edges)
    [('hlr', 'log_mstar'), ('images', 'latent'), ('latent', 'log_mstar')]
    >>> CausalGraph.from_dict(graph.to_dict()).to_dict() == graph.to_dict()
    True
    """

    def __init__(self, nodes: Mapping[str, str | Sequence[str]]) -> None:
        if not isinstance(nodes, Mapping):
            raise ValidationError(f"nodes must be a mapping of roles, got {type(nodes).__name__}")
        unknown = sorted(set(nodes) - set(ROLES))
        missing = [role for role in ROLES[:3] if role not in nodes]
        if unknown or missing:
            raise ValidationError(
                f"nodes must map the roles {list(ROLES)} (X_ex optional) to names; "
                f"unknown {unknown}, missing {missing}"
            )
        roles: dict[str, Any] = {}
        for role in ROLES[:3]:
            if not isinstance(nodes[role], str) or not nodes[role]:
                raise ValidationError(f"node {role} must be a name, got {nodes[role]!r}")
            roles[role] = nodes[role]
        ex = nodes.get("X_ex", [])
        if (
            isinstance(ex, str)
            or not isinstance(ex, Sequence)
            or not all(isinstance(v, str) and v for v in ex)
        ):
            raise ValidationError(f"node X_ex must be a list of names, got {ex!r}")
        roles["X_ex"] = list(ex)
        names = [roles["X_in"], roles["S"], roles["Y"], *roles["X_ex"]]
        if len(set(names)) != len(names):
            raise ValidationError(f"node names must be distinct, got {names}")
        self._nodes = roles
        self._tests: dict[tuple[str, tuple[str, ...]], LocalTestResult] = {}

    @property
    def nodes(self) -> dict[str, Any]:
        """Role → name (a list of names for ``X_ex``), a copy."""
        return {**self._nodes, "X_ex": list(self._nodes["X_ex"])}

    @property
    def target(self) -> str:
        """Name of the target node Y."""
        return self._nodes["Y"]

    def add_test(self, source: str, result: LocalTestResult, *, replace: bool = False) -> None:
        """Record the test of external variable ``source`` against the target.

        A test is identified by its source and conditioning variables; recording one
        that exists raises unless ``replace``. A new source joins ``X_ex``.
        """
        if not isinstance(result, LocalTestResult):
            raise ValidationError(f"result must be a LocalTestResult, got {type(result).__name__}")
        if not isinstance(source, str) or not source:
            raise ValidationError(f"source must be a node name, got {source!r}")
        if source in (self._nodes["X_in"], self._nodes["S"], self._nodes["Y"]):
            raise ValidationError(
                f"source {source!r} is not an external variable: it is the "
                f"{_role_of(self._nodes, source)} node"
            )
        key = (source, result.conditioned_on)
        if key in self._tests and not replace:
            raise ValidationError(
                f"the test of {source!r} conditioned on {list(result.conditioned_on)} is "
                "already recorded; pass replace=True to replace it"
            )
        if source not in self._nodes["X_ex"]:
            self._nodes["X_ex"].append(source)
        self._tests[key] = result

    def result(self, source: str, conditioned_on: Sequence[str] = ()) -> LocalTestResult:
        """The recorded test of ``source`` with the given conditioning variables."""
        key = (source, tuple(conditioned_on))
        if key not in self._tests:
            raise ValidationError(
                f"no test of {source!r} conditioned on {list(conditioned_on)}; recorded: "
                f"{[(s, list(c)) for s, c in self._tests]}"
            )
        return self._tests[key]

    @property
    def edges(self) -> list[dict[str, Any]]:
        """One row per recorded test, in the order added: source, target, conditioning,
        how it was regressed out, effect, its error, raw and adjusted p-values (None when
        not adjusted), verdict, significance, latent adjustment, k, number of centres,
        neighbourhood scheme, weights, the mean and spread of the predictive efficiency
        and the published permuted mean (None where not stored)."""
        return [
            {
                "source": source,
                "target": self.target,
                "conditioned_on": list(cond),
                "regression": r.regression,
                "effect": r.effect,
                "effect_err": r.effect_err,
                "p_value": r.p_value,
                "p_adjusted": r.p_adjusted,
                "verdict": r.verdict,
                "significant": r.significant,
                "adjust_latent": r.adjust_latent,
                "k": r.k,
                "n_centres": r.n_centres,
                "neighbourhoods": r.neighbourhoods,
                "weights": r.weights,
                "pred_efficiency": r.pred_efficiency,
                "pred_efficiency_spread": r.pred_efficiency_spread,
                "effect_permuted": r.effect_permuted,
            }
            for (source, cond), r in self._tests.items()
        ]

    def to_networkx(self) -> nx.DiGraph:
        """A directed graph: X_in → S → Y structurally, and X_ex → Y for each tested variable.

        Every node has a ``role``. Structural edges have ``kind="structural"``. A tested
        edge (``kind="tested"``; the test is symmetric, the direction a convention) carries
        ``tests``, the rows of :attr:`edges` for that variable, and, from the test with
        the most conditioning variables (the first added among equals): ``strength``
        (``|effect|``), ``effect``, ``effect_err``, ``p_value``, ``p_adjusted``,
        ``significant``, ``verdict`` and ``conditioned_on``. Untested X_ex nodes have no edge.
        """
        g = nx.DiGraph()
        for role in ROLES[:3]:
            g.add_node(self._nodes[role], role=role)
        for name in self._nodes["X_ex"]:
            g.add_node(name, role="X_ex")
        g.add_edge(self._nodes["X_in"], self._nodes["S"], kind="structural")
        g.add_edge(self._nodes["S"], self.target, kind="structural")
        rows: dict[str, list[dict[str, Any]]] = {}
        for row in self.edges:
            rows.setdefault(row["source"], []).append(row)
        for source, tests in rows.items():
            head = max(tests, key=lambda row: len(row["conditioned_on"]))
            g.add_edge(
                source,
                self.target,
                kind="tested",
                strength=abs(head["effect"]),
                **{
                    key: head[key]
                    for key in (
                        "effect",
                        "effect_err",
                        "p_value",
                        "p_adjusted",
                        "significant",
                        "verdict",
                        "conditioned_on",
                    )
                },
                tests=tests,
            )
        return g

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with every test's per-centre values."""
        return {
            "format": _FORMAT,
            "format_version": _FORMAT_VERSION,
            "nodes": self.nodes,
            "tests": [
                {"source": source, "target": self.target, "result": r.to_dict()}
                for (source, _), r in self._tests.items()
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CausalGraph:
        """Inverse of :meth:`to_dict`; anything else raises :class:`ValidationError`."""
        if not isinstance(data, Mapping):
            raise ValidationError(f"a causal graph must be a mapping, got {type(data).__name__}")
        if data.get("format") != _FORMAT:
            raise ValidationError(
                f"not a clapkit causal graph (format {data.get('format')!r}, expected {_FORMAT!r})"
            )
        if data.get("format_version") != _FORMAT_VERSION:
            raise ValidationError(
                f"unsupported causal graph version {data.get('format_version')!r}; "
                f"this clapkit reads version {_FORMAT_VERSION}"
            )
        unknown = sorted(set(data) - {"format", "format_version", "nodes", "tests"})
        if unknown or "nodes" not in data or not isinstance(data.get("tests"), list):
            raise ValidationError(
                "a causal graph needs 'nodes' and a list of 'tests'"
                + (f"; unknown keys {unknown}" if unknown else "")
            )
        graph = cls(data["nodes"])
        for i, test in enumerate(data["tests"]):
            if not isinstance(test, Mapping) or set(test) != {"source", "target", "result"}:
                raise ValidationError(f"test {i} must have exactly 'source', 'target', 'result'")
            if test["target"] != graph.target:
                raise ValidationError(
                    f"test {i} targets {test['target']!r}, but the target node is {graph.target!r}"
                )
            graph.add_test(test["source"], LocalTestResult.from_dict(test["result"]))
        return graph

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write as JSON atomically; an existing file raises unless ``overwrite``."""
        return write_json(path, self.to_dict(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> CausalGraph:
        """Read a graph written by :meth:`save`.

        Raises
        ------
        FileFormatError
            If the file is missing, not JSON, or not a clapkit causal graph.
        """
        path = Path(path)
        if not path.is_file():
            raise FileFormatError(f"{path}: no such file")
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise FileFormatError(
                f"{path}: not JSON; expected a causal graph written by clapkit ({err})"
            ) from err
        try:
            return cls.from_dict(data)
        except ValidationError as err:
            raise FileFormatError(f"{path}: {err}") from err

    def __repr__(self) -> str:
        dependent = sum(r.significant for r in self._tests.values())
        return (
            f"CausalGraph(Y={self.target!r}, X_ex={self._nodes['X_ex']}, "
            f"{len(self._tests)} tests, {dependent} dependent)"
        )


def _role_of(nodes: Mapping[str, Any], name: str) -> str:
    return next(role for role in ROLES[:3] if nodes[role] == name)
