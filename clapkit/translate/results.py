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
from clapkit.runs import RunDir
from clapkit.translate.tasks import TASKS, task

__all__ = ["read_evaluation", "read_morphology", "result_paths", "task_dir"]


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
