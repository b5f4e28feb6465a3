"""What a photo-z training owns in a run directory, and how it is replaced safely.

``<run>/train.json`` records the clapkit version, the settings and, per method, whether
it finished: a second ``clapkit train`` with the same settings resumes. Replacing a
training (``--overwrite``) or abandoning a failed one must never lose what was there
before the new one is known to be good, so:

- every setting and input is checked before the run directory is touched (in
  :func:`clapkit.photoz.pipeline.train_run`);
- ``--overwrite`` first *moves* the old training's artefacts into ``<run>/.replaced/``
  (renames, atomic on one file system); they are deleted only when the new training
  finishes, and moved back if it fails or is interrupted;
- a fresh training that fails before any method finished leaves nothing behind (no
  ``train.json`` that would refuse the corrected rerun). An interrupted one (Ctrl-C)
  keeps its checkpoints and resumes.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clapkit
from clapkit.errors import ValidationError
from clapkit.runs import RunDir


class TrainingRun:
    """The training state of a run directory (``train.json``)."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.path = run.train_record_path

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> dict[str, Any]:
        record = self.run.read_json(self.path)
        version = record.get("clapkit_version")
        if version != clapkit.__version__:
            raise ValidationError(
                f"{self.run.root} was trained with clapkit {version}, this is "
                f"{clapkit.__version__}; train it again (--overwrite)"
            )
        return record

    def write(self, record: dict[str, Any]) -> None:
        self.run.write_json(self.path, record, overwrite=True)


def _present(run: RunDir) -> list[Path]:
    """The training artefacts (:attr:`~clapkit.runs.RunDir.training_artefacts`) in the run."""
    return [path for path in run.training_artefacts if path.exists()]


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


@contextlib.contextmanager
def replacing_training(run: RunDir, replace: bool) -> Iterator[None]:
    """Set the old training aside (``replace``) or guard a fresh one, for the ``with`` body.

    With ``replace``, the training artefacts present are moved into ``<run>/.replaced/``
    (a backup already there, left by a killed replacement, is kept: it is the last
    complete training, and what is in the run is the killed attempt, which is removed).
    Without it, a training that starts with no ``train.json`` is *fresh*.

    When the body succeeds the backup is deleted. When it raises, a replacement moves the
    backup back (whatever the new attempt wrote is removed first); a fresh training that
    failed with an error (not an interruption) and finished no method is removed, so that
    a corrected rerun is not refused.
    """
    backup = run.replaced_training_dir
    fresh = not run.train_record_path.exists()
    if replace:
        if backup.is_dir():
            _remove(_present(run))
        else:
            moving = _present(run)
            if moving:
                backup.mkdir(parents=True)
                for path in moving:
                    path.rename(backup / path.name)
    try:
        yield
    except BaseException as err:
        if replace and backup.is_dir():
            _remove(_present(run))
            for item in backup.iterdir():
                item.rename(run.root / item.name)
            backup.rmdir()
        elif fresh and isinstance(err, Exception) and not _finished_methods(run):
            _remove(_present(run))
        raise
    if backup.is_dir():
        shutil.rmtree(backup)


def _finished_methods(run: RunDir) -> list[str]:
    tracker = TrainingRun(run)
    if not tracker.exists():
        return []
    try:
        record = run.read_json(run.train_record_path)
    except Exception:  # an unreadable record finished nothing worth keeping
        return []
    methods = record.get("methods", {})
    return [m for m, state in methods.items() if state.get("status") == "done"]
