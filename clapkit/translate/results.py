"""Reading what ``clapkit translate evaluate`` left in a run: JSON and HDF5 tables only.

:mod:`clapkit.translate.evaluate` computes (and imports torch); this module reads its
results, so that the dashboards and the figures never load torch. Where each file lives
is :class:`~clapkit.runs.RunDir`'s business (``translate/<task>/`` in its layout).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from astropy.table import Table

from clapkit.errors import FileFormatError
from clapkit.metrics.bootstrap import intervals_overlap
from clapkit.metrics.bootstrap import stored_interval as interval
from clapkit.runs import RunDir
from clapkit.translate.tasks import TASKS, task

__all__ = [
    "interval",
    "overlaps_real",
    "read_evaluation",
    "read_morphology",
    "result_paths",
    "rows_differ",
    "task_dir",
]


def task_dir(run: str | os.PathLike, task_name: str) -> Path:
    """Folder of one task's models, translations and evaluation in a run (unknown tasks
    refused).

    Examples
    --------
    >>> task_dir("runs/x", "s2c").as_posix()
    'runs/x/translate/s2c'
    """
    return RunDir(run).task_dir(task(task_name).name)


def read_evaluation(run: str | os.PathLike, task_name: str) -> dict[str, Any]:
    """The stored evaluation of ``task_name`` in ``run``; ``data`` becomes a full path."""
    path = RunDir(run).evaluation_path(task(task_name).name)
    if not path.is_file():
        raise FileFormatError(f"{path}: not evaluated yet; run `clapkit translate evaluate`")
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise FileFormatError(f"{path}: not readable JSON ({err})") from err
    data = Path(result["data"])
    result["data"] = str(data if data.is_absolute() else Path(run) / data)
    return result


def rows_differ(result: dict[str, Any], name_a: str, name_b: str, key: str) -> bool | None:
    """Whether two rows of an evaluation differ in metric ``key`` beyond bootstrap noise.

    When one row is the reference of the stored paired differences (``"real"``), the
    interval of (row − real), computed on the same draws of the same galaxies, decides:
    the rows differ when it excludes 0. Otherwise the two rows' own intervals decide:
    they differ when they do not overlap, a stricter test (unpaired intervals ignore that
    both rows scored the same galaxies).

    Parameters
    ----------
    result : dict
        An evaluation, as :func:`read_evaluation` or
        :func:`clapkit.translate.evaluate.evaluate_task` returns it.
    name_a, name_b : str
        Two rows of ``result["models"]``.
    key : str
        A metric, e.g. ``"photoz_sigma_mad"``.

    Returns
    -------
    bool or None
        None where the intervals needed are missing (an evaluation written before
        intervals, or a bound that is not finite).

    Examples
    --------
    >>> result = {"models": {
    ...     "a": {"psnr": 30.0, "psnr_ci": [29.0, 31.0]},
    ...     "b": {"psnr": 33.0, "psnr_ci": [32.0, 34.0]},
    ...     "c": {"psnr": 30.5, "psnr_ci": [29.5, 31.5]}}}
    >>> rows_differ(result, "a", "b", "psnr"), rows_differ(result, "a", "c", "psnr")
    (True, False)
    """
    paired = result.get("paired_differences") or {}
    reference = paired.get("reference")
    if reference in (name_a, name_b) and name_a != name_b:
        other = name_b if name_a == reference else name_a
        stored = paired.get("models", {}).get(other, {}).get(key)
        if stored is not None and None not in stored:
            return not intervals_overlap(stored, (0.0, 0.0))
    models = result["models"]
    ci_a, ci_b = interval(models[name_a], key), interval(models[name_b], key)
    if ci_a is None or ci_b is None:
        return None
    return not intervals_overlap(ci_a, ci_b)


def overlaps_real(
    result: dict[str, Any], key: str, reference: str = "real"
) -> dict[str, bool | None]:
    """Whether each set's own interval of ``key`` overlaps the real images' interval.

    The issue's test of the redshift-information finding: translated and real σ_MAD
    whose 95% intervals do not overlap differ beyond doubt (stricter than the paired
    difference of :func:`rows_differ`).

    Parameters
    ----------
    result : dict
        An evaluation (:func:`read_evaluation`).
    key : str
        A metric, e.g. ``"peakz_sigma_mad"``.
    reference : str
        The row compared against.

    Returns
    -------
    dict
        Set name → True (overlap), False (disjoint) or None (an interval missing: an
        evaluation made before intervals or before the metric), for every set but the
        reference.

    Examples
    --------
    >>> result = {"models": {
    ...     "real": {"s_ci": [0.02, 0.03]}, "a": {"s_ci": [0.05, 0.07]},
    ...     "b": {"s_ci": [0.025, 0.04]}, "c": {}}}
    >>> overlaps_real(result, "s")
    {'a': False, 'b': True, 'c': None}
    """
    models = result["models"]
    ref = interval(models.get(reference, {}), key)
    out: dict[str, bool | None] = {}
    for name, row in models.items():
        if name == reference:
            continue
        own = interval(row, key)
        out[name] = None if ref is None or own is None else bool(intervals_overlap(own, ref))
    return out


def read_morphology(run: str | os.PathLike, task_name: str, name: str) -> Table:
    """Per-galaxy morphology and probe photo-z of one evaluated set (or ``"real"``)."""
    path = RunDir(run).morphology_path(task(task_name).name, name)
    if not path.is_file():
        raise FileFormatError(f"{path}: missing; run `clapkit translate evaluate`")
    return Table.read(path, path="morphology")


def result_paths(run: str | os.PathLike) -> list[Path]:
    """Every evaluation, morphology table and translated image file of the run's tasks
    that exists (for a cache that notices new results)."""
    run = RunDir(run)
    paths: list[Path] = []
    for name in TASKS:
        paths.append(run.evaluation_path(name))
        paths.extend(run.morphology_paths(name).values())
        paths.extend(run.translated_sets(name).values())
    return [path for path in paths if path.is_file()]
