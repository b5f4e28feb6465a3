"""What the translation dashboard reads of a run: ``clapkit translate evaluate``'s output.

For each evaluated task (``translate/<task>/evaluation.json``): the evaluation (metrics of
every translated set and of the real images, noise power spectra), the per-galaxy
morphology tables (``morphology_<set>.h5``), and the images of one galaxy on demand: the
source input and real target from the galaxy file the translations came from, the
translation from ``<set>/translated.h5``. :func:`load_translation` reads the small parts
once per server process (``pn.cache``) and shares them, read-only, with every session;
the image files stay open and one galaxy's images are read when asked for. Nothing is
computed here beyond looking rows up.

A run without an evaluated translation does not raise: :attr:`TranslationData.problems`
says what is missing and which ``clapkit translate`` command makes it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import panel as pn

from clapkit.data import GalaxySet
from clapkit.errors import ClapkitError, FileFormatError
from clapkit.runs import RunDir
from clapkit.translate.results import (
    interval,
    read_evaluation,
    read_morphology,
    result_paths,
    rows_differ,
)
from clapkit.translate.tasks import TASKS, task
from clapkit_app.store import as_id, plain_id

#: The translated sets in the order the dashboard lists them (others follow, sorted):
#: NR-GAN as published, without its noise, its variants, then the other families.
SET_ORDER = (
    "nrgan",
    "nrgan_smooth",
    "nrgan_clapkit",
    "nrgan_pix2pix",
    "nrgan_cyclegan",
    "nrgan_cyclegan_id",
    "swin",
    "srgan",
    "capsule",
    "diffusion",
)
#: The reference row of an evaluation: the real target images.
REAL = "real"


def ordered_sets(names: list[str]) -> list[str]:
    """Translated set names in display order, without the reference row ``real``.

    Examples
    --------
    >>> ordered_sets(["swin", "real", "zeta", "nrgan"])
    ['nrgan', 'swin', 'zeta']
    """
    known = [name for name in SET_ORDER if name in names]
    return known + sorted(n for n in names if n not in SET_ORDER and n != REAL)


@dataclass
class TaskData:
    """One evaluated task of a run.

    Attributes
    ----------
    name, source, target : str
        The task and its source and target instruments.
    evaluation : dict
        :func:`~clapkit.translate.results.read_evaluation`: ``models`` (metrics per set,
        ``real`` included), ``noise_power``, ``bands``, ``data``, ``split``.
    sets : list of str
        The translated sets, in display order (not ``real``).
    morphology : dict of str to DataFrame
        Per set (and ``real``) one row per test galaxy, in ``ids`` order.
    ids : ndarray
        The evaluated galaxies, in the order of every table and image file.
    data_path : Path
        The galaxy file the translations came from.
    translated_paths : dict of str to Path
    """

    name: str
    source: str
    target: str
    evaluation: dict[str, Any] = field(repr=False)
    sets: list[str] = field(default_factory=list)
    morphology: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    ids: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    data_path: Path | None = None
    translated_paths: dict[str, Path] = field(default_factory=dict)
    _rows: pd.Index | None = field(default=None, repr=False)
    _data: GalaxySet | None = field(default=None, repr=False)
    _data_rows: np.ndarray | None = field(default=None, repr=False)
    _translated: dict[str, GalaxySet] = field(default_factory=dict, repr=False)
    # h5py serialises reads; the lock keeps one session's galaxy from interleaving
    # with another's between files.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def bands(self) -> list[str]:
        return list(self.evaluation["bands"])

    @property
    def has_images(self) -> bool:
        """Whether the galaxy file (source and real target images) could be opened."""
        return self._data is not None

    def row_of(self, galaxy_id: Any) -> int | None:
        """Row of ``galaxy_id`` among the evaluated galaxies, None if absent."""
        if self._rows is None:
            return None
        key = as_id(galaxy_id, self._rows)
        if key is None or key not in self._rows:
            return None
        return int(self._rows.get_loc(key))

    def parse_id(self, text: str) -> Any | None:
        """A galaxy id typed by a user, as stored, or None if it is not evaluated here."""
        if self._rows is None:
            return None
        key = as_id(text.strip(), self._rows)
        return plain_id(key) if key is not None and self.row_of(key) is not None else None

    def metric(self, name: str, key: str) -> float:
        """A stored metric of set ``name`` (NaN where None: not finite or not measured)."""
        value = self.evaluation["models"].get(name, {}).get(key)
        return float("nan") if value is None else float(value)

    def interval(self, name: str, key: str) -> tuple[float, float] | None:
        """The bootstrap interval of metric ``key`` of set ``name``; None where the
        evaluation stored none (written before intervals, or a bound not finite)."""
        return interval(self.evaluation["models"].get(name, {}), key)

    def differs_from_real(self, name: str, key: str) -> bool | None:
        """Whether set ``name`` differs from the real images in ``key`` beyond bootstrap
        noise (:func:`clapkit.translate.results.rows_differ`); None for the real images
        themselves and where the intervals needed are missing."""
        if name == REAL or name not in self.evaluation["models"]:
            return None
        return rows_differ(self.evaluation, name, REAL, key)

    def noise_power(self, name: str, band: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``k`` and the noise power of set ``name`` in ``band``, None if not stored."""
        spectra = self.evaluation.get("noise_power", {})
        power = spectra.get(name, {}).get(band)
        if power is None:
            return None
        return np.asarray(spectra["k"], dtype=float), np.asarray(power, dtype=float)

    def images(self, galaxy_id: Any, name: str) -> dict[str, Any] | None:
        """One galaxy's images: ``source``, ``real`` (target grid) and ``translated`` by
        set ``name``, each ``(bands, array (B, H, W))`` or None where a file lacks it;
        None for a galaxy that is not evaluated here."""
        row = self.row_of(galaxy_id)
        if row is None:
            return None
        out: dict[str, Any] = {"source": None, "real": None, "translated": None}
        with self._lock:
            if self._data is not None:
                data_row = int(self._data_rows[row])
                for key, instrument in (("source", self.source), ("real", self.target)):
                    stack = self._data.stacks.get(instrument)
                    if stack is not None:
                        out[key] = (tuple(stack.bands), _read(stack, data_row))
            translated = self._translated.get(name)
            if translated is not None and self.target in translated.stacks:
                stack = translated.stacks[self.target]
                out["translated"] = (tuple(stack.bands), _read(stack, row))
        return out


@dataclass
class TranslationData:
    """What the translation dashboard reads of one run directory.

    Attributes
    ----------
    root : Path
    problems : list of str
        What is missing and how to make it (Markdown); empty for a complete run.
    tasks : dict of str to TaskData
        Each evaluated task, ``s2s`` before ``s2c``.
    """

    root: Path
    problems: list[str] = field(default_factory=list)
    tasks: dict[str, TaskData] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether at least one task is evaluated."""
        return bool(self.tasks)


def _read(stack: Any, row: int) -> np.ndarray:
    return np.asarray(stack.images[row], dtype=np.float32)


def _commands(root: Path, what: str = "train, apply and evaluate") -> str:
    return (
        f"To {what} a translation: `clapkit translate train --model MODEL --task s2c "
        f"--data DATA --run {root}`, then `clapkit translate apply --model MODEL --task s2c "
        f"--data DATA --run {root}` and `clapkit translate evaluate --task s2c --data DATA "
        f"--run {root}`."
    )


def read_translation(root: str | os.PathLike) -> TranslationData:
    """Read what the dashboard needs of a run's translations; never raises for a broken
    run (see :attr:`TranslationData.problems`)."""
    root = Path(root)
    out = TranslationData(root=root)
    if not root.is_dir():
        out.problems.append(
            f"The run directory `{root}` does not exist. Name a run with `--args --run DIR` "
            f"(`clapkit serve --run DIR`) or `CLAPKIT_RUN`. {_commands(root)}"
        )
        return out
    run = RunDir(root)
    for name in TASKS:
        if not run.evaluation_path(name).is_file():
            if run.translated_sets(name):
                out.problems.append(
                    f"Task `{name}` has translated images but no evaluation: run "
                    f"`clapkit translate evaluate --task {name} --data DATA --run {root}`."
                )
            continue
        try:
            out.tasks[name] = _read_task(root, name, out.problems)
        except (ClapkitError, OSError, KeyError, ValueError) as err:
            out.problems.append(
                f"The evaluation of task `{name}` cannot be read ({err}). Run `clapkit "
                f"translate evaluate --task {name} --data DATA --run {root} --overwrite`."
            )
    if not out.tasks and not out.problems:
        out.problems.append(
            f"`{root}` has no evaluated translation (no "
            + " or ".join(f"`{run.evaluation_path(n).relative_to(root).as_posix()}`" for n in TASKS)
            + "). "
            + _commands(root)
        )
    return out


def _read_task(root: Path, name: str, problems: list[str]) -> TaskData:
    evaluation = read_evaluation(root, name)
    spec = task(name)
    sets = ordered_sets(list(evaluation["models"]))
    data = TaskData(name=name, source=spec.source, target=spec.target, evaluation=evaluation)
    data.sets = sets
    redo = f"clapkit translate evaluate --task {name} --data DATA --run {root} --overwrite"
    for set_name in [REAL, *sets]:
        try:
            frame = read_morphology(root, name, set_name).to_pandas()
        except (ClapkitError, OSError) as err:
            problems.append(f"No morphology table of `{set_name}` ({name}): {err}. Run `{redo}`.")
            continue
        if data._rows is None:
            data.ids = frame["id"].to_numpy()
            data._rows = pd.Index(data.ids)
        elif not np.array_equal(frame["id"].to_numpy(), data.ids):
            frame = frame.set_index("id").reindex(data.ids).reset_index()
        data.morphology[set_name] = _readonly(frame)
    run = RunDir(root)
    if data._rows is None:
        raise FileFormatError(f"no morphology table in {run.task_dir(name)}")
    for set_name in sets:
        path = run.translated_path(name, set_name)
        try:
            translated = GalaxySet.load(path)
        except (ClapkitError, OSError) as err:
            problems.append(
                f"The translated images of `{set_name}` ({name}) cannot be opened ({err}). "
                f"Run `clapkit translate apply --model MODEL --task {name} --data DATA "
                f"--run {root}`."
            )
            continue
        if not np.array_equal(np.asarray(translated.ids), data.ids):
            translated.close()
            problems.append(
                f"The translated images of `{set_name}` ({name}) are not of the evaluated "
                f"galaxies; apply the model again and run `{redo}`."
            )
            continue
        data._translated[set_name] = translated
        data.translated_paths[set_name] = path
    _open_data(data, problems)
    return data


def _open_data(data: TaskData, problems: list[str]) -> None:
    """Open the galaxy file the translations came from (source and real images)."""
    path = Path(data.evaluation["data"])
    split = data.evaluation.get("split", "test")
    try:
        galaxies = GalaxySet.load(path)
    except (ClapkitError, OSError) as err:
        problems.append(
            f"The galaxy file of task `{data.name}` cannot be opened ({err}); the source "
            "and real images are not shown."
        )
        return
    labels = np.asarray(galaxies.catalog["split"]).astype(str)
    rows = np.flatnonzero(labels == split)
    if not np.array_equal(np.asarray(galaxies.ids)[rows], data.ids):
        galaxies.close()
        problems.append(
            f"The `{split}` galaxies of `{path}` are not those evaluated for task "
            f"`{data.name}`; the source and real images are not shown. Run `clapkit "
            f"translate evaluate --task {data.name} --data {path} --run RUN --overwrite`."
        )
        return
    data._data, data._data_rows, data.data_path = galaxies, rows, path


def _readonly(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        values = frame[column].to_numpy()
        if isinstance(values, np.ndarray):
            values.flags.writeable = False
    return frame


def _signature(root: Path) -> tuple:
    """Modification times of what :func:`read_translation` reads: a new evaluation while
    the server runs is picked up by the next session."""
    if not root.is_dir():
        return ()
    paths = result_paths(root)
    return tuple((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in paths)


@pn.cache(max_items=4)
def _cached_translation(root: str, signature: tuple) -> TranslationData:
    return read_translation(root)


def load_translation(root: str | os.PathLike) -> TranslationData:
    """:func:`read_translation`, cached per process and shared read-only by every session."""
    root = Path(root)
    return _cached_translation(str(root.resolve()), _signature(root))
